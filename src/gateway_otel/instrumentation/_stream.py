"""Streams: a proxy that looks exactly like the openai stream it wraps and ends the call's span exactly once.

The span ends when the stream is exhausted, when iteration raises, when the caller calls `close()` or leaves a
`with` block, when a stream helper (`chat.completions.stream()`, `responses.stream()`) closes the HTTP response
directly, or when the stream is garbage-collected unfinished. Chunks feed an accumulator (`_accumulate`) that builds
the same `ResponseRecord` a non-streamed response gives, so one attribute path serves both.

A stream's `for` / `async for` loop runs a generator (`_chunks`, `_async_chunks`) over the openai stream's own
iterator, `next()` / `anext()` the proxy's `__next__` / `__anext__`; either way, per chunk the caller's path appends
the chunk to a short list (one timestamp for the first chunk); every `CHUNK_BATCH` chunks, and at the end, the
accumulator reads the batch in one tight loop. Read one at a time, between the SDK's own parsing of each chunk, the
same reads cost several times what they cost in a loop (the accumulator's code and objects gone cold each time): the
chunks of a 100-chunk stream cost 455-590 µs one by one, 240-330 µs in batches of 4 or 8, no less in larger ones
(held chunks keep the SDK from reusing their memory, and each held chunk adds ~1.7 KiB to a stream's peak). Content
is appended only while it is captured and only up to the cap, so memory is bounded by the cap and the batch, not the
stream.
No context is attached while the caller iterates: a span the caller opens in its loop is a sibling of the LLM span.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from .._internal import internal_error
from ._accumulate import ChatAccumulator, ResponsesAccumulator
from ._proxy import Proxy
from ._response import ResponseRecord

COMPLETED, CLOSED, ABANDONED, CANCELLED, FAILED = "completed", "closed", "abandoned", "cancelled", "error"
CHUNK_BATCH = 4
"""Chunks held before the accumulator reads them (4 and 8 measured best of 1, 4, 8, 16, 32, 128; 4 holds less)."""


class StreamedCall(Protocol):
    """What a stream reports its end to (an `Invocation`)."""

    def end_stream(
        self, state: StreamState, record: ResponseRecord, outcome: str, exc: BaseException | None
    ) -> None: ...

    def end_anyway(self) -> None: ...


class StreamState:
    """What one stream has seen so far, and the one place its span is ended.

    Each chunk is appended to `pending` (by the loops' generators inline, by `take` for `next()` / `anext()`);
    `read_pending` feeds a full batch to the accumulator, and `finish` what is left.
    """

    __slots__ = (
        "accumulator",
        "chunks",
        "done",
        "first_chunk_at",
        "first_chunk_ns",
        "invocation",
        "last_chunk_at",
        "outcome",
        "pending",
    )

    def __init__(self, invocation: StreamedCall, accumulator: ChatAccumulator | ResponsesAccumulator) -> None:
        self.invocation = invocation
        self.accumulator = accumulator
        self.pending: list[Any] = []
        self.chunks = 0
        """Chunks read by the accumulator (the pending ones are added at the end)."""
        self.first_chunk_at: float | None = None
        self.first_chunk_ns = 0
        self.last_chunk_at = 0.0
        self.done = False
        self.outcome: str | None = None

    def on_first_chunk(self) -> None:
        self.first_chunk_at = time.perf_counter()
        self.first_chunk_ns = time.time_ns()

    def take(self, chunk: Any) -> None:
        """One chunk read through `next()` / `anext()` (the loops' generators do the same inline)."""
        if self.first_chunk_at is None:
            self.on_first_chunk()
        pending = self.pending
        pending.append(chunk)
        if len(pending) >= CHUNK_BATCH:
            self.read_pending()

    def ended_by(self, exc: BaseException) -> None:
        """The stream's iterator raised `exc`: exhausted, failed, or cancelled / interrupted (the caller's decision,
        not the gateway's failure)."""
        if isinstance(exc, (StopIteration, StopAsyncIteration)):
            self.finish(COMPLETED)
        elif isinstance(exc, Exception):
            self.finish(FAILED, exc)
        else:
            self.finish(CANCELLED)

    def read_pending(self) -> None:
        """The accumulator reads the held chunks, each guarded: one odd chunk does not cost the others."""
        pending = self.pending
        self.chunks += len(pending)
        add = self.accumulator.add
        for chunk in pending:
            try:
                add(chunk)
            except Exception:
                internal_error("stream chunk")
        pending.clear()

    def finish(self, outcome: str, exc: BaseException | None = None) -> None:
        """End the span, once, whichever way the stream ended."""
        if self.done:
            return
        self.done = True
        self.last_chunk_at = time.perf_counter()  # right after the last chunk when the stream ran to its end
        self.read_pending()
        if outcome == CLOSED and exc is None:
            outcome, exc = _closed_by(sys.exc_info()[1])
        self.outcome = outcome
        try:
            self.invocation.end_stream(self, self.accumulator.finish(), outcome, exc)
        except Exception:
            internal_error("stream end")
            self.invocation.end_anyway()

    def on_response_closed(self) -> None:
        """A stream helper closed the HTTP response directly (the stream itself closes the real one at its end)."""
        self.finish(CLOSED)


def _closed_by(error: BaseException | None) -> tuple[str, BaseException | None]:
    """How a stream closed while an exception was propagating ended: the caller's error (an openai stream helper
    that failed on a chunk, the caller's own code) is the stream's; a cancelled task or an interrupt (Ctrl-C,
    `SystemExit`) cancels it, as it does a stream interrupted while it waits for a chunk (`StreamState.ended_by`)."""
    if error is None or isinstance(error, GeneratorExit):
        return CLOSED, None
    if not isinstance(error, Exception):  # asyncio.CancelledError, KeyboardInterrupt, SystemExit
        return CANCELLED, None
    return FAILED, error


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
        try:
            state = self._self_state
        except (AttributeError, ValueError):  # `__init__` never ran; wrapt 1.x says so with ValueError
            return
        if state is not None and not state.done:
            state.finish(ABANDONED)


class TracedStream(_StreamProxy):
    """An `openai.Stream` whose iteration is recorded on the call's span."""

    def __iter__(self) -> Iterator[Any]:
        return _chunks(self, iter(self.__wrapped__), self._self_state)

    def __next__(self) -> Any:
        try:
            chunk = self._self_next()
        except BaseException as exc:
            self._self_state.ended_by(exc)
            raise
        self._self_state.take(chunk)
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


def _chunks(stream: TracedStream, source: Iterator[Any], state: StreamState) -> Iterator[Any]:
    """What `for chunk in stream` iterates: the openai stream's own iterator, with each chunk recorded.

    A generator resumed by the caller's loop costs less per chunk than a `__next__` method on the proxy (~80 µs
    less per 100-chunk stream, measured). It ends the span when the stream ends or fails; when the caller leaves the
    loop early it does nothing (the generator is closed with `GeneratorExit`): the stream may still be read, closed
    or dropped, and the proxy sees to that. It holds `stream`, so that `for chunk in client...create(stream=True)`
    does not leave the proxy to be collected (and end the span as abandoned) while its chunks are being read.
    """
    pending = state.pending
    while True:
        try:
            chunk = next(source)
        except StopIteration:
            state.finish(COMPLETED)
            return
        except BaseException as exc:
            state.ended_by(exc)
            raise
        if state.first_chunk_at is None:  # `StreamState.take`, inline: no call per chunk
            state.on_first_chunk()
        pending.append(chunk)
        if len(pending) >= CHUNK_BATCH:
            state.read_pending()
        yield chunk


async def _async_chunks(
    stream: TracedAsyncStream, source: AsyncIterator[Any], state: StreamState
) -> AsyncIterator[Any]:
    """`_chunks` for `async for chunk in stream`."""
    pending = state.pending
    while True:
        try:
            chunk = await source.__anext__()
        except StopAsyncIteration:
            state.finish(COMPLETED)
            return
        except BaseException as exc:
            state.ended_by(exc)
            raise
        if state.first_chunk_at is None:  # `StreamState.take`, inline: no call per chunk
            state.on_first_chunk()
        pending.append(chunk)
        if len(pending) >= CHUNK_BATCH:
            state.read_pending()
        yield chunk


class TracedAsyncStream(_StreamProxy):
    """An `openai.AsyncStream` whose iteration is recorded on the call's span."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return _async_chunks(self, self.__wrapped__.__aiter__(), self._self_state)

    async def __anext__(self) -> Any:
        try:
            chunk = await self._self_next()
        except BaseException as exc:
            self._self_state.ended_by(exc)
            raise
        self._self_state.take(chunk)
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
