"""The pure core: one HTTP request in, one simulated OpenRouter answer out, no I/O.

The transports (`_transport.py`, in-process) and the server (`_server.py`, a real socket) only move bytes; every
decision about what OpenRouter would answer is made here, so both ways of running behave the same.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ..gateways import GATEWAY_HEADER
from . import _generations as generations
from . import _shapes as shapes
from ._content import (
    EMBEDDING_PRICE,
    SimulatedUsage,
    conversation_from_input,
    conversation_from_messages,
    conversation_from_prompt,
    embedding_inputs,
    embedding_vector,
    plan_choices,
    provider_for,
    served_model,
    usage_for,
)
from ._requests import Headers, RecordedRequest, has_credential, to_direct_provider

SCENARIO_HEADER = "X-Simulator-Scenario"
SCENARIO_MODEL_PREFIX = "sim/"
ERROR_SCENARIOS: dict[str, tuple[int, str, str]] = {
    "error-400": (400, "Provider returned error", "Invalid request: the provider rejected the parameters (simulated)"),
    "error-401": (401, "User not found.", "Invalid API key (simulated)"),
    "error-402": (402, "Insufficient credits. Add more using https://openrouter.ai/settings/credits", ""),
    "error-404": (404, "No endpoints found for {model}.", ""),
    "error-429": (429, "Provider returned error", "{model} is temporarily rate-limited upstream (simulated)"),
    "error-500": (500, "Internal Server Error", "Internal error (simulated)"),
    "error-502": (502, "Provider returned error", "Bad gateway: the provider returned an invalid response (simulated)"),
    "error-503": (503, "There is no available model provider that meets your routing requirements", "Unavailable"),
}
"""Scenario name -> (HTTP status, `error.message`, `error.metadata.raw`); `{model}` is the requested model."""
SCENARIOS: tuple[str, ...] = (*ERROR_SCENARIOS, "stream-error", "disconnect", "timeout", "fallback")
SIMULATED_USER_ID = "user_simulator"
DEFAULT_EMBEDDING_DIMENSIONS = 16
MID_STREAM_MESSAGE = "Provider disconnected unexpectedly (simulated)"
CONTENT_BEFORE_FAILURE = 2  # content deltas delivered before `stream-error` and `disconnect` strike
_PATH_PREFIXES = ("/api/v1", "/v1")


@dataclass(frozen=True)
class SimulatedResponse:
    """The simulator's answer: a status, headers and either a whole body or already framed SSE chunks.

    `fault` tells the byte-moving layer to misbehave: `"disconnect"` breaks the connection after the chunks,
    `"timeout"` never answers at all.
    """

    status: int
    headers: dict[str, str]
    body: bytes = b""
    chunks: Iterable[bytes] | None = None
    fault: Literal["disconnect", "timeout"] | None = None


@dataclass(frozen=True)
class _Call:
    """One accepted generation request."""

    body: dict[str, Any]
    requested_model: str
    scenario: str | None
    meta: shapes.Meta
    direct: bool = False  # to a direct provider's host: answered without OpenRouter's own fields

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


@dataclass(frozen=True)
class _Stream:
    """An SSE answer before scenarios and framing are applied."""

    events: list[shapes.Event]
    failure: shapes.Event  # what `stream-error` appends after the first content deltas
    done: bool = True  # end with `data: [DONE]` (chat and completions; the Responses API does not)
    numbered: bool = False  # add `sequence_number` to every event (Responses API)


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _require_list(body: Mapping[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list) or not value:
        raise _BadRequest(f'Input required: specify "{name}"')
    return value


def _int(body: Mapping[str, Any], *names: str) -> int | None:
    return next((body[n] for n in names if isinstance(body.get(n), int)), None)


Generated = tuple["dict[str, Any] | _Stream", SimulatedUsage, "str | None"]
"""A handler's answer before scenarios and framing, with its usage and first finish reason (its generation record)."""


def _chat(call: _Call) -> Generated:
    body, meta = call.body, call.meta
    conversation = conversation_from_messages(_require_list(body, "messages"))
    choices = plan_choices(
        conversation,
        call_id=meta.item_id("call"),
        n=_int(body, "n") or 1,
        max_tokens=_int(body, "max_completion_tokens", "max_tokens"),
        tools=body.get("tools") or (),
        tool_choice=body.get("tool_choice", "auto"),
    )
    usage = usage_for(call.requested_model, conversation.prompt_tokens, choices)
    if not call.stream:
        return shapes.chat_completion(meta, choices, usage), usage, choices[0].finish_reason
    stream = _Stream(shapes.chat_chunks(meta, choices, usage), shapes.chat_error_chunk(meta, MID_STREAM_MESSAGE))
    return stream, usage, choices[0].finish_reason


def _completions(call: _Call) -> Generated:
    body, meta = call.body, call.meta
    if body.get("prompt") in (None, "", []):
        raise _BadRequest('Input required: specify "prompt"')
    conversation = conversation_from_prompt(body["prompt"])
    choices = plan_choices(
        conversation,
        call_id="",
        n=_int(body, "n") or 1,
        max_tokens=_int(body, "max_tokens"),
        prefix="Simulated completion",
    )
    usage = usage_for(call.requested_model, conversation.prompt_tokens, choices)
    finish = choices[0].finish_reason
    if not call.stream:
        return shapes.completion(meta, choices, usage), usage, finish
    failure = shapes.completion_error_chunk(meta, MID_STREAM_MESSAGE)
    return _Stream(shapes.completion_chunks(meta, choices, usage), failure), usage, finish


def _responses(call: _Call) -> Generated:
    body, meta = call.body, call.meta
    items = body.get("input")
    if not isinstance(items, str | list) or not items:
        raise _BadRequest('Input required: specify "input"')
    instructions = body.get("instructions") if isinstance(body.get("instructions"), str) else None
    conversation = conversation_from_input(items, instructions)
    (choice,) = plan_choices(
        conversation,
        call_id=meta.item_id("call"),
        max_tokens=_int(body, "max_output_tokens"),
        tools=body.get("tools") or (),
        tool_choice=body.get("tool_choice", "auto"),
    )
    usage = usage_for(call.requested_model, conversation.prompt_tokens, [choice])
    if not call.stream:
        answer = shapes.response(meta, body, [shapes.output_item(meta, choice)], usage, shapes.response_status(choice))
        return answer, usage, choice.finish_reason
    events = shapes.response_events(meta, body, choice, usage)
    failed = shapes.response_failed_event(meta, body, MID_STREAM_MESSAGE)
    return _Stream(events, failed, done=False, numbered=True), usage, choice.finish_reason


def _embeddings(call: _Call) -> Generated:
    body = call.body
    inputs = embedding_inputs(body.get("input"))
    if not inputs:
        raise _BadRequest('Input required: specify "input"')
    dimensions = _int(body, "dimensions") or DEFAULT_EMBEDDING_DIMENSIONS
    if dimensions < 1:
        raise _BadRequest("dimensions must be a positive integer")
    tokens = sum(t for _, t in inputs)
    cost = 0.0 if call.requested_model.endswith(":free") else round(tokens * EMBEDDING_PRICE, 12)
    vectors = [embedding_vector(text, dimensions) for text, _ in inputs]
    fmt = str(body.get("encoding_format") or "float")
    usage = SimulatedUsage(tokens, 0, 0, 0, 0, cost, 0.0)
    return shapes.embeddings(call.meta, vectors, tokens, cost, encoding_format=fmt), usage, None


_ENDPOINTS: dict[str, tuple[str, Callable[[_Call], Generated]]] = {
    "/chat/completions": ("gen-sim", _chat),
    "/completions": ("gen-sim", _completions),
    "/responses": ("gen-sim", _responses),
    "/embeddings": ("gen-emb", _embeddings),
}
"""Route (without the `/api/v1` or `/v1` prefix) -> (generation id prefix, handler)."""


def _route(path: str) -> str:
    route = urlsplit(path).path.rstrip("/") or "/"
    prefix = next((p for p in _PATH_PREFIXES if route.startswith(p + "/")), "")
    return route.removeprefix(prefix)


def _json_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> SimulatedResponse:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return SimulatedResponse(status, {"content-type": "application/json"} | dict(headers or {}), body=payload)


def _error(status: int, message: str) -> SimulatedResponse:
    return _json_response(status, shapes.error_body(status, message))


def _scenario_error(call: _Call) -> SimulatedResponse:
    status, message, raw = ERROR_SCENARIOS[call.scenario or ""]
    metadata = {"provider_name": call.meta.provider, "raw": raw.format(model=call.requested_model)}
    body = shapes.error_body(status, message.format(model=call.requested_model), metadata, SIMULATED_USER_ID)
    return _json_response(status, body, {"retry-after": "0"} if status == 429 else None)


def _cut_after_content(events: Sequence[shapes.Event], count: int) -> list[shapes.Event]:
    """The events up to and including the `count`-th one that carries generated content."""
    seen = 0
    for i, (_, data) in enumerate(events):
        seen += _carries_content(data)
        if seen == count:
            return list(events[: i + 1])
    return list(events)


def _carries_content(data: Mapping[str, Any]) -> bool:
    if str(data.get("type", "")).endswith(".delta"):
        return True
    for choice in data.get("choices") or []:
        delta = choice.get("delta") or {}
        if choice.get("text") or delta.get("content") or delta.get("tool_calls"):
            return True
    return False


def _render(call: _Call, result: dict[str, Any] | _Stream) -> SimulatedResponse:
    """Apply the in-generation scenarios (`stream-error`, `disconnect`) and frame the answer."""
    headers = {"x-generation-id": call.meta.id}
    if call.direct and isinstance(result, dict):
        result = shapes.as_direct_provider(result)
    elif call.direct:
        events = [(name, shapes.as_direct_provider(data)) for name, data in result.events]
        result = _Stream(events, result.failure, result.done, result.numbered)
    if isinstance(result, dict):
        if call.scenario == "stream-error":  # non-streaming: HTTP 200 with the error in the body
            result = _mark_failed(result)
        response = _json_response(200, result, headers)
        if call.scenario == "disconnect":
            half = response.body[: len(response.body) // 2]
            return SimulatedResponse(200, response.headers, chunks=[half], fault="disconnect")
        return response
    events, fault = result.events, None
    if call.scenario in ("stream-error", "disconnect"):
        events = _cut_after_content(events, CONTENT_BEFORE_FAILURE)
        if call.scenario == "stream-error":
            events.append(result.failure)
        else:
            fault = "disconnect"
    if result.numbered:
        events = [(name, data | {"sequence_number": i}) for i, (name, data) in enumerate(events)]
    chunks = [shapes.SSE_COMMENT, *(shapes.sse(data, name) for name, data in events)]
    if result.done and fault is None:
        chunks.append(shapes.SSE_DONE)
    sse_headers = {"content-type": "text/event-stream", "cache-control": "no-cache"} | headers
    return SimulatedResponse(200, sse_headers, chunks=chunks, fault=fault)


def _mark_failed(body: dict[str, Any]) -> dict[str, Any]:
    choices = [c | {"finish_reason": "error", "native_finish_reason": "error"} for c in body.get("choices", [])]
    failed = body | {"error": shapes.mid_stream_error(MID_STREAM_MESSAGE)}
    if "choices" in body:
        failed["choices"] = choices
    if body.get("object") == "response":
        failed["status"] = "failed"
    return failed


@dataclass(eq=False)
class GatewaySimulator:
    """An OpenAI-compatible gateway that answers as OpenRouter does, deterministically and without I/O.

    `handle()` is safe to call from several threads. Every request is appended to `requests` (credentials
    redacted) before it is answered, including the ones answered with an error.
    """

    clock: Callable[[], float] = time.time
    """Source of `created` timestamps; pass a constant for byte-identical answers."""
    speaks_as: str | None = "openrouter"
    """The gateway named in every response's `x-gateway-otel-gateway` header (None: no such header, e.g. to stand
    in for another gateway's proxy in a test)."""
    generation_delay: float = generations.DEFAULT_DELAY
    """Seconds after a call before `GET /generation?id=...` serves its record (404 until then)."""
    requests: list[RecordedRequest] = field(default_factory=list, init=False)
    _generations: generations.Generations = field(default_factory=generations.Generations, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _counter: int = field(default=0, init=False, repr=False)

    def reset(self) -> None:
        """Forget the recorded requests and restart the id counter."""
        with self._lock:
            self.requests.clear()
            self._counter = 0
        self._generations.clear()

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (IndexError when there is none)."""
        with self._lock:
            return self.requests[-1]

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> SimulatedResponse:
        """Answer one HTTP request as OpenRouter would, saying so in `x-gateway-otel-gateway` (so the
        instrumentation labels the calls `openrouter` wherever the simulator listens); a request to a direct
        provider's host (`api.openai.com`...) is answered as that provider would: no cost, nothing of OpenRouter's."""
        direct = to_direct_provider(headers)
        response = self._answer(method, path, headers, body, direct)
        if self.speaks_as and not direct:
            response.headers.setdefault(GATEWAY_HEADER, self.speaks_as)
        return response

    def generation_record(self, generation_id: str) -> dict[str, Any] | None:
        """The `data` that `GET /generation?id=<generation_id>` serves now; None while not ready (or unknown)."""
        return self._generations.ready(generation_id, time.monotonic())

    def _generation(self, method: str, path: str, headers: Mapping[str, str]) -> SimulatedResponse:
        if method.upper() != "GET":
            return _error(405, "Method Not Allowed")
        if not has_credential(headers):
            return _error(401, "No auth credentials found")
        generation_id = generations.requested_id(path)
        if generation_id is None:
            return _error(400, 'Input required: specify "id"')
        data = self.generation_record(generation_id)
        return _error(404, "Generation not found") if data is None else _json_response(200, {"data": data})

    def _answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, direct: bool = False
    ) -> SimulatedResponse:
        request_headers = Headers(headers)
        parsed = _parse_json(body)
        route = _route(path)
        with self._lock:
            self.requests.append(RecordedRequest(method.upper(), path, request_headers, parsed))
            self._counter += route != generations.ROUTE  # reading a record makes no generation id
            sequence = self._counter
        if route == generations.ROUTE:
            return self._generation(method, path, headers)
        endpoint = _ENDPOINTS.get(route)
        if endpoint is None:
            return _error(404, f"Not Found: {urlsplit(path).path}")
        if method.upper() != "POST":
            return _error(405, "Method Not Allowed")
        if not has_credential(headers):
            return _error(401, "No auth credentials found")
        if not isinstance(parsed, dict) or not isinstance(parsed.get("model"), str) or not parsed["model"]:
            return _error(400, 'Invalid request: a JSON body with a "model" is required')
        requested = parsed["model"]
        scenario = request_headers.get(SCENARIO_HEADER) or _model_scenario(requested)
        if scenario is not None and scenario not in SCENARIOS:
            return _error(400, f"Unknown simulator scenario: {scenario[:64]}")
        if scenario is None and requested.startswith(SCENARIO_MODEL_PREFIX):
            return _error(400, f"{requested[:128]} is not a valid model ID")
        model = served_model(requested)
        id_prefix, handler = endpoint
        meta = shapes.Meta(f"{id_prefix}-{sequence:06d}", int(self.clock()), model, provider_for(model))
        call = _Call(parsed, requested, scenario, meta, direct)
        if scenario in ERROR_SCENARIOS:
            return _scenario_error(call)
        if scenario == "timeout":
            return SimulatedResponse(200, {}, fault="timeout")
        try:
            result, usage, finish = handler(call)
        except _BadRequest as exc:
            return _error(400, exc.message)
        if scenario != "disconnect":  # a broken connection leaves no record to read
            finish = "error" if scenario == "stream-error" else finish
            api_type = "embeddings" if id_prefix == "gen-emb" else "completions"
            data = generations.generation_record(
                meta, requested_model=requested, body=parsed, headers=request_headers, usage=usage,
                finish_reason=finish, api_type=api_type, fallback=scenario == "fallback",
            )  # fmt: skip
            self._generations.remember(data, time.monotonic() + self.generation_delay)
        return _render(call, result)


def _model_scenario(model: str) -> str | None:
    name = model.removeprefix(SCENARIO_MODEL_PREFIX)
    return name if model.startswith(SCENARIO_MODEL_PREFIX) and name in SCENARIOS else None


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None
