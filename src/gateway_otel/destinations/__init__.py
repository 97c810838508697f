"""Where telemetry goes: destination presets (OTLP, OpenObserve, Arize AX, Phoenix, console, the local store),
`configure()`, and the destinations API — `list()`, `get(id)`, `test(id=None)` — mirroring OpenRouter's
observability destinations.

- `_presets`: each backend's variables → one checked `Destination` (`_otlp` reads the standard OTLP variables).
- `_configure`: `configure()` builds the providers; `_exporters` builds each destination's exporters.
- `_processor`: one bounded queue per destination, with its sampling, privacy mode and resource.
- `_api`: `list`, `get` and `test` (one probe span, one actionable line).
"""

import importlib
from typing import TYPE_CHECKING, Any

from .._env import load_dotenv
from ._presets import Destination

if TYPE_CHECKING:
    from ._api import ProbeResult, get_destination, list_destinations, test_destinations
    from ._configure import DESTINATION_NAMES, Providers, configure

_LAZY = {
    "ProbeResult": ("._api", "ProbeResult"),
    "get_destination": ("._api", "get_destination"),
    "list_destinations": ("._api", "list_destinations"),
    "test_destinations": ("._api", "test_destinations"),
    # `gateway_otel.destinations.list()`, as OpenRouter's SDK names it. Not in `__all__`: a star import must not
    # replace the built-in `list`.
    "list": ("._api", "list_destinations"),
    "get": ("._api", "get_destination"),
    "test": ("._api", "test_destinations"),
    "DESTINATION_NAMES": ("._configure", "DESTINATION_NAMES"),
    "Providers": ("._configure", "Providers"),
    "configure": ("._configure", "configure"),
}
"""Imported at first use (PEP 562): the exporters and the SDK cost ~0.1 s, which a query of OpenObserve's settings
(`_presets`) does not need."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module, __name__), attribute)
    globals()[name] = value
    return value


__all__ = [
    "DESTINATION_NAMES",
    "Destination",
    "ProbeResult",
    "Providers",
    "configure",
    "get_destination",
    "list_destinations",
    "load_dotenv",
    "test_destinations",
]
