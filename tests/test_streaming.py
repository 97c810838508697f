"""Streams: the span ends exactly once on every way a stream can end, with usage, time to first chunk and content.

Every termination mode × sync/async × chat/completions/responses, through the real openai client and the
simulator. Garbage-collection endings are checked with `gc.collect()` and a weak reference, never with sleeps.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import threading
import weakref
from collections.abc import Callable
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from conftest import OPENAI_MAJOR, Captured, make_client

MODEL = "openai/gpt-4o-mini"
PROMPT = "Tell me about spans and traces in OpenTelemetry"
MESSAGES = [{"role": "user", "content": PROMPT}]

ENDPOINTS: dict[str, Callable[[Any], Any]] = {
    "chat": lambda c: c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True),
    "completions": lambda c: c.completions.create(model=MODEL, prompt=PROMPT, stream=True),
    "responses": lambda c: c.responses.create(model=MODEL, input=PROMPT, stream=True),
}


async def maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def read(stream: Any, limit: int | None = None, by_next: bool = False) -> list[Any]:
    """The chunks, read with a loop (the proxy's generator) or `next()` / `anext()` (its `__next__` / `__anext__`)."""
    out: list[Any] = []
    asynchronous = isinstance(stream, openai.AsyncStream) or hasattr(stream, "__anext__")
    if by_next:
        while limit is None or len(out) < limit:
            try:
                out.append(await stream.__anext__() if asynchronous else next(stream))
            except (StopIteration, StopAsyncIteration):
                break
    elif asynchronous:
        async for chunk in stream:
            out.append(chunk)
            if limit is not None and len(out) >= limit:
                break
    else:
        for chunk in stream:
            out.append(chunk)
            if limit is not None and len(out) >= limit:
                break
    return out


async def exhausted(stream: Any) -> None:
    await read(stream)


async def break_early(stream: Any) -> None:
    await read(stream, 2)


async def close_early(stream: Any) -> None:
    await read(stream, 2)
    await maybe(stream.close())


async def with_block_exit(stream: Any) -> None:
    if isinstance(stream, openai.AsyncStream):
        async with stream as entered:
            assert entered is stream
            await read(entered, 2)
    else:
        with stream as entered:
            assert entered is stream
            await read(entered, 2)


async def exhausted_by_next(stream: Any) -> None:
    await read(stream, by_next=True)


async def two_by_next(stream: Any) -> None:
    await read(stream, 2, by_next=True)


async def break_then_read_on(stream: Any) -> None:
    first = await read(stream, 2)
    gc.collect()  # the first loop's iterator is gone: the stream is not ended by it
    rest = await read(stream)
    assert len(first) == 2 and rest


async def next_then_loop(stream: Any) -> None:
    if isinstance(stream, openai.AsyncStream):
        await stream.__anext__()
    else:
        next(stream)
    await read(stream)


async def never_iterated_close(stream: Any) -> None:
    await maybe(stream.close())


async def never_iterated(stream: Any) -> None:
    return None


# mode → (how the caller ends it, expected outcome, whether the span ends before garbage collection)
MODES = {
    "exhausted": (exhausted, "completed", True),
    "break+gc": (break_early, "abandoned", False),
    "close": (close_early, "closed", True),
    "with-exit": (with_block_exit, "closed", True),
    "next-exhausted": (exhausted_by_next, "completed", True),
    "next-two+gc": (two_by_next, "abandoned", False),
    "break+read-on": (break_then_read_on, "completed", True),
    "next+loop": (next_then_loop, "completed", True),
    "never-iterated+close": (never_iterated_close, "closed", True),
    "never-iterated+gc": (never_iterated, "abandoned", False),
}


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("mode", list(MODES))
def test_stream_span_ends_exactly_once(
    telemetry: Captured, sim: Any, mode: str, endpoint: str, asynchronous: bool
) -> None:
    end, outcome, ends_before_gc = MODES[mode]
    refs: list[weakref.ref[Any]] = []

    async def go() -> None:
        client = make_client(sim, asynchronous=asynchronous)
        stream = await maybe(ENDPOINTS[endpoint](client))
        assert isinstance(stream, openai.AsyncStream if asynchronous else openai.Stream)
        refs.append(weakref.ref(stream))
        await end(stream)
        if ends_before_gc:
            assert len(telemetry.spans()) == 1  # deterministically, before any collection
        del stream

    asyncio.run(go())
    gc.collect()
    assert refs[0]() is None
    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert attrs["gateway.stream.outcome"] == outcome
    assert attrs["gen_ai.request.stream"] is True
    if outcome == "completed":
        assert span.status.status_code is StatusCode.OK
        assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
        assert attrs["gen_ai.usage.cost"] > 0  # a paid model: OpenRouter's inline cost
        assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
        assert attrs["gateway.upstream.provider"] == "OpenAI"
        verb = "completion" if endpoint == "completions" else "reply"
        assert attrs["output.value"] == f"Simulated {verb} to: {PROMPT}"
        assert "gateway.usage.reported" not in attrs
    else:
        assert span.status.status_code is StatusCode.UNSET
    if mode.startswith("never"):
        assert attrs["gateway.stream.chunks"] == 0
        assert "gen_ai.response.time_to_first_chunk" not in attrs
    else:  # the partial readers stop after 2 chunks; a whole answer is more
        partial = mode in ("break+gc", "close", "with-exit", "next-two+gc")
        assert attrs["gateway.stream.chunks"] == 2 if partial else attrs["gateway.stream.chunks"] > 2
        assert 0 < attrs["gen_ai.response.time_to_first_chunk"] < (span.end_time - span.start_time) / 1e9
        [event] = [e for e in span.events if e.name == "gateway.first_chunk"]
        assert span.start_time <= event.timestamp <= span.end_time


@pytest.mark.parametrize("by_next", [False, True], ids=["loop", "next"])
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_transport_error_mid_stream(
    telemetry: Captured, sim: Any, endpoint: str, asynchronous: bool, by_next: bool
) -> None:
    async def go() -> None:
        client = make_client(sim, asynchronous=asynchronous, default_headers={"X-Simulator-Scenario": "disconnect"})
        stream = await maybe(ENDPOINTS[endpoint](client))
        await read(stream, by_next=by_next)

    with pytest.raises(Exception) as caught:
        asyncio.run(go())
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    attrs = dict(span.attributes or {})
    assert attrs["gateway.stream.outcome"] == "error"
    exc_type = type(caught.value)
    expected = "openai.APIConnectionError" if OPENAI_MAJOR >= 3 else f"{exc_type.__module__}.{exc_type.__qualname__}"
    assert attrs["error.type"] == expected
    assert attrs["gateway.stream.chunks"] >= 1
    assert [e.name for e in span.events].count("exception") == 1


@pytest.mark.parametrize("by_next", [False, True], ids=["loop", "next"])
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_gateway_error_inside_the_stream(
    telemetry: Captured, sim: Any, endpoint: str, asynchronous: bool, by_next: bool
) -> None:
    """OpenRouter's mid-stream error: HTTP 200, then a chunk with a top-level `error`."""

    async def go() -> None:
        client = make_client(sim, asynchronous=asynchronous, default_headers={"X-Simulator-Scenario": "stream-error"})
        await read(await maybe(ENDPOINTS[endpoint](client)), by_next=by_next)

    with pytest.raises(openai.APIError) as caught:
        asyncio.run(go())
    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == str(caught.value.body["code"])
    assert attrs["gateway.error.message"] == caught.value.body["message"]
    assert attrs["gateway.stream.outcome"] == "error"
    assert attrs["gateway.stream.chunks"] >= 2


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("helper", ["chat", "responses"])
@pytest.mark.parametrize("early", [False, True], ids=["full", "early-exit"])
def test_stream_helpers(telemetry: Captured, sim: Any, helper: str, early: bool, asynchronous: bool) -> None:
    """`chat.completions.stream()` / `responses.stream()`: an early exit closes the HTTP response directly."""

    async def go() -> Any:
        client = make_client(sim, asynchronous=asynchronous)
        manager = (
            client.chat.completions.stream(model=MODEL, messages=MESSAGES)
            if helper == "chat"
            else client.responses.stream(model=MODEL, input=PROMPT)
        )
        if asynchronous:
            async with manager as stream:
                if early:
                    await read(stream, 2)
                    return None
                return await (stream.get_final_completion() if helper == "chat" else stream.get_final_response())
        with manager as stream:
            if early:
                await read(stream, 2)
                return None
            return stream.get_final_completion() if helper == "chat" else stream.get_final_response()

    final = asyncio.run(go())
    span = telemetry.span()  # ended by the `with` exit itself, without garbage collection
    attrs = dict(span.attributes or {})
    if early:
        assert attrs["gateway.stream.outcome"] == "closed"
        assert span.status.status_code is StatusCode.UNSET
    else:
        assert attrs["gateway.stream.outcome"] == "completed"
        assert attrs["gen_ai.response.id"] == final.id
        assert attrs["gen_ai.usage.output_tokens"] == (
            final.usage.completion_tokens if helper == "chat" else final.usage.output_tokens
        )
        text = final.choices[0].message.content if helper == "chat" else final.output_text
        assert attrs["output.value"] == text


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("form", ["with_raw_response", "with_streaming_response"])
def test_raw_and_streaming_response_forms(telemetry: Captured, sim: Any, form: str, asynchronous: bool) -> None:
    async def go() -> list[Any]:
        client = make_client(sim, asynchronous=asynchronous)
        create = getattr(client.chat.completions, form).create
        if form == "with_raw_response":
            response = await maybe(create(model=MODEL, messages=MESSAGES, stream=True))
            stream = response.parse()
            assert isinstance(stream, openai.AsyncStream if asynchronous else openai.Stream)
            return await read(stream)
        if asynchronous:
            async with create(model=MODEL, messages=MESSAGES, stream=True) as response:
                return await read(await response.parse())
        with create(model=MODEL, messages=MESSAGES, stream=True) as response:
            return await read(response.parse())

    chunks = asyncio.run(go())
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gateway.stream.outcome"] == "completed"
    assert attrs["gateway.stream.chunks"] == len(chunks)
    assert attrs["llm.token_count.total"] == chunks[-1].usage.total_tokens


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_streaming_response_closed_unread_and_non_stream_parse(
    telemetry: Captured, sim: Any, asynchronous: bool
) -> None:
    async def go() -> Any:
        client = make_client(sim, asynchronous=asynchronous)
        create = client.chat.completions.with_streaming_response.create
        if asynchronous:
            async with create(model=MODEL, messages=MESSAGES, stream=True):
                pass
            async with create(model=MODEL, messages=MESSAGES) as response:
                return await response.parse()
        with create(model=MODEL, messages=MESSAGES, stream=True):
            pass
        with create(model=MODEL, messages=MESSAGES) as response:
            return response.parse()

    parsed = asyncio.run(go())
    unread, read_span = telemetry.spans()
    assert unread.attributes["gateway.stream.outcome"] == "abandoned"
    assert read_span.attributes["gen_ai.response.id"] == parsed.id
    assert "gateway.stream.outcome" not in read_span.attributes


def test_tool_call_deltas_are_assembled(telemetry: Captured, sim: Any) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    client = make_client(sim)
    with client.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "Paris?"}], tools=tools
    ) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    prefix = "llm.output_messages.0.message.tool_calls.0.tool_call"
    assert attrs[f"{prefix}.id"] == call.id
    assert attrs[f"{prefix}.function.name"] == "get_weather"
    assert attrs[f"{prefix}.function.arguments"] == call.function.arguments
    assert json.loads(attrs[f"{prefix}.function.arguments"]) == json.loads(call.function.arguments)


def test_a_span_opened_while_iterating_is_a_sibling(telemetry: Captured, sim: Any) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    client = make_client(sim)
    with tracer.start_as_current_span("request") as root:
        for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            with tracer.start_as_current_span("per-chunk work"):
                pass
    spans = telemetry.spans()
    llm = next(s for s in spans if s.name.startswith("chat "))
    children = [s for s in spans if s.name == "per-chunk work"]
    assert children
    root_id = root.get_span_context().span_id
    assert llm.parent.span_id == root_id
    assert all(s.parent.span_id == root_id for s in children)


def test_interleaved_streams_in_threads_and_tasks_keep_their_own_spans(telemetry: Captured, sim: Any) -> None:
    client = make_client(sim)
    streams = [
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"thread {i}"}], stream=True)
        for i in range(4)
    ]
    iterators = [iter(s) for s in streams]
    for _ in range(3):  # interleave the first chunks
        for it in iterators:
            next(it)

    threads = [threading.Thread(target=lambda it=it: [None for _ in it]) for it in iterators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def tasks() -> None:
        aclient = make_client(sim, asynchronous=True)

        async def one(i: int) -> None:
            stream = await aclient.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"task {i}"}], stream=True
            )
            async for _ in stream:
                await asyncio.sleep(0)

        await asyncio.gather(*(one(i) for i in range(4)))

    asyncio.run(tasks())
    spans = telemetry.spans()
    assert len(spans) == 8
    outputs = sorted(s.attributes["output.value"] for s in spans)
    assert outputs == sorted(
        [f"Simulated reply to: thread {i}" for i in range(4)] + [f"Simulated reply to: task {i}" for i in range(4)]
    )
    assert all(s.attributes["gateway.stream.outcome"] == "completed" for s in spans)
    assert len({s.context.span_id for s in spans}) == 8


@pytest.mark.parametrize("stream_usage", [False, True], ids=["default", "opt-in"])
def test_stream_usage_injection_is_opt_in(make_telemetry: Any, sim: Any, stream_usage: bool) -> None:
    make_telemetry(stream_usage=stream_usage)
    client = make_client(sim)
    kwargs: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "stream": True}
    for _ in client.chat.completions.create(**kwargs):
        pass
    sent = sim.requests[-1].body
    if stream_usage:
        assert sent["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in sent
    # The caller's own choice is never overridden.
    for _ in client.chat.completions.create(**kwargs, stream_options={"include_usage": False}):
        pass
    assert sim.requests[-1].body["stream_options"] == {"include_usage": False}
    assert kwargs == {"model": MODEL, "messages": MESSAGES, "stream": True}


def test_missing_usage_is_said_not_guessed(telemetry: Captured, sim: Any) -> None:
    """A gateway that sends no usage chunk: the span says so rather than estimating."""
    client = make_client(sim)
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    chunks = []
    for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].finish_reason:
            break  # stop before the usage chunk
    stream.close()
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gateway.usage.reported"] is False
    assert "gen_ai.usage.output_tokens" not in attrs
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_loop_over_a_stream_nobody_else_holds_reads_it_to_the_end(
    telemetry: Captured, sim: Any, asynchronous: bool
) -> None:
    chunks = 0
    if asynchronous:

        async def go() -> int:
            client, read = make_client(sim, asynchronous=True), 0
            async for _ in await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
                gc.collect()
                read += 1
            return read

        chunks = asyncio.run(go())
    else:
        for _ in make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            gc.collect()  # the loop's iterator holds the stream: it is not collected (nor ended as abandoned) mid-way
            chunks += 1
    attrs = dict(telemetry.span().attributes or {})
    assert (attrs["gateway.stream.outcome"], attrs["gateway.stream.chunks"]) == ("completed", chunks)


def test_stream_metrics(telemetry: Captured, sim: Any) -> None:
    client = make_client(sim)
    for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
        pass
    metrics = telemetry.metrics()
    [ttfc] = metrics["gen_ai.client.operation.time_to_first_chunk"]
    [per_chunk] = metrics["gen_ai.client.operation.time_per_output_chunk"]
    [duration] = metrics["gen_ai.client.operation.duration"]
    assert ttfc.count == per_chunk.count == duration.count == 1
    assert 0 < ttfc.sum <= duration.sum
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in metrics["gen_ai.client.token.usage"]}
    span = telemetry.span()
    assert tokens == {
        "input": span.attributes["gen_ai.usage.input_tokens"],
        "output": span.attributes["gen_ai.usage.output_tokens"],
    }


def test_privacy_mode_streams_keep_no_content(make_telemetry: Any, sim: Any) -> None:
    telemetry = make_telemetry(capture_content=False)
    for _ in make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
        pass
    span = telemetry.span()
    assert "Simulated reply" not in span.to_json() and PROMPT not in span.to_json()
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_captured_stream_content_is_capped(make_telemetry: Any, sim: Any) -> None:
    telemetry = make_telemetry(max_content_length=10)
    for _ in make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
        pass
    output = telemetry.span().attributes["output.value"]
    full = f"Simulated reply to: {PROMPT}"
    assert output == f"{full[:10]}…[truncated {len(full) - 10} chars]"
