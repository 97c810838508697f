"""gateway-otel: OpenTelemetry for every call an application sends through an OpenAI-compatible gateway.

```python
import gateway_otel
gateway_otel.instrument()   # one span per openai call, GenAI metrics, exporters from env vars
```
"""

from __future__ import annotations

from typing import Any

from ._errors import ConfigurationError, GatewayOtelError
from ._settings import Settings
from ._version import __version__
from .destinations import Providers, configure
from .instrumentation import GatewayInstrumentor
from .instrumentation._propagation import trace_metadata
from .query import AsyncTelemetry, Telemetry

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
    GatewayInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider, logger_provider=logger_provider, **options
    )


def uninstrument() -> None:
    """Stop tracing and restore the openai client's original methods."""
    GatewayInstrumentor().uninstrument()
