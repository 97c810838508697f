"""Where telemetry goes: destination presets (OTLP, OpenObserve, Arize AX, Phoenix, console, the local store),
`configure()`, and the destinations API — `list()`, `get(id)`, `test(id=None)` — mirroring OpenRouter's
observability destinations.

- `_presets`: each backend's variables → one checked `Destination` (`_otlp` reads the standard OTLP variables).
- `_configure`: `configure()` builds the providers; `_exporters` builds each destination's exporters.
- `_processor`: one bounded queue per destination, with its sampling, privacy mode and resource.
- `_api`: `list`, `get` and `test` (one probe span, one actionable line).
"""

from .._env import load_dotenv
from ._api import ProbeResult, get_destination, list_destinations, test_destinations
from ._configure import DESTINATION_NAMES, Providers, configure
from ._presets import Destination

# `gateway_otel.destinations.list()`, as OpenRouter's SDK names it. Not in `__all__`: a star import must not
# replace the built-in `list`.
list = list_destinations
get = get_destination
test = test_destinations

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
