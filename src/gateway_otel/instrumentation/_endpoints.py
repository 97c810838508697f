"""The table of instrumented endpoints: path → operation, span kind, input mapping and response mapping.

Every surface of the openai client (`create`, `parse`, `stream` helpers, `with_raw_response`) ends in one
`request()` call with the endpoint's path, so instrument and uninstrument patch one place and this table decides
what a call is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _content, _response
from ._content import Message


@dataclass(frozen=True)
class Endpoint:
    path: str
    operation: str
    """`gen_ai.operation.name`."""
    span_kind: str
    """`openinference.span.kind`."""
    input_messages: Callable[[Mapping[str, Any], int], list[Message]]
    map_response: Callable[[Any, bool, int], _response.ResponseRecord]


def _embedding_inputs(body: Mapping[str, Any], limit: int) -> list[Message]:
    return _content.prompt_messages(body.get("input"), limit)


ENDPOINTS: dict[str, Endpoint] = {
    e.path: e
    for e in (
        Endpoint(
            "/chat/completions",
            "chat",
            "LLM",
            lambda body, limit: _content.chat_messages(body.get("messages"), limit),
            _response.map_chat,
        ),
        Endpoint(
            "/completions",
            "text_completion",
            "LLM",
            lambda body, limit: _content.prompt_messages(body.get("prompt"), limit),
            _response.map_completion,
        ),
        Endpoint("/embeddings", "embeddings", "EMBEDDING", _embedding_inputs, _response.map_embeddings),
        Endpoint(
            "/responses",
            "chat",
            "LLM",
            lambda body, limit: _content.responses_input(body.get("input"), limit),
            _response.map_responses,
        ),
    )
}


def find_endpoint(method: Any, url: Any) -> Endpoint | None:
    """The endpoint a request goes to, or None for calls this package does not trace (models.list, files...)."""
    if not isinstance(url, str) or not isinstance(method, str) or method.lower() != "post":
        return None
    endpoint = ENDPOINTS.get(url)
    if endpoint is not None:
        return endpoint
    # An absolute URL, or a gateway-specific prefix (`/deployments/x/chat/completions`): match the last segments.
    path = url.split("?", 1)[0].rstrip("/")
    for suffix, candidate in ENDPOINTS.items():
        if path.endswith(suffix) and (suffix != "/completions" or not path.endswith("/chat/completions")):
            return candidate
    return None
