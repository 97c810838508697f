"""The stream state and proxies alone, over a stand-in call: the call is ended once whichever way its stream ends; a
telemetry bug on a chunk or at the end is logged by its place while the caller's iteration goes on; an interrupted
sync stream is cancelled; a half-built proxy is collected quietly; the first chunk's event has the first chunk's
time. (Mutation testing, `bench/mutate.py streams`, found each checked only in passing.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from conftest import Captured, make_client
from gateway_otel import _internal
from gateway_otel.instrumentation._accumulate import ChatAccumulator
from gateway_otel.instrumentation._raw import _RawStreamResponse, _StreamingResponse
from gateway_otel.instrumentation._stream import CHUNK_BATCH, StreamState, TracedAsyncStream, TracedStream


class _Call:
    """Stands in for the `Invocation`: records how it was ended; `fail` makes `end_stream` raise."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.ended: list[tuple[str, BaseException | None]] = []
        self.ended_anyway = 0

    def end_stream(self, state: StreamState, record: Any, outcome: str, exc: BaseException | None) -> None:
        self.ended.append((outcome, exc))
        if self.fail:
            raise RuntimeError("a telemetry bug")

    def end_anyway(self) -> None:
        self.ended_anyway += 1


def _state(call: _Call) -> StreamState:
    return StreamState(call, ChatAccumulator(False, 100))


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Production's handling of internal errors (logged, not raised), with no place reported yet."""
    monkeypatch.setattr(_internal, "STRICT", False)
    monkeypatch.setattr(_internal, "_reported", set())
    caplog.set_level(logging.DEBUG, logger="gateway_otel")
    return caplog


def _reported(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gateway_otel"]


def test_the_call_is_ended_once_however_often_its_stream_ends() -> None:
    call = _Call()
    state = _state(call)
    state.finish("completed")
    state.finish("closed")
    state.on_response_closed()
    assert call.ended == [("completed", None)] and state.outcome == "completed"


def test_a_bug_while_ending_is_logged_and_the_call_still_ends(lenient: pytest.LogCaptureFixture) -> None:
    call = _Call(fail=True)
    _state(call).finish("completed")
    assert (call.ended, call.ended_anyway) == ([("completed", None)], 1)
    assert _reported(lenient) == ["gateway_otel: internal error in stream end; the application's call is unaffected"]


class _FailingAccumulator(ChatAccumulator):
    def add(self, chunk: Any) -> None:
        raise ValueError("a chunk the accumulator cannot read")


class _RecordingAccumulator(ChatAccumulator):
    __slots__ = ("read",)

    def __init__(self) -> None:
        super().__init__(False, 100)
        self.read: list[Any] = []

    def add(self, chunk: Any) -> None:
        self.read.append(chunk)


@pytest.mark.parametrize("how", ["next", "loop", "anext", "async-loop"])
def test_chunks_are_read_in_batches_in_order_and_the_rest_at_the_end(how: str) -> None:
    """Whichever way the caller reads (`next()`, a loop, `anext()`, `async for`): the batch is read at its 4th chunk."""
    call, accumulator, total = _Call(), _RecordingAccumulator(), CHUNK_BATCH * 2 + 3

    async def chunks() -> AsyncIterator[int]:
        for chunk in range(total):
            yield chunk

    if how in ("next", "loop"):
        stream: Any = TracedStream(iter(range(total)), StreamState(call, accumulator))
        source = stream if how == "next" else iter(stream)

        def take() -> Any:
            return next(source)
    else:
        stream = TracedAsyncStream(chunks(), StreamState(call, accumulator))
        source = stream if how == "anext" else stream.__aiter__()
        loop = asyncio.new_event_loop()

        def take() -> Any:
            return loop.run_until_complete(source.__anext__())

    taken = [take() for _ in range(CHUNK_BATCH - 1)]
    assert accumulator.read == []  # held, not read, while the batch fills
    taken.append(take())
    assert accumulator.read == taken == list(range(CHUNK_BATCH))
    with contextlib.suppress(StopIteration, StopAsyncIteration):
        while True:
            taken.append(take())
    assert accumulator.read == taken == list(range(total))
    assert (call.ended, stream._self_state.chunks) == ([("completed", None)], total)
    if how in ("anext", "async-loop"):
        loop.close()


def test_a_stream_closed_half_way_reads_the_chunks_it_held() -> None:
    call, accumulator = _Call(), _RecordingAccumulator()
    stream = TracedStream((n for n in range(100)), StreamState(call, accumulator))  # a generator has close()
    [next(stream) for _ in range(3)]
    stream.close()
    assert (accumulator.read, call.ended, stream._self_state.chunks) == ([0, 1, 2], [("closed", None)], 3)


def test_a_bug_on_a_chunk_is_logged_and_iteration_goes_on(lenient: pytest.LogCaptureFixture) -> None:
    async def chunks() -> AsyncIterator[int]:
        for chunk in (1, 2, 3):
            yield chunk

    async def read(stream: TracedAsyncStream) -> list[int]:
        return [chunk async for chunk in stream]

    sync_call, async_call = _Call(), _Call()
    sync_state = StreamState(sync_call, _FailingAccumulator(False, 100))
    async_state = StreamState(async_call, _FailingAccumulator(False, 100))

    async def read_by_anext(stream: TracedAsyncStream) -> list[int]:
        out = []
        with contextlib.suppress(StopAsyncIteration):
            while True:
                out.append(await stream.__anext__())
        return out

    def read_by_next(stream: TracedStream) -> list[int]:
        out = []
        with contextlib.suppress(StopIteration):
            while True:
                out.append(next(stream))
        return out

    assert list(TracedStream(iter([1, 2, 3]), sync_state)) == [1, 2, 3]
    assert asyncio.run(read(TracedAsyncStream(chunks(), async_state))) == [1, 2, 3]
    assert sync_call.ended == async_call.ended == [("completed", None)]
    assert (sync_state.chunks, async_state.chunks) == (3, 3)
    by_next_call, by_anext_call = _Call(), _Call()
    by_next_state = StreamState(by_next_call, _FailingAccumulator(False, 100))
    by_anext_state = StreamState(by_anext_call, _FailingAccumulator(False, 100))
    assert read_by_next(TracedStream(iter([1, 2, 3]), by_next_state)) == [1, 2, 3]
    assert asyncio.run(read_by_anext(TracedAsyncStream(chunks(), by_anext_state))) == [1, 2, 3]
    assert by_next_call.ended == by_anext_call.ended == [("completed", None)]
    assert (by_next_state.chunks, by_anext_state.chunks) == (3, 3)
    assert _reported(lenient) == [
        "gateway_otel: internal error in stream chunk; the application's call is unaffected",
        *["gateway_otel: internal error in stream chunk (repeated)"] * 11,  # 4 streams of 3 chunks
    ]


@pytest.mark.parametrize("by_next", [False, True], ids=["loop", "next"])
def test_an_interrupted_sync_stream_is_cancelled(by_next: bool) -> None:
    def chunks() -> Iterator[int]:
        yield 1
        raise KeyboardInterrupt

    call = _Call()
    stream = TracedStream(chunks(), _state(call))
    with pytest.raises(KeyboardInterrupt):
        if by_next:
            while True:
                next(stream)
        list(stream)
    assert call.ended == [("cancelled", None)]


@pytest.mark.parametrize(("raised", "outcome"), [(KeyboardInterrupt, "cancelled"), (ValueError, "error")])
def test_a_stream_closed_by_a_with_block_the_caller_left_by_an_exception(raised: type, outcome: str) -> None:
    """Ctrl-C in the caller's loop body cancels the stream (as it does while waiting for a chunk); the caller's own
    error fails it."""
    call = _Call()
    stream = TracedStream((n for n in range(10)), _state(call))
    with pytest.raises(raised), stream:
        for _ in stream:
            raise raised
    assert [ended[0] for ended in call.ended] == [outcome]


@pytest.mark.parametrize("proxy", [TracedStream, TracedAsyncStream, _RawStreamResponse, _StreamingResponse])
def test_a_half_built_proxy_is_collected_quietly(proxy: type) -> None:
    """A proxy whose `__init__` never ran (it raised) has no state: collecting it must not raise from `__del__`
    (wrapt 2 raises AttributeError for the missing attribute, wrapt 1.x ValueError: both are tested in CI)."""
    proxy.__new__(proxy).__del__()


def test_the_first_chunk_event_has_the_time_the_first_chunk_came(telemetry: Captured, sim: Any) -> None:
    stream = make_client(sim).chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    next(stream)
    after_first = time.time_ns()
    list(stream)
    span = telemetry.span()
    [event] = [e for e in span.events if e.name == "gateway.first_chunk"]
    assert span.start_time is not None and span.start_time <= event.timestamp <= after_first
