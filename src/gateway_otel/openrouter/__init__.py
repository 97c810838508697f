"""OpenRouter's own side: the observability (Broadcast) destinations OpenRouter exports to, read through the official
`openrouter` SDK (the optional extra `gateway-otel[openrouter]`). `gateway-otel openrouter destinations` and
`gateway-otel doctor` use it; the trace join that nests Broadcast's spans under the application's lives with the
instrumentation (`gateway_otel.trace_metadata`). `_generation` and `_generation_worker` fetch each call's generation
record afterwards (`openrouter_generation=True`), with httpx, not the SDK: the instrumentation imports them only when
that option is on."""

from .._errors import BroadcastError
from ._broadcast import (
    DEFAULT_SERVER_URL,
    KEY_VARIABLES,
    BroadcastDestination,
    get_broadcast_destination,
    list_broadcast_destinations,
    management_key,
    server_url,
)

__all__ = [
    "DEFAULT_SERVER_URL",
    "KEY_VARIABLES",
    "BroadcastDestination",
    "BroadcastError",
    "get_broadcast_destination",
    "list_broadcast_destinations",
    "management_key",
    "server_url",
]
