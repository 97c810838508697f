"""Wire shapes: small pure builders for every JSON body and stream event the simulator sends.

The shapes follow the recorded OpenAI exchanges (`/work/shared/reference/recorded/openai`) plus what OpenRouter adds:
a top-level `provider`, `native_finish_reason`, `usage.cost`/`is_byok`/`cost_details`, cache-write tokens, the usage
chunk with empty `choices` that ends every chat stream, and mid-stream errors as a chunk with a top-level `error`.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._content import Choice, SimulatedUsage, native_finish_reason, pieces, reasoning_for, reasoning_spelling

Event = tuple[str | None, dict[str, Any]]
"""An SSE event: its `event:` name (None for data-only events) and its JSON data."""

SSE_COMMENT = b": OPENROUTER PROCESSING\n\n"
SSE_DONE = b"data: [DONE]\n\n"
ARGUMENT_FRAGMENT_CHARS = 8


@dataclass(frozen=True)
class Meta:
    """What every body and chunk of one generation repeats."""

    id: str
    created: int
    model: str
    provider: str

    def item_id(self, kind: str) -> str:
        """A Responses API item id derived from the generation id (`msg_...`, `fc_...`)."""
        return f"{kind}_{self.id.removeprefix('gen-').replace('-', '')}"


def sse(data: Mapping[str, Any], event: str | None = None) -> bytes:
    """Frame one SSE event."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error_body(code: int, message: str, metadata: Mapping[str, Any] | None = None, user_id: str | None = None) -> dict:
    """OpenRouter's error shape: `{"error": {"code", "message", "metadata"?}, "user_id"?}`."""
    error: dict[str, Any] = {"code": code, "message": message}
    if metadata is not None:
        error["metadata"] = dict(metadata)
    return {"error": error} if user_id is None else {"error": error, "user_id": user_id}


def mid_stream_error(message: str) -> dict[str, Any]:
    """The `error` member of a generation that failed after it started (HTTP status stays 200)."""
    return {"code": "server_error", "message": message, "metadata": {"error_type": "provider_error"}}


def fragments(text: str) -> list[str]:
    """Tool-call arguments cut into the small JSON fragments providers stream."""
    return [text[i : i + ARGUMENT_FRAGMENT_CHARS] for i in range(0, len(text), ARGUMENT_FRAGMENT_CHARS)]


# --- usage -----------------------------------------------------------------------------------------------------------


def _cost_details(usage: SimulatedUsage) -> dict[str, Any]:
    return {
        "upstream_inference_cost": None,
        "upstream_inference_prompt_cost": usage.prompt_cost,
        "upstream_inference_completions_cost": usage.completion_cost,
    }


def chat_usage(usage: SimulatedUsage) -> dict[str, Any]:
    """`usage` of chat and legacy completions, with OpenRouter's cost fields and token details."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cost": usage.cost,
        "is_byok": False,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "audio_tokens": 0,
        },
        "cost_details": _cost_details(usage),
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens, "audio_tokens": 0, "image_tokens": 0},
    }


def responses_usage(usage: SimulatedUsage) -> dict[str, Any]:
    """`usage` of the Responses API (input/output naming) with the same cost fields."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
        "cost": usage.cost,
        "is_byok": False,
        "cost_details": _cost_details(usage),
    }


# --- chat completions ------------------------------------------------------------------------------------------------


def _tool_call(choice: Choice) -> list[dict[str, Any]]:
    call = choice.tool_call
    if call is None:
        return []
    return [
        {"index": 0, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    ]


def _thinks(meta: Meta, choice: Choice) -> bool:
    """A reasoning model thinks before a text answer (the simulator's tool calls come without)."""
    return choice.tool_call is None and reasoning_spelling(meta.model) is not None


def _reasoning_fields(model: str, text: str | None) -> dict[str, Any]:
    """A message's (or delta's) reasoning in the model's spelling; OpenRouter sends `reasoning: null` otherwise."""
    spelling = reasoning_spelling(model)
    if spelling is None or text is None:
        return {"reasoning": None}
    if spelling == "reasoning_content":
        return {"reasoning_content": text}
    detail = {"type": "reasoning.text", "text": text, "format": "unknown", "index": 0}
    return {"reasoning": text, "reasoning_details": [detail]}


def chat_completion(meta: Meta, choices: Sequence[Choice], usage: SimulatedUsage) -> dict[str, Any]:
    """A non-streaming `chat.completion`."""
    return {
        "id": meta.id,
        "provider": meta.provider,
        "model": meta.model,
        "object": "chat.completion",
        "created": meta.created,
        "choices": [
            {
                "logprobs": None,
                "finish_reason": c.finish_reason,
                "native_finish_reason": native_finish_reason(meta.provider, c.finish_reason),
                "index": c.index,
                "message": {"role": "assistant", "content": c.text, "refusal": None}
                | _reasoning_fields(meta.model, reasoning_for(c.text) if _thinks(meta, c) else None)
                | ({"tool_calls": _tool_call(c)} if c.tool_call else {}),
            }
            for c in choices
        ],
        "usage": chat_usage(usage),
    }


def _chunk(meta: Meta, choices: list[dict[str, Any]], **extra: Any) -> Event:
    body = {"id": meta.id, "provider": meta.provider, "model": meta.model, "object": "chat.completion.chunk"}
    return None, body | {"created": meta.created, "choices": choices} | extra


def _delta(meta: Meta, index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    native = native_finish_reason(meta.provider, finish_reason) if finish_reason else None
    return {
        "index": index,
        "delta": delta,
        "finish_reason": finish_reason,
        "native_finish_reason": native,
        "logprobs": None,
    }


def chat_chunks(meta: Meta, choices: Sequence[Choice], usage: SimulatedUsage) -> list[Event]:
    """A chat stream: per choice a role chunk, content or tool-call deltas, a finish chunk; then the usage chunk."""
    events = []
    for c in choices:
        events.append(_chunk(meta, [_delta(meta, c.index, {"role": "assistant", "content": ""})]))
        if _thinks(meta, c):  # the thinking streams before the answer
            for piece in pieces(reasoning_for(c.text)):
                delta = {"content": ""} | _reasoning_fields(meta.model, piece)
                events.append(_chunk(meta, [_delta(meta, c.index, delta)]))
        if c.tool_call is not None:
            start = _tool_call(c)[0] | {"function": {"name": c.tool_call.name, "arguments": ""}}
            events.append(_chunk(meta, [_delta(meta, c.index, {"tool_calls": [start]})]))
            for fragment in fragments(c.tool_call.arguments):
                delta = {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}
                events.append(_chunk(meta, [_delta(meta, c.index, delta)]))
        else:
            events += [_chunk(meta, [_delta(meta, c.index, {"content": p})]) for p in pieces(c.text or "")]
        events.append(_chunk(meta, [_delta(meta, c.index, {}, c.finish_reason)]))
    events.append(_chunk(meta, [], usage=chat_usage(usage)))
    return events


def chat_error_chunk(meta: Meta, message: str) -> Event:
    """OpenRouter's mid-stream failure: top-level `error` and `finish_reason: "error"`."""
    choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error", "native_finish_reason": "error"}
    return _chunk(meta, [choice | {"logprobs": None}], error=mid_stream_error(message))


# --- legacy completions ----------------------------------------------------------------------------------------------


def _completion_choice(meta: Meta, index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    native = native_finish_reason(meta.provider, finish_reason) if finish_reason else None
    return {
        "index": index,
        "text": text,
        "logprobs": None,
        "finish_reason": finish_reason,
        "native_finish_reason": native,
    }


def _completion(meta: Meta, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {"id": meta.id, "provider": meta.provider, "model": meta.model, "object": "text_completion"}
    return body | {"created": meta.created, "choices": choices} | extra


def completion(meta: Meta, choices: Sequence[Choice], usage: SimulatedUsage) -> dict[str, Any]:
    """A non-streaming legacy `text_completion`."""
    body = [_completion_choice(meta, c.index, c.text or "", c.finish_reason) for c in choices]
    return _completion(meta, body, usage=chat_usage(usage))


def completion_chunks(meta: Meta, choices: Sequence[Choice], usage: SimulatedUsage) -> list[Event]:
    """A legacy completion stream: text deltas, a finish chunk per choice, then the usage chunk."""
    events: list[Event] = []
    for c in choices:
        events += [
            (None, _completion(meta, [_completion_choice(meta, c.index, p, None)])) for p in pieces(c.text or "")
        ]
        events.append((None, _completion(meta, [_completion_choice(meta, c.index, "", c.finish_reason)])))
    events.append((None, _completion(meta, [], usage=chat_usage(usage))))
    return events


def completion_error_chunk(meta: Meta, message: str) -> Event:
    choice = _completion_choice(meta, 0, "", "error") | {"native_finish_reason": "error"}
    return None, _completion(meta, [choice], error=mid_stream_error(message))


# --- Responses API ---------------------------------------------------------------------------------------------------


def output_item(meta: Meta, choice: Choice) -> dict[str, Any]:
    """The finished output item: a `function_call` or an assistant `message` with one `output_text` part."""
    if choice.tool_call is not None:
        call = choice.tool_call
        return {
            "id": meta.item_id("fc"),
            "type": "function_call",
            "status": "completed",
            "call_id": call.id,
            "name": call.name,
            "arguments": call.arguments,
        }
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": choice.text or ""}
    return {"id": meta.item_id("msg"), "type": "message", "status": "completed", "content": [part], "role": "assistant"}


def response(
    meta: Meta,
    request: Mapping[str, Any],
    output: list[dict[str, Any]],
    usage: SimulatedUsage | None,
    status: str,
    error: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A `response` object with every field the openai client model declares as required, echoing the request."""
    return {
        "id": meta.id,
        "object": "response",
        "created_at": meta.created,
        "status": status,
        "background": False,
        "completed_at": meta.created if status == "completed" else None,
        "error": dict(error) if error else None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": meta.model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "auto",
        "store": False,
        "temperature": request.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools", []),
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": responses_usage(usage) if usage is not None else None,
        "user": None,
        "metadata": request.get("metadata") or {},
        "provider": meta.provider,
    }


def response_status(choice: Choice) -> str:
    return "incomplete" if choice.finish_reason == "length" else "completed"


def response_events(meta: Meta, request: Mapping[str, Any], choice: Choice, usage: SimulatedUsage) -> list[Event]:
    """A Responses API stream, as in the recorded cassette; `sequence_number` is added by the caller."""
    item = output_item(meta, choice)
    pending = item | {"status": "in_progress"} | ({"content": []} if item["type"] == "message" else {"arguments": ""})
    started = response(meta, request, [], None, "in_progress")
    events: list[Event] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        ("response.output_item.added", {"output_index": 0, "item": pending}),
    ]
    if choice.tool_call is not None:
        ids = {"item_id": item["id"], "output_index": 0}
        arguments = choice.tool_call.arguments
        events += [("response.function_call_arguments.delta", ids | {"delta": f}) for f in fragments(arguments)]
        events.append(("response.function_call_arguments.done", ids | {"arguments": arguments}))
    else:
        ids = {"content_index": 0, "item_id": item["id"], "output_index": 0}
        part = item["content"][0]
        events.append(("response.content_part.added", ids | {"part": part | {"text": ""}}))
        events += [("response.output_text.delta", ids | {"delta": p, "logprobs": []}) for p in pieces(part["text"])]
        events.append(("response.output_text.done", ids | {"logprobs": [], "text": part["text"]}))
        events.append(("response.content_part.done", ids | {"part": part}))
    events.append(("response.output_item.done", {"output_index": 0, "item": item}))
    status = response_status(choice)
    events.append((f"response.{status}", {"response": response(meta, request, [item], usage, status)}))
    return [(name, {"type": name} | data) for name, data in events]


def response_failed_event(meta: Meta, request: Mapping[str, Any], message: str) -> Event:
    """How a Responses API stream ends when the generation fails after it started."""
    body = response(meta, request, [], None, "failed", error=mid_stream_error(message))
    return "response.failed", {"type": "response.failed", "response": body}


# --- embeddings ------------------------------------------------------------------------------------------------------


def embeddings(
    meta: Meta, vectors: Sequence[Sequence[float]], tokens: int, cost: float, *, encoding_format: str = "float"
) -> dict[str, Any]:
    """A `list` of embeddings; `base64` packs each vector as little-endian float32, as the openai client expects."""

    def encode(vector: Sequence[float]) -> list[float] | str:
        if encoding_format != "base64":
            return list(vector)
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")

    return {
        "id": meta.id,
        "object": "list",
        "data": [{"object": "embedding", "embedding": encode(v), "index": i} for i, v in enumerate(vectors)],
        "model": meta.model,
        "provider": meta.provider,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "cost": cost},
    }


_OPENROUTER_USAGE = ("cost", "is_byok", "cost_details")


def as_direct_provider(data: dict[str, Any]) -> dict[str, Any]:
    """An answer (a body, a chunk or an event) as a provider called directly sends it: without what only OpenRouter
    adds — the top-level `provider`, `native_finish_reason`, and `usage`'s `cost`, `is_byok` and `cost_details` (a
    direct call to OpenAI reports tokens and no cost)."""
    out = {k: v for k, v in data.items() if k != "provider"}
    if isinstance(out.get("choices"), list):
        out["choices"] = [{k: v for k, v in c.items() if k != "native_finish_reason"} for c in out["choices"]]
    for holder in (out, out.get("response")):  # the Responses API's events carry the response
        usage = holder.get("usage") if isinstance(holder, dict) else None
        if isinstance(usage, dict):
            holder["usage"] = {k: v for k, v in usage.items() if k not in _OPENROUTER_USAGE}
    return out
