"""Responses as small records: what the span and the metrics need, whatever shape the response came in.

A mapper reads a chat completion, a legacy completion, an embeddings list or a Responses API object — the SDK's
pydantic object or the plain JSON of a raw response — and never invents a value that was not received. The stream
accumulator (streaming) fills the same record, so one attribute path serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._content import Message, as_text, content_parts, encodable, get, reasoning_part, tool_call_part


@dataclass
class Usage:
    """Token counts and cost as the gateway reported them; `None` where it reported nothing."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    input_audio_tokens: int | None = None
    output_audio_tokens: int | None = None
    cost: float | None = None
    is_byok: bool | None = None
    upstream_cost: float | None = None
    upstream_prompt_cost: float | None = None
    upstream_completion_cost: float | None = None
    cost_source: str = "gateway"
    """Where `cost` came from (`_prices.GATEWAY`, or `_prices.PRICE_TABLE` for a local model made free)."""


@dataclass
class ResponseRecord:
    """Everything recorded from one response."""

    id: str | None = None
    model: str | None = None
    upstream_provider: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    usage: Usage | None = None
    output: list[Message] | None = None
    """Output messages, filled only when content is captured."""
    embedding_count: int | None = None
    embedding_dimensions: int | None = None
    error_code: Any = None
    error_message: str | None = None
    """An error the gateway delivered inside a successful response (OpenRouter's mid-stream `error`)."""

    def clean(self) -> ResponseRecord:
        """Make every value encodable, in place: a lone surrogate in an id, model, provider, finish reason or error
        code becomes U+FFFD, a count outside int64 is dropped. One odd response must not fail the export of the
        batch of spans (and metric points) it lands in."""
        self.id = _text(self.id)
        self.model = _text(self.model)
        self.upstream_provider = _text(self.upstream_provider)
        if self.finish_reasons:
            self.finish_reasons = [_text(reason) for reason in self.finish_reasons]
        code = self.error_code
        self.error_code = encodable(code) if isinstance(code, str) else int64(code)
        if self.error_message is not None and not isinstance(self.error_message, str):
            self.error_message = str(self.error_message)
        usage = self.usage
        if usage is not None:
            for name in _COUNTS:
                value = getattr(usage, name)
                if value is not None and int64(value) is None:
                    setattr(usage, name, None)
        self.embedding_count = int64(self.embedding_count)
        self.embedding_dimensions = int64(self.embedding_dimensions)
        return self


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_COUNTS = (
    "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "input_audio_tokens", "output_audio_tokens",
)  # fmt: skip


def int64(value: Any) -> Any:
    """`value`, unless it is an integer OTLP (and SQLite) cannot carry: then None."""
    return None if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX else value


def _text(value: Any) -> Any:
    return encodable(value) if isinstance(value, str) and not value.isascii() else value


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def map_usage(usage: Any) -> Usage | None:
    """Chat/completions (`prompt_tokens`...) and Responses (`input_tokens`...) usage, with OpenRouter's cost."""
    if usage is None:
        return None
    prompt = get(usage, "prompt_tokens")
    if prompt is not None:
        input_details = get(usage, "prompt_tokens_details")
        output_details = get(usage, "completion_tokens_details")
        output_tokens = get(usage, "completion_tokens")
    else:
        prompt = get(usage, "input_tokens")
        input_details = get(usage, "input_tokens_details")
        output_details = get(usage, "output_tokens_details")
        output_tokens = get(usage, "output_tokens")
    cost_details = get(usage, "cost_details")
    byok = get(usage, "is_byok")
    return Usage(
        input_tokens=_int(prompt),
        output_tokens=_int(output_tokens),
        total_tokens=_int(get(usage, "total_tokens")),
        cache_read_tokens=_int(get(input_details, "cached_tokens")),
        cache_write_tokens=_int(get(input_details, "cache_write_tokens")),
        reasoning_tokens=_int(get(output_details, "reasoning_tokens")),
        input_audio_tokens=_int(get(input_details, "audio_tokens")),
        output_audio_tokens=_int(get(output_details, "audio_tokens")),
        cost=_float(get(usage, "cost")),
        is_byok=byok if isinstance(byok, bool) else None,
        upstream_cost=_float(get(cost_details, "upstream_inference_cost")),
        upstream_prompt_cost=_float(get(cost_details, "upstream_inference_prompt_cost")),
        upstream_completion_cost=_float(get(cost_details, "upstream_inference_completions_cost")),
    )


def _common(response: Any) -> ResponseRecord:
    error = get(response, "error")
    return ResponseRecord(
        id=_str(get(response, "id")),
        model=_str(get(response, "model")),
        upstream_provider=_str(get(response, "provider")),
        usage=map_usage(get(response, "usage")),
        error_code=get(error, "code") if error is not None else None,
        error_message=_str(get(error, "message")) if error is not None else None,
    )


def _list(value: Any) -> list[Any] | tuple[Any, ...]:
    return value if isinstance(value, (list, tuple)) else ()


def map_chat(response: Any, capture: bool, limit: int) -> ResponseRecord:
    record = _common(response)
    choices = _list(get(response, "choices"))
    record.finish_reasons = [str(get(c, "finish_reason")) for c in choices if get(c, "finish_reason") is not None]
    if capture:
        record.output = [_chat_choice_message(choice, limit) for choice in choices]
    return record


def _chat_choice_message(choice: Any, limit: int) -> Message:
    message = get(choice, "message")
    parts = content_parts(get(message, "content"), limit)
    reasoning = reasoning_part(message, limit)
    if reasoning is not None:
        parts.insert(0, reasoning)  # the model thought before it answered
    refusal = get(message, "refusal")
    if refusal:
        parts.append({"type": "text", "content": as_text(refusal, limit)})
    for call in _list(get(message, "tool_calls")):
        function = get(call, "function")
        parts.append(tool_call_part(get(call, "id"), get(function, "name"), get(function, "arguments"), limit))
    out: Message = {"role": str(get(message, "role") or "assistant"), "parts": parts}
    finish = get(choice, "finish_reason")
    if finish is not None:
        out["finish_reason"] = str(finish)
    return out


def map_completion(response: Any, capture: bool, limit: int) -> ResponseRecord:
    record = _common(response)
    choices = _list(get(response, "choices"))
    record.finish_reasons = [str(get(c, "finish_reason")) for c in choices if get(c, "finish_reason") is not None]
    if capture:
        record.output = []
        for choice in choices:
            message: Message = {"role": "assistant", "parts": content_parts(get(choice, "text"), limit)}
            if get(choice, "finish_reason") is not None:
                message["finish_reason"] = str(get(choice, "finish_reason"))
            record.output.append(message)
    return record


def map_embeddings(response: Any, capture: bool, limit: int) -> ResponseRecord:
    record = _common(response)
    data = get(response, "data")
    if isinstance(data, (list, tuple)):
        record.embedding_count = len(data)
        if data:
            vector = get(data[0], "embedding")
            # A base64 vector (a raw response) is 4 bytes per float32, 4 base64 chars per 3 bytes.
            if isinstance(vector, (list, tuple)):
                record.embedding_dimensions = len(vector)
            elif isinstance(vector, str):
                record.embedding_dimensions = len(vector) * 3 // 4 // 4
    return record


def map_responses(response: Any, capture: bool, limit: int) -> ResponseRecord:
    record = _common(response)
    status = get(response, "status")
    output = _list(get(response, "output"))
    if any(get(item, "type") == "function_call" for item in output):
        record.finish_reasons = ["tool_calls"]
    elif status == "incomplete":
        reason = get(get(response, "incomplete_details"), "reason")
        record.finish_reasons = ["length" if reason == "max_output_tokens" else str(reason or "incomplete")]
    elif status == "failed":
        record.finish_reasons = ["error"]
    elif status is not None:
        record.finish_reasons = ["stop"]
    if capture:
        parts: list[dict[str, Any]] = []
        for item in output:
            kind = get(item, "type")
            if kind == "message":
                parts.extend(content_parts(get(item, "content"), limit))
            elif kind == "function_call":
                parts.append(tool_call_part(get(item, "call_id"), get(item, "name"), get(item, "arguments"), limit))
            elif kind == "reasoning":
                summary = "".join(str(get(s, "text") or "") for s in _list(get(item, "summary")))
                if summary:
                    parts.append({"type": "reasoning", "content": as_text(summary, limit)})
        message: Message = {"role": "assistant", "parts": parts}
        if record.finish_reasons:
            message["finish_reason"] = record.finish_reasons[0]
        record.output = [message]
    return record
