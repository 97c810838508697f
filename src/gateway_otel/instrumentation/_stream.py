"""Streams: a proxy that looks exactly like the openai stream it wraps and ends the call's span exactly once.

The span ends when the stream is exhausted, when iteration raises, when the caller calls `close()` or leaves a
`with` block, when a stream helper (`chat.completions.stream()`, `responses.stream()`) closes the HTTP response
directly, or when the stream is garbage-collected unfinished. Chunks feed an accumulator that builds the same
`ResponseRecord` a non-streamed response gives, so one attribute path serves both.

Per chunk the work is a counter, one timestamp for the first chunk, and reading the fields that are kept; content
is appended only while it is captured and only up to the cap, so memory is bounded by the cap, not the stream.
No context is attached while the caller iterates: a span the caller opens in its loop is a sibling of the LLM span.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from .._internal import internal_error
from ._content import _EMPTY, Message, encodable, fields, get, tool_call_part
from ._proxy import Proxy
from ._response import ResponseRecord, map_responses, map_usage

COMPLETED, CLOSED, ABANDONED, CANCELLED, FAILED = "completed", "closed", "abandoned", "cancelled", "error"


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

    __slots__ = ("finish_reason", "parts", "role", "size", "tool_calls")

    def __init__(self) -> None:
        self.role: str | None = None
        self.parts: list[str] = []
        self.size = 0
        self.tool_calls: dict[int, list[Any]] = {}
        self.finish_reason: str | None = None


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
            if type(text) is str and text:
                size = state.size
                room = self.limit - size
                if room > 0:
                    state.parts.append(text if len(text) <= room else text[:room])
                state.size = size + len(text)
            calls = delta_fields.get("tool_calls")
            if calls and type(calls) is list:
                self._add_tool_calls(state, calls)

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


class StreamedCall(Protocol):
    """What a stream reports its end to (an `Invocation`)."""

    def end_stream(
        self, state: StreamState, record: ResponseRecord, outcome: str, exc: BaseException | None
    ) -> None: ...

    def end_anyway(self) -> None: ...


class StreamState:
    """What one stream has seen so far, and the one place its span is ended.

    The proxies count chunks and feed `add` (the accumulator's own) inline in `__next__`/`__anext__`: per chunk,
    one call into the accumulator.
    """

    __slots__ = (
        "accumulator",
        "add",
        "chunks",
        "done",
        "first_chunk_at",
        "first_chunk_ns",
        "invocation",
        "last_chunk_at",
        "outcome",
    )

    def __init__(self, invocation: StreamedCall, accumulator: ChatAccumulator | ResponsesAccumulator) -> None:
        self.invocation = invocation
        self.accumulator = accumulator
        self.add = accumulator.add
        self.chunks = 0
        self.first_chunk_at: float | None = None
        self.first_chunk_ns = 0
        self.last_chunk_at = 0.0
        self.done = False
        self.outcome: str | None = None

    def on_first_chunk(self) -> None:
        self.first_chunk_at = time.perf_counter()
        self.first_chunk_ns = time.time_ns()

    def finish(self, outcome: str, exc: BaseException | None = None) -> None:
        """End the span, once, whichever way the stream ended."""
        if self.done:
            return
        self.done = True
        self.outcome = outcome
        self.last_chunk_at = time.perf_counter()  # right after the last chunk when the stream ran to its end
        try:
            self.invocation.end_stream(self, self.accumulator.finish(), outcome, exc)
        except Exception:
            internal_error("stream end")
            self.invocation.end_anyway()

    def on_response_closed(self) -> None:
        """A stream helper closed the HTTP response directly (the stream itself closes the real one at its end)."""
        self.finish(CLOSED)


class _ClosingResponse(Proxy):  # type: ignore[misc]
    """The stream's HTTP response, telling the stream state when someone closes it directly."""

    def __init__(self, response: Any, state: StreamState) -> None:
        super().__init__(response)
        self._self_state = state

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_state.on_response_closed()

    async def aclose(self) -> Any:
        try:
            return await self.__wrapped__.aclose()
        finally:
            self._self_state.on_response_closed()


class _StreamProxy(Proxy):  # type: ignore[misc]
    """Shared by the sync and async proxies: the state, the response, and the end on garbage collection."""

    def __init__(self, stream: Any, state: StreamState) -> None:
        super().__init__(stream)
        self._self_state = state
        self._self_response: Any = None
        self._self_next = getattr(stream, "__anext__" if hasattr(stream, "__anext__") else "__next__")

    @property
    def response(self) -> Any:
        if self._self_response is None:
            self._self_response = _ClosingResponse(self.__wrapped__.response, self._self_state)
        return self._self_response

    def __del__(self) -> None:
        state = getattr(self, "_self_state", None)
        if state is not None and not state.done:
            state.finish(ABANDONED)


class TracedStream(_StreamProxy):
    """An `openai.Stream` whose iteration is recorded on the call's span."""

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self._self_next()
        except StopIteration:
            self._self_state.finish(COMPLETED)
            raise
        except Exception as exc:
            self._self_state.finish(FAILED, exc)
            raise
        except BaseException:  # cancelled, interrupted: the caller's decision, not the gateway's failure
            self._self_state.finish(CANCELLED)
            raise
        state = self._self_state  # the per-chunk path, inline: a count, the first chunk's time, the accumulator
        state.chunks += 1
        if state.first_chunk_at is None:
            state.on_first_chunk()
        try:
            state.add(chunk)
        except Exception:
            internal_error("stream chunk")
        return chunk

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.finish(CLOSED)


class TracedAsyncStream(_StreamProxy):
    """An `openai.AsyncStream` whose iteration is recorded on the call's span."""

    def __aiter__(self) -> TracedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._self_next()
        except StopAsyncIteration:
            self._self_state.finish(COMPLETED)
            raise
        except Exception as exc:
            self._self_state.finish(FAILED, exc)
            raise
        except BaseException:  # cancelled, interrupted: the caller's decision, not the gateway's failure
            self._self_state.finish(CANCELLED)
            raise
        state = self._self_state  # the per-chunk path, inline: a count, the first chunk's time, the accumulator
        state.chunks += 1
        if state.first_chunk_at is None:
            state.on_first_chunk()
        try:
            state.add(chunk)
        except Exception:
            internal_error("stream chunk")
        return chunk

    async def __aenter__(self) -> TracedAsyncStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_state.finish(CLOSED)
