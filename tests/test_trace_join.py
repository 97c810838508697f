"""Trace join: the exact request body and headers the gateway receives, on every surface, sync and async, streamed.

Each test makes the same call twice through the real openai client and the simulator: once with instrumentation
suppressed (what the SDK sends on its own) and once traced; the traced request must be exactly the first plus the
trace join, whose ids are those of the exported LLM span.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

import gateway_otel
from conftest import OPENROUTER_URL, Captured, make_client
from gateway_otel import ConfigurationError, Settings
from test_spans import SURFACES

MODEL = "openai/gpt-oss-20b:free"
PAID_MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "What is OpenTelemetry?"}]
LITELLM_URL = "http://localhost:4000/v1"
VOLATILE_HEADERS = ("content-length", "idempotency-key")


async def maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def read(stream: Any) -> None:
    if hasattr(stream, "__aiter__"):
        async for _ in stream:
            pass
    else:
        for _ in stream:
            pass


async def _surface_call(client: Any, surface: str, **overrides: Any) -> None:
    getter, kwargs, _, _ = SURFACES[surface]
    await maybe(getter(client, False)(**{**kwargs, **overrides}))


async def _stream_call(client: Any, kind: str, **overrides: Any) -> None:
    """One streamed call of the given kind, read to the end."""
    chat = {"model": MODEL, "messages": MESSAGES, **overrides}
    if kind == "chat":
        await read(await maybe(client.chat.completions.create(stream=True, **chat)))
    elif kind == "completions":
        await read(await maybe(client.completions.create(model=MODEL, prompt="Hi", stream=True, **overrides)))
    elif kind == "responses":
        await read(await maybe(client.responses.create(model=MODEL, input="Hi", stream=True, **overrides)))
    elif kind in ("chat.stream", "responses.stream"):
        manager = (
            client.chat.completions.stream(**chat)
            if kind == "chat.stream"
            else client.responses.stream(model=MODEL, input="Hi", **overrides)
        )
        if hasattr(manager, "__aenter__"):
            async with manager as stream:
                await read(stream)
        else:
            with manager as stream:
                await read(stream)
    elif kind == "with_streaming_response":
        create = client.chat.completions.with_streaming_response.create
        if type(client).__name__.startswith("Async"):
            async with create(stream=True, **chat) as response:
                await read(await response.parse())
        else:
            with create(stream=True, **chat) as response:
                await read(response.parse())
    else:  # pragma: no cover
        raise AssertionError(kind)


def _sent(sim: Any) -> tuple[Any, dict[str, str]]:
    request = sim.requests[-1]
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in VOLATILE_HEADERS}
    return request.body, headers


def _twice(sim: Any, call: Any, asynchronous: bool, base_url: str = OPENROUTER_URL) -> tuple[Any, Any]:
    """(untraced request, traced request) for the same call; each is (body, headers)."""

    async def go() -> tuple[Any, Any]:
        client = make_client(sim, asynchronous=asynchronous, base_url=base_url)
        with suppress_instrumentation():
            await call(client)
        plain = _sent(sim)
        await call(client)
        return plain, _sent(sim)

    return asyncio.run(go())


def _ids(telemetry: Captured) -> dict[str, str]:
    """The LLM span's ids as OpenRouter's `trace` field carries them."""
    spans = [s for s in telemetry.spans() if s.attributes and "gen_ai.operation.name" in s.attributes]
    context = spans[-1].context
    return {"trace_id": format(context.trace_id, "032x"), "parent_span_id": format(context.span_id, "016x")}


def _traceparent(telemetry: Captured) -> str:
    """W3C `traceparent` of the LLM span: version 00, its ids, its flags (sampled, and random on newer SDKs)."""
    ids = _ids(telemetry)
    flags = telemetry.spans()[-1].context.trace_flags
    assert flags & TraceFlags.SAMPLED
    return f"00-{ids['trace_id']}-{ids['parent_span_id']}-{flags:02x}"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("surface", list(SURFACES))
def test_every_surface_sends_the_span_ids_to_openrouter(
    telemetry: Captured, sim: Any, surface: str, asynchronous: bool
) -> None:
    if surface == "responses.parse" and not hasattr(make_client(sim).responses, "parse"):
        pytest.skip("this openai version has no responses.parse")
    (plain_body, plain_headers), (body, headers) = _twice(sim, lambda c: _surface_call(c, surface), asynchronous)
    assert body == {**plain_body, "trace": _ids(telemetry)}
    assert headers == plain_headers  # no traceparent unless asked for
    assert len(_ids(telemetry)["trace_id"]) == 32 and len(_ids(telemetry)["parent_span_id"]) == 16


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("surface", ["chat", "embeddings", "responses"])
def test_with_raw_response_is_joined_too(telemetry: Captured, sim: Any, surface: str, asynchronous: bool) -> None:
    getter, kwargs, _, _ = SURFACES[surface]

    async def call(client: Any) -> None:
        response = await maybe(getter(client, True)(**kwargs))
        response.parse()

    (plain_body, plain_headers), (body, headers) = _twice(sim, call, asynchronous)
    assert body == {**plain_body, "trace": _ids(telemetry)}
    assert headers == plain_headers


STREAMS = ["chat", "completions", "responses", "chat.stream", "responses.stream", "with_streaming_response"]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", STREAMS)
def test_streams_carry_trace_field_and_traceparent(
    make_telemetry: Any, sim: Any, kind: str, asynchronous: bool
) -> None:
    telemetry = make_telemetry(propagate_traceparent=True)
    (plain_body, plain_headers), (body, headers) = _twice(sim, lambda c: _stream_call(c, kind), asynchronous)
    assert body == {**plain_body, "trace": _ids(telemetry)}
    assert headers == {**plain_headers, "traceparent": _traceparent(telemetry)}
    assert telemetry.spans()[-1].attributes["gateway.stream.outcome"] == "completed"


def test_one_trace_across_the_app_and_openrouter(telemetry: Captured, sim: Any) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("checkout") as parent:
        make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES)
    llm = next(s for s in telemetry.spans() if s.name.startswith("chat "))
    sent = sim.last_request.body["trace"]
    assert sent == {"trace_id": format(parent.get_span_context().trace_id, "032x"), **_ids(telemetry)} | {
        "parent_span_id": format(llm.context.span_id, "016x")
    }
    assert llm.parent.span_id == parent.get_span_context().span_id


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_trace_metadata_names_session_and_user(telemetry: Captured, sim: Any, asynchronous: bool) -> None:
    async def call(client: Any) -> None:
        with gateway_otel.trace_metadata(
            trace_name="checkout", session_id="s-1", user="u-42", span_name="pricing", generation_name="quote"
        ):
            await _surface_call(client, "chat")

    (plain_body, _), (body, _) = _twice(sim, call, asynchronous)
    names = {"trace_name": "checkout", "span_name": "pricing", "generation_name": "quote"}
    assert body == {**plain_body, "trace": {**_ids(telemetry), **names}, "session_id": "s-1", "user": "u-42"}
    attrs = dict(telemetry.spans()[-1].attributes or {})
    assert (attrs["session.id"], attrs["gen_ai.conversation.id"], attrs["user.id"]) == ("s-1", "s-1", "u-42")
    assert len(telemetry.spans()) == 1  # the suppressed call made no span


def test_trace_metadata_blocks_nest_and_end(telemetry: Captured, sim: Any) -> None:
    client = make_client(sim)
    with gateway_otel.trace_metadata(trace_name="outer", session_id="s-outer", user="u-1"):
        with gateway_otel.trace_metadata(span_name="inner", session_id="s-inner"):
            client.embeddings.create(model="openai/text-embedding-3-small", input="x")
            inner = sim.last_request.body
        client.embeddings.create(model="openai/text-embedding-3-small", input="x")
        outer = sim.last_request.body
    client.embeddings.create(model="openai/text-embedding-3-small", input="x")
    after = sim.last_request.body
    spans = telemetry.spans()
    ids = [
        {"trace_id": format(s.context.trace_id, "032x"), "parent_span_id": format(s.context.span_id, "016x")}
        for s in spans
    ]
    assert inner["trace"] == {**ids[0], "trace_name": "outer", "span_name": "inner"}
    assert (inner["session_id"], inner["user"]) == ("s-inner", "u-1")
    assert outer["trace"] == {**ids[1], "trace_name": "outer"}
    assert (outer["session_id"], outer["user"]) == ("s-outer", "u-1")
    assert after["trace"] == ids[2]
    assert "session_id" not in after and "user" not in after
    assert [s.attributes.get("session.id") for s in spans] == ["s-inner", "s-outer", None]


def test_trace_metadata_is_per_task(telemetry: Captured, sim: Any) -> None:
    """Concurrent asyncio tasks each send their own session; the context variable does not leak between them."""

    async def one(client: Any, session: str, started: asyncio.Event, other: asyncio.Event) -> Any:
        async with gateway_otel.trace_metadata(session_id=session, trace_name=f"name-{session}"):
            started.set()
            await other.wait()  # both blocks are open at once
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": session}])

    async def go() -> None:
        client = make_client(sim, asynchronous=True)
        a, b = asyncio.Event(), asyncio.Event()
        await asyncio.gather(one(client, "s-a", a, b), one(client, "s-b", b, a))

    asyncio.run(go())
    by_session = {r.body["messages"][0]["content"]: r.body for r in sim.requests}
    for session in ("s-a", "s-b"):
        assert by_session[session]["session_id"] == session
        assert by_session[session]["trace"]["trace_name"] == f"name-{session}"
    assert sorted(s.attributes["session.id"] for s in telemetry.spans()) == ["s-a", "s-b"]


def test_the_callers_trace_keys_win_and_nothing_of_theirs_is_mutated(telemetry: Captured, sim: Any) -> None:
    extra_body = {"trace": {"trace_name": "mine", "parent_span_id": "00000000000000aa", "env": "prod"}}
    extra_headers = {"X-Custom": "1"}
    messages = [{"role": "user", "content": "hi"}]
    snapshot = repr((extra_body, extra_headers, messages))
    with gateway_otel.trace_metadata(trace_name="ignored", span_name="kept", session_id="s-ctx", user="u-ctx"):
        make_client(sim).chat.completions.create(
            model=MODEL,
            messages=messages,
            user="u-mine",
            extra_body=extra_body,
            extra_headers=extra_headers,
        )
    ids = _ids(telemetry)
    assert sim.last_request.body == {
        "model": MODEL,
        "messages": messages,
        "user": "u-mine",
        "session_id": "s-ctx",
        "trace": {
            "trace_id": ids["trace_id"],
            "parent_span_id": "00000000000000aa",
            "trace_name": "mine",
            "span_name": "kept",
            "env": "prod",
        },
    }
    assert repr((extra_body, extra_headers, messages)) == snapshot
    attrs = dict(telemetry.span().attributes or {})
    assert (attrs["user.id"], attrs["session.id"]) == ("u-mine", "s-ctx")


def test_callers_session_wins_in_body_and_header(telemetry: Captured, sim: Any) -> None:
    client = make_client(sim)
    with gateway_otel.trace_metadata(session_id="s-ctx"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, extra_body={"session_id": "s-body"})
        by_body = sim.last_request.body
        client.chat.completions.create(model=MODEL, messages=MESSAGES, extra_headers={"X-Session-Id": "s-header"})
        by_header = sim.last_request
    assert by_body["session_id"] == "s-body"
    assert "session_id" not in by_header.body and by_header.headers["x-session-id"] == "s-header"
    spans = telemetry.spans()
    assert spans[0].attributes["session.id"] == "s-body"
    assert "session.id" not in spans[1].attributes  # the header's session is the caller's, not ours to restate


def test_a_non_mapping_trace_of_the_caller_is_left_alone(telemetry: Captured, sim: Any) -> None:
    make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, extra_body={"trace": None})
    assert sim.last_request.body["trace"] is None


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_other_gateways_are_left_alone_by_default(telemetry: Captured, sim: Any, asynchronous: bool) -> None:
    async def call(client: Any) -> None:
        with gateway_otel.trace_metadata(trace_name="checkout", session_id="s-1", user="u-1"):
            await _surface_call(client, "chat")

    sim.speaks_as = None  # a LiteLLM proxy's port, not OpenRouter's simulator
    (plain_body, plain_headers), (body, headers) = _twice(sim, call, asynchronous, base_url=LITELLM_URL)
    assert (body, headers) == (plain_body, plain_headers)
    attrs = dict(telemetry.spans()[-1].attributes or {})
    assert attrs["gateway.name"] == "litellm"
    assert (attrs["session.id"], attrs["user.id"]) == ("s-1", "u-1")  # the app's own spans still group


@pytest.mark.parametrize(
    ("options", "env", "base_url", "joined"),
    [
        ({"openrouter_trace": False}, {}, OPENROUTER_URL, False),
        ({}, {"GATEWAY_OTEL_OPENROUTER_TRACE": "false"}, OPENROUTER_URL, False),
        ({}, {"GATEWAY_OTEL_OPENROUTER_TRACE": "auto"}, OPENROUTER_URL, True),
        ({"openrouter_trace": "auto"}, {"GATEWAY_OTEL_OPENROUTER_TRACE": "false"}, OPENROUTER_URL, True),
        ({"openrouter_trace": True}, {}, LITELLM_URL, True),
        ({}, {"GATEWAY_OTEL_OPENROUTER_TRACE": "true"}, LITELLM_URL, True),
        ({}, {"GATEWAY_OTEL_OPENROUTER_TRACE": "auto"}, LITELLM_URL, False),
        ({"gateway": "openrouter"}, {}, LITELLM_URL, True),
    ],
    ids=["option-off", "env-off", "env-auto", "option-beats-env", "option-on", "env-on", "auto-other", "forced-gw"],
)
def test_switching_trace_join(
    make_telemetry: Any, sim: Any, monkeypatch: Any, options: Any, env: Any, base_url: str, joined: bool
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    telemetry = make_telemetry(**options)
    (plain_body, _), (body, _) = _twice(sim, lambda c: _surface_call(c, "chat"), False, base_url=base_url)
    assert body == ({**plain_body, "trace": _ids(telemetry)} if joined else plain_body)


def test_traceparent_carries_the_llm_span_and_tracestate(make_telemetry: Any, sim: Any) -> None:
    telemetry = make_telemetry(propagate_traceparent=True, openrouter_trace=False)
    parent = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value")]),
    )
    with trace.use_span(NonRecordingSpan(parent)):
        (plain_body, plain_headers), (body, headers) = _twice(
            sim, lambda c: _surface_call(c, "chat"), False, base_url=LITELLM_URL
        )
    llm = telemetry.spans()[-1]
    assert body == plain_body
    assert headers == {
        **plain_headers,
        "traceparent": f"00-0af7651916cd43dd8448eb211c80319c-{format(llm.context.span_id, '016x')}-01",
        "tracestate": "vendor=value",
    }
    assert llm.parent.span_id == parent.span_id


def test_traceparent_of_the_caller_wins(make_telemetry: Any, sim: Any) -> None:
    make_telemetry(propagate_traceparent=True)
    theirs = "00-11111111111111111111111111111111-2222222222222222-01"
    make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, extra_headers={"TraceParent": theirs})
    assert sim.last_request.headers["traceparent"] == theirs


def test_traceparent_from_env(make_telemetry: Any, sim: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("GATEWAY_OTEL_TRACEPARENT", "true")
    telemetry = make_telemetry()
    make_client(sim, base_url=LITELLM_URL).embeddings.create(model="text-embedding-3-small", input="x")
    assert sim.last_request.headers["traceparent"] == _traceparent(telemetry)


def test_default_names_from_the_option_and_env(make_telemetry: Any, sim: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("GATEWAY_OTEL_TRACE_METADATA", "trace_name=from-env")
    telemetry = make_telemetry(trace_metadata={"trace_name": "app", "generation_name": "gen"})
    client = make_client(sim)
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert sim.last_request.body["trace"] == {**_ids(telemetry), "trace_name": "app", "generation_name": "gen"}
    with gateway_otel.trace_metadata(trace_name="block"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert sim.last_request.body["trace"] == {**_ids(telemetry), "trace_name": "block", "generation_name": "gen"}
    assert Settings.load(environ={"GATEWAY_OTEL_TRACE_METADATA": " trace_name=a , span_name=b "}).trace_metadata == (
        ("trace_name", "a"),
        ("span_name", "b"),
    )


def test_retries_send_the_same_trace(telemetry: Captured, sim: Any) -> None:
    client = make_client(sim, max_retries=1)
    with pytest.raises(Exception, match="429"):
        client.chat.completions.create(model="sim/error-429", messages=MESSAGES)
    assert len(sim.requests) == 2
    assert sim.requests[0].body["trace"] == sim.requests[1].body["trace"] == _ids(telemetry)


def test_options_used_for_two_calls_carry_each_calls_own_join(make_telemetry: Any, sim: Any) -> None:
    """The join is set on the request options themselves: a caller that passes the same options to `request()`
    again gets that call's span in the body and the header, not the previous one's, and its own values back."""
    from openai._models import FinalRequestOptions
    from openai.types.chat import ChatCompletion

    telemetry = make_telemetry(propagate_traceparent=True)
    client = make_client(sim)
    mine = {"X-Custom": "1"}
    options = FinalRequestOptions.construct(
        method="post", url="/chat/completions", json_data={"model": MODEL, "messages": MESSAGES}, headers=mine
    )
    for _ in range(2):
        client.request(ChatCompletion, options)
    with suppress_instrumentation():  # not traced: nothing of the last join goes out either
        client.request(ChatCompletion, options)
    first, second = telemetry.spans()
    for span, request in zip((first, second), sim.requests, strict=False):
        ids = f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"
        assert (request.body["trace"]["trace_id"], request.body["trace"]["parent_span_id"]) == ids
        assert request.headers["traceparent"].split("-")[1:3] == list(ids)
        assert request.headers["x-custom"] == "1"
    untraced = sim.requests[2]
    assert "trace" not in untraced.body and "traceparent" not in untraced.headers
    assert (options.extra_json, options.headers, mine) == (None, {"X-Custom": "1"}, {"X-Custom": "1"})


def test_each_call_carries_its_own_join_and_options_that_refuse_it_are_copied(telemetry: Captured, sim: Any) -> None:
    from openai._models import FinalRequestOptions

    from gateway_otel.instrumentation import _propagation

    client = make_client(sim)
    for _ in range(2):  # the join goes on the SDK's options of each call: nothing carries over to the next
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    sent = [request.body["trace"] for request in sim.requests]
    assert sent == [{"trace_id": f"{s.context.trace_id:032x}", "parent_span_id": f"{s.context.span_id:016x}"}
                    for s in telemetry.spans()]  # fmt: skip
    assert sent[0] != sent[1]

    class Frozen(FinalRequestOptions):
        def __setattr__(self, name: str, value: Any) -> None:
            if type(self) is Frozen:
                raise TypeError("frozen")
            super().__setattr__(name, value)

    class Thawed(FinalRequestOptions):
        pass

    frozen = Frozen.construct(method="post", url="/chat/completions", json_data={"model": MODEL}, headers={})
    frozen.__dict__["model_copy"] = lambda: Thawed.construct(**dict(frozen.__dict__))
    span = telemetry.tracer_provider.get_tracer("t").start_span("call")
    call = type("Call", (), {"span": span, "context": None, "body": {"model": MODEL}})()
    joined = _propagation._adjusted_options(call, frozen, {}, True, False, None, {})
    assert type(joined) is Thawed
    assert joined.extra_json["trace"]["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert frozen.extra_json is None
    plain = FinalRequestOptions.construct(method="post", url="/chat/completions", json_data={"model": MODEL})
    assert _propagation._adjusted_options(call, plain, {}, True, False, None, {}) is plain  # no copy made
    assert plain.extra_json == joined.extra_json
    span.end()


def test_no_span_no_join(telemetry: Captured, sim: Any) -> None:
    with suppress_instrumentation(), gateway_otel.trace_metadata(session_id="s-1"):
        make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert "trace" not in sim.last_request.body and "session_id" not in sim.last_request.body
    assert telemetry.spans() == []


@pytest.mark.parametrize(
    ("environ", "options", "message"),
    [
        ({"GATEWAY_OTEL_OPENROUTER_TRACE": "sometimes"}, {}, "GATEWAY_OTEL_OPENROUTER_TRACE='sometimes' is not valid"),
        ({}, {"openrouter_trace": "yes"}, "openrouter_trace='yes' is not valid: expected 'auto', True or False"),
        ({"GATEWAY_OTEL_TRACEPARENT": "maybe"}, {}, "GATEWAY_OTEL_TRACEPARENT='maybe' is not valid"),
        ({}, {"propagate_traceparent": "yes"}, "propagate_traceparent='yes' is not valid"),
        ({"GATEWAY_OTEL_TRACE_METADATA": "trace_name"}, {}, "expected key=value pairs"),
        ({"GATEWAY_OTEL_TRACE_METADATA": "user=u"}, {}, "GATEWAY_OTEL_TRACE_METADATA has user='u'"),
        ({}, {"trace_metadata": {"trace_name": ""}}, "trace_metadata has trace_name=''"),
        ({}, {"trace_metadata": "checkout"}, "trace_metadata='checkout' is not valid"),
    ],
)
def test_bad_settings_fail_at_set_up(environ: Any, options: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Settings.load(environ=environ, **options)


def test_bad_trace_metadata_fails_at_the_block() -> None:
    with pytest.raises(ConfigurationError, match=r"trace_metadata\(session_id=123\) is not valid"):
        gateway_otel.trace_metadata(session_id=123)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="expected at most 256"):
        gateway_otel.trace_metadata(session_id="s" * 257)
    with pytest.raises(ConfigurationError, match=r"trace_metadata\(trace_name=' '\)"):
        gateway_otel.trace_metadata(trace_name=" ")


def test_settings_defaults() -> None:
    settings = Settings.load(environ={})
    assert (settings.openrouter_trace, settings.propagate_traceparent, settings.trace_metadata) == (None, False, ())
    assert settings.trace_join == "auto"
    assert Settings.load(environ={"GATEWAY_OTEL_OPENROUTER_TRACE": "TRUE"}).trace_join == "true"


CHECKOUT = gateway_otel.trace_metadata(trace_name="checkout")


def test_one_instance_entered_by_many_tasks_and_threads(telemetry: Captured, sim: Any) -> None:
    """A module-level block object used concurrently: each task and thread has its own state; exits never clash."""
    import threading

    inside: list[str] = []

    async def task(client: Any, session: str, everyone_in: asyncio.Event) -> None:
        async with CHECKOUT, gateway_otel.trace_metadata(session_id=session):
            inside.append(session)
            if len(inside) == 3:
                everyone_in.set()
            await everyone_in.wait()  # every task is inside the same CHECKOUT at once
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": session}])

    async def tasks() -> None:
        client = make_client(sim, asynchronous=True)
        everyone_in = asyncio.Event()
        await asyncio.gather(*(task(client, f"task-{i}", everyone_in) for i in range(3)))

    def thread(session: str, gate: threading.Barrier) -> None:
        with CHECKOUT, gateway_otel.trace_metadata(session_id=session):
            gate.wait()
            make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": session}])

    asyncio.run(tasks())
    gate = threading.Barrier(3)
    threads = [threading.Thread(target=thread, args=(f"thread-{i}", gate)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = {r.body["messages"][0]["content"]: r.body for r in sim.requests}
    assert len(sent) == 6
    for session, body in sent.items():
        assert (body["session_id"], body["trace"]["trace_name"]) == (session, "checkout")
    make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES)  # every block has ended
    assert "session_id" not in sim.last_request.body and "trace_name" not in sim.last_request.body["trace"]


def test_a_server_speaking_as_openrouter_is_openrouter_from_its_first_answer(telemetry: Captured, sim: Any) -> None:
    """The simulator on vLLM's default port says `x-gateway-otel-gateway: openrouter`: its calls are labelled
    OpenRouter's (provider, upstream, cost) from the first answer, and joined from the next request on."""
    from gateway_otel.simulator._content import provider_for, served_model

    client = make_client(sim, base_url="http://127.0.0.1:8000/api/v1")  # vLLM's port: labelled vllm until told
    client.chat.completions.create(model=PAID_MODEL, messages=MESSAGES)
    first = sim.last_request.body
    client.chat.completions.create(model=PAID_MODEL, messages=MESSAGES)
    second = sim.last_request.body
    assert "trace" not in first  # nothing said so before the first answer
    assert second["trace"] == _ids(telemetry)
    spans = telemetry.spans()
    assert len(spans) == 2
    for span in spans:
        attrs = dict(span.attributes or {})
        assert (attrs["gateway.name"], attrs["gen_ai.provider.name"], attrs["llm.provider"]) == ("openrouter",) * 3
        assert attrs["gateway.upstream.provider"] == provider_for(served_model(PAID_MODEL))
        assert attrs["gen_ai.usage.cost"] > 0


@pytest.mark.parametrize(
    ("base_url", "speaks_as", "expected"),
    [
        ("https://api.openai.com/v1", "openrouter", "openai"),  # a known public endpoint is never renamed
        ("http://127.0.0.1:8000/v1", "not-a-gateway", "vllm"),  # an unknown name is not taken
        ("http://10.0.0.7:9000/v1", None, "openai_compatible"),
        ("http://10.0.0.7:9000/v1", "LiteLLM", "litellm"),
    ],
)
def test_which_servers_may_name_their_gateway(
    telemetry: Captured, sim: Any, base_url: str, speaks_as: str | None, expected: str
) -> None:
    sim.speaks_as = speaks_as
    client = make_client(sim, base_url=base_url)
    for _ in range(2):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert [dict(s.attributes or {})["gateway.name"] for s in telemetry.spans()] == [expected, expected]
    assert ("trace" in sim.last_request.body) is (expected == "openrouter")
