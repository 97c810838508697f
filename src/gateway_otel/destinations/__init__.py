"""Where telemetry goes: destination presets (OTLP, OpenObserve, Arize AX, Phoenix, console), `configure()`, and
the destinations API — `list()`, `get(id)`, `test(id=None)` — mirroring OpenRouter's observability destinations.
"""

from ._api import ProbeResult, get_destination, list_destinations, test_destinations
from ._configure import DESTINATION_NAMES, Providers, configure, load_dotenv
from ._presets import Destination

list = list_destinations  # gateway_otel.destinations.list(), as OpenRouter's SDK names it
get = get_destination
test = test_destinations

__all__ = [
    "DESTINATION_NAMES",
    "Destination",
    "ProbeResult",
    "Providers",
    "configure",
    "get",
    "list",
    "load_dotenv",
    "test",
]
