"""Stream accumulators: chunks (chat, legacy completions) or events (Responses) in, the same `ResponseRecord` a
non-streamed response gives out, so one attribute path serves both.

`ChatAccumulator.add` runs once per chunk: builtins and dict reads only. Content (the answer, the reasoning, tool-call
arguments) is appended only while it is captured and only up to the cap, so memory is bounded by the cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._content import (
    _EMPTY,
    ENCRYPTED_REASONING,
    Message,
    encodable,
    fields,
    get,
    reasoning_details_text,
    tool_call_part,
)
from ._response import ResponseRecord, map_responses, map_usage


class _Text:
    """Text assembled from deltas, kept up to `limit` characters; the rest is only counted."""

    __slots__ = ("limit", "parts", "size")

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit

    def add(self, delta: str) -> None:
        room = self.limit - self.size
        if room > 0:
            self.parts.append(delta if len(delta) <= room else delta[:room])
        self.size += len(delta)

    def text(self) -> str:
        return _joined(self.parts, self.size, self.limit)


def _joined(parts: list[str], size: int, limit: int) -> str:
    text = encodable("".join(parts))
    if size > limit:
        return f"{text}…[truncated {size - limit} chars]"
    return text


def _index(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class _Choice:
    """One choice being streamed; its text is kept as `parts` (up to the cap) and `size` (all of it)."""

    __slots__ = ("encrypted_reasoning", "finish_reason", "parts", "reasoning", "role", "size", "tool_calls")

    def __init__(self) -> None:
        self.role: str | None = None
        self.parts: list[str] = []
        self.size = 0
        self.tool_calls: dict[int, list[Any]] = {}
        self.finish_reason: str | None = None
        self.reasoning: _Text | None = None
        """Reasoning deltas (`reasoning`, `reasoning_content`, `reasoning_details`), made on the first one."""
        self.encrypted_reasoning = False


class ChatAccumulator:
    """Rebuilds a chat completion (or legacy completion) from its chunks."""

    __slots__ = ("capture", "choices", "limit", "record")

    def __init__(self, capture: bool, limit: int) -> None:
        self.capture = capture
        self.limit = limit
        self.record = ResponseRecord()
        self.choices: dict[int, _Choice] = {}

    def add(self, chunk: Any) -> None:
        """Called once per chunk: builtins and dict reads only, no further Python call on the common path.

        The pydantic object's declared fields are its `__dict__`, its undeclared ones (OpenRouter's `provider`,
        `error`) its `__pydantic_extra__`; a raw response's chunk is a plain dict holding both.
        """
        if type(chunk) is dict:
            known = extra = chunk
        else:
            known = getattr(chunk, "__dict__", None)
            if type(known) is not dict:
                known = _EMPTY
            extra = getattr(chunk, "__pydantic_extra__", None)
            if type(extra) is not dict:
                extra = _EMPTY
        record = self.record
        if not record.id:  # Azure's first chunk (prompt filter results) has an empty id and model
            record.id = known.get("id") or None
            record.model = known.get("model") or None
        if extra:
            if record.upstream_provider is None:
                provider = extra.get("provider")
                if isinstance(provider, str):
                    record.upstream_provider = provider
            error = extra.get("error")
            if error is not None:
                record.error_code = get(error, "code")
                record.error_message = get(error, "message")
        usage = known.get("usage") or extra.get("usage")
        if usage is not None:
            record.usage = map_usage(usage)
        choices = known.get("choices")
        if not choices or type(choices) is not list:
            return
        capture = self.capture
        for choice in choices:
            if type(choice) is dict:
                fields_ = choice
            else:
                fields_ = getattr(choice, "__dict__", None)
                if type(fields_) is not dict:
                    fields_ = _EMPTY
            finish = fields_.get("finish_reason")
            if finish is None and not capture:
                continue
            index = fields_.get("index")
            if type(index) is not int:
                index = 0
            state = self.choices.get(index)
            if state is None:
                state = self.choices[index] = _Choice()
            if finish is not None:
                state.finish_reason = str(finish)
            if not capture:
                continue
            delta = fields_.get("delta")
            if delta is None:
                delta_fields = _EMPTY
                text = fields_.get("text")  # a legacy completion's chunk
            else:
                if type(delta) is dict:
                    delta_fields = delta
                else:
                    delta_fields = getattr(delta, "__dict__", None)
                    if type(delta_fields) is not dict:
                        delta_fields = _EMPTY
                text = delta_fields.get("content")
                if state.role is None:
                    state.role = delta_fields.get("role")
                # Reasoning is not a declared field of the SDK's delta: a dict's key, or pydantic's extra.
                reasoning_fields = delta_fields if type(delta) is dict else getattr(delta, "__pydantic_extra__", None)
                if reasoning_fields and (  # most deltas carry none, or `reasoning: null`: no call for them
                    reasoning_fields.get("reasoning")
                    or reasoning_fields.get("reasoning_content")
                    or reasoning_fields.get("reasoning_details")
                ):
                    self._add_reasoning(state, reasoning_fields)
            if type(text) is str and text:
                size = state.size
                room = self.limit - size
                if room > 0:
                    state.parts.append(text if len(text) <= room else text[:room])
                state.size = size + len(text)
            calls = delta_fields.get("tool_calls")
            if calls and type(calls) is list:
                self._add_tool_calls(state, calls)

    def _add_reasoning(self, state: _Choice, delta: Mapping[str, Any]) -> None:
        """A delta's reasoning: the `reasoning` / `reasoning_content` text, else its `reasoning_details`."""
        text = delta.get("reasoning") or delta.get("reasoning_content")
        if type(text) is not str or not text:
            details = delta.get("reasoning_details")
            if not details:
                return
            text, encrypted = reasoning_details_text(details)
            state.encrypted_reasoning = state.encrypted_reasoning or encrypted
            if not text:
                return
        if state.reasoning is None:
            state.reasoning = _Text(self.limit)
        state.reasoning.add(text)

    def _add_tool_calls(self, state: _Choice, calls: list[Any]) -> None:
        for call in calls:
            call_fields = fields(call)
            index = _index(call_fields.get("index"))
            slot = state.tool_calls.get(index)
            if slot is None:
                slot = state.tool_calls[index] = [None, None, _Text(self.limit)]
            function = fields(call_fields.get("function"))
            slot[0] = slot[0] or call_fields.get("id")
            slot[1] = slot[1] or function.get("name")
            arguments = function.get("arguments")
            if type(arguments) is str and arguments:
                slot[2].add(arguments)

    def finish(self) -> ResponseRecord:
        record = self.record
        ordered = [self.choices[i] for i in sorted(self.choices)]
        record.finish_reasons = [c.finish_reason for c in ordered if c.finish_reason is not None]
        if self.capture:
            record.output = [self._message(c) for c in ordered]
        return record

    def _message(self, choice: _Choice) -> Message:
        parts: list[dict[str, Any]] = []
        if choice.reasoning is not None:
            parts.append({"type": "reasoning", "content": choice.reasoning.text()})
        elif choice.encrypted_reasoning:
            parts.append({"type": "reasoning", "content": ENCRYPTED_REASONING})
        if choice.size:
            parts.append({"type": "text", "content": _joined(choice.parts, choice.size, self.limit)})
        for index in sorted(choice.tool_calls):
            call_id, name, arguments = choice.tool_calls[index]
            parts.append(tool_call_part(call_id, name, arguments.text(), self.limit))
        message: Message = {"role": choice.role or "assistant", "parts": parts}
        if choice.finish_reason is not None:
            message["finish_reason"] = choice.finish_reason
        return message


_RESPONSE_DONE = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesAccumulator:
    """Responses API events: the final `response.completed` event carries the whole response, usage included."""

    __slots__ = ("capture", "done", "limit", "record", "text")

    def __init__(self, capture: bool, limit: int) -> None:
        self.capture = capture
        self.limit = limit
        self.record = ResponseRecord()
        self.text: _Text | None = None
        self.done = False

    def add(self, event: Any) -> None:
        kind = get(event, "type")
        if kind == "response.output_text.delta":
            if self.capture:
                if self.text is None:
                    self.text = _Text(self.limit)
                delta = get(event, "delta")
                if isinstance(delta, str):
                    self.text.add(delta)
        elif kind in _RESPONSE_DONE:
            self.record = map_responses(get(event, "response"), self.capture, self.limit)
            self.done = True
        elif kind == "response.created":
            response = get(event, "response")
            self.record.id = get(response, "id")
            self.record.model = get(response, "model")
        elif kind == "error":
            self.record.error_code = get(event, "code")
            self.record.error_message = get(event, "message")

    def finish(self) -> ResponseRecord:
        if not self.done and self.capture and self.text is not None:
            self.record.output = [{"role": "assistant", "parts": [{"type": "text", "content": self.text.text()}]}]
        return self.record
