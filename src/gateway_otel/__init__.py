"""gateway-otel: OpenTelemetry for every call an application sends through an OpenAI-compatible gateway.

```python
import gateway_otel
gateway_otel.instrument()   # one span per openai call, GenAI metrics, exporters from env vars
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError, GatewayOtelError
from ._version import __version__

if TYPE_CHECKING:
    from ._settings import Settings
    from .destinations import Providers, configure
    from .instrumentation import GatewayInstrumentor
    from .instrumentation._propagation import trace_metadata
    from .query import AsyncTelemetry, Telemetry

_LAZY = {
    "AsyncTelemetry": ".query",
    "GatewayInstrumentor": ".instrumentation",
    "Providers": ".destinations",
    "Settings": "._settings",
    "Telemetry": ".query",
    "configure": ".destinations",
    "trace_metadata": ".instrumentation._propagation",
}
"""Names imported at their first use (PEP 562): `import gateway_otel` stays cheap, so that a command such as
`gateway-otel stats` does not pay for the SDK, the exporters and the instrumentation it does not use (~0.2 s)."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway_otel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__all__ = [
    "AsyncTelemetry",
    "ConfigurationError",
    "GatewayInstrumentor",
    "GatewayOtelError",
    "Providers",
    "Settings",
    "Telemetry",
    "__version__",
    "configure",
    "instrument",
    "trace_metadata",
    "uninstrument",
]


def instrument(
    tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None, **options: Any
) -> None:
    """Trace every openai call from now on. Idempotent: a second call changes nothing (other settings are ignored,
    with a warning; `uninstrument()` first to change them).

    Uses the given providers, else the application's global ones; when the application has set none,
    `configure()` sets providers that export where `GATEWAY_OTEL_DESTINATIONS` / `OTEL_EXPORTER_OTLP_*` say.
    `options` are the fields of `Settings` (`capture_content`, `max_content_length`, `gateway`); a bad value
    raises `ConfigurationError` naming it. Failed calls are also OpenTelemetry log records (in their span's trace)
    through `logger_provider`, else the global one.
    """
    from .instrumentation import GatewayInstrumentor

    GatewayInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider, logger_provider=logger_provider, **options
    )


def uninstrument() -> None:
    """Stop tracing and restore the openai client's original methods."""
    from .instrumentation import GatewayInstrumentor

    GatewayInstrumentor().uninstrument()
