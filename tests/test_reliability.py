"""Unbreakable: malformed traffic never raises into the caller, concurrency keeps spans apart, secrets never leak.

Internal telemetry errors are re-raised under the tests (`_internal.STRICT`), so a mapper that chokes on an odd
response fails these tests instead of being logged and hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import threading
import warnings
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import API_KEY, OPENAI_MAJOR, OPENROUTER_URL, Captured, make_client

httpx_module = importlib.import_module("httpx2" if OPENAI_MAJOR >= 3 else "httpx")

VALID_CHAT = {
    "id": "gen-1",
    "object": "chat.completion",
    "created": 1,
    "model": "openai/gpt-4o",
    "provider": "OpenAI",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "cost": 0.1},
}

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=30)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
FIELDS = ["id", "model", "provider", "choices", "usage", "error", "object", "created"]
USAGE_FIELDS = [
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "is_byok",
    "prompt_tokens_details",
    "completion_tokens_details",
    "cost_details",
    "input_tokens",
    "output_tokens",
]


@st.composite
def malformed_chat(draw: Any) -> Any:
    """A chat response with any field replaced by anything: missing, null, wrong type, unknown, huge."""
    body: dict[str, Any] = json.loads(json.dumps(VALID_CHAT))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        action = draw(st.sampled_from(["drop", "replace"]))
        if action == "drop":
            body.pop(field, None)
        else:
            body[field] = draw(json_value)
    if isinstance(body.get("usage"), dict):
        for field in draw(st.lists(st.sampled_from(USAGE_FIELDS), max_size=3, unique=True)):
            body["usage"][field] = draw(json_value)
    if isinstance(body.get("choices"), list) and body["choices"] and isinstance(body["choices"][0], dict):
        choice = body["choices"][0]
        for field in draw(st.lists(st.sampled_from(["message", "finish_reason", "index", "delta"]), max_size=2)):
            choice[field] = draw(json_value)
    body.update(draw(st.dictionaries(st.text(min_size=1, max_size=8), json_value, max_size=2)))
    return body


def _client_serving(
    payload: bytes, *, status: int = 200, asynchronous: bool = False, content_type: str = "application/json"
) -> Any:
    def handler(request: Any) -> Any:
        return httpx_module.Response(status, content=payload, headers={"content-type": content_type})

    transport = httpx_module.MockTransport(handler)
    if asynchronous:
        return openai.AsyncOpenAI(
            base_url=OPENROUTER_URL,
            api_key=API_KEY,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(transport=transport),
        )
    return openai.OpenAI(
        base_url=OPENROUTER_URL,
        api_key=API_KEY,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=transport),
    )


def _outcome(client: Any, **kwargs: Any) -> tuple[str, Any]:
    """What the caller gets: the parsed result as JSON, or the exception's type and message."""
    try:
        result = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], **kwargs)
    except Exception as exc:  # the caller's view, compared below
        return "raised", (type(exc), str(exc))
    with warnings.catch_warnings():  # pydantic warns when serialising a leniently parsed, malformed object
        warnings.simplefilter("ignore")
        if not hasattr(result, "model_dump_json"):
            return "returned", repr(result)
        try:
            return "returned", result.model_dump_json()
        except ValueError:  # pydantic cannot serialise some malformed objects (a NUL in a key): compare their reprs
            return "returned", repr(result)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=malformed_chat())
def test_malformed_responses_never_break_the_call(make_telemetry: Any, body: Any) -> None:
    payload = json.dumps(body).encode()
    expected = _outcome(_client_serving(payload))  # uninstrumented
    telemetry = make_telemetry()
    try:
        assert _outcome(_client_serving(payload)) == expected
        assert len(telemetry.spans()) == 1
    finally:
        import gateway_otel

        gateway_otel.uninstrument()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.one_of(st.binary(max_size=64), st.just(b"\xff\xfe{not json"), st.just(b'{"choices": [')),
    status=st.sampled_from([200, 400, 500]),
)
def test_undecodable_bodies_never_break_the_call(make_telemetry: Any, payload: bytes, status: int) -> None:
    expected = _outcome(_client_serving(payload, status=status))
    telemetry = make_telemetry()
    try:
        assert _outcome(_client_serving(payload, status=status)) == expected
        assert len(telemetry.spans()) == 1
    finally:
        import gateway_otel

        gateway_otel.uninstrument()


class _Odd:
    def __repr__(self) -> str:
        return "<odd>"


ODD_MESSAGES = [
    [{"role": "user", "content": "\ud800 lone surrogate"}],
    [{"role": "user", "content": [{"type": "mystery", "payload": [1, 2]}, {"type": "text"}]}],
    [{"role": "user", "content": None, "tool_calls": "not a list"}],
    [{"role": 5, "content": {"nested": ["x"]}}],
    [{"role": "user", "content": "x" * 2_000_000}],
    [{"role": "user", "content": "hi", "name": 7}],
]


@pytest.mark.parametrize("messages", ODD_MESSAGES, ids=range(len(ODD_MESSAGES)))
def test_odd_requests_never_break_the_call(telemetry: Captured, sim: Any, messages: Any) -> None:
    client = make_client(sim)
    try:
        client.chat.completions.create(model="m", messages=messages)
    except openai.APIStatusError:
        pass  # the simulator may refuse it; the call's own error is fine
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        # The SDK refused it while building the request: the call failed, and its span says so.
        span = telemetry.span()
        assert span.attributes["error.type"] == type(exc).__qualname__
        assert _otlp_bytes(telemetry.spans())  # its content (a lone surrogate, say) still encodes
        return
    span = telemetry.span()
    assert _otlp_bytes(telemetry.spans())
    assert len(span.attributes) <= 128
    assert all(len(v) <= 40_000 for v in span.attributes.values() if isinstance(v, str))


def _otlp_bytes(spans: Any) -> bytes:
    """The spans as the OTLP exporters send them (protobuf): raises if any attribute cannot be encoded."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(spans).SerializeToString()


# JSON can carry a lone surrogate (as an escape); Python decodes it into the string; the OTLP encoder refuses it.
LONE_SURROGATE_REPLY = {
    **VALID_CHAT,
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "a\ud800b"}}],
}


def test_a_lone_surrogate_in_content_does_not_make_the_span_unexportable(telemetry: Captured) -> None:
    payload = json.dumps(LONE_SURROGATE_REPLY).encode()  # ensure_ascii: the surrogate is sent as the escape \\ud800
    assert b'"a\\ud800b"' in payload
    client = _client_serving(payload)
    result = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert result.choices[0].message.content == "a\ud800b"  # the caller's value is untouched
    span = telemetry.span()
    assert json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == "a\ufffdb"
    assert span.attributes["llm.output_messages.0.message.content"] == "a\ufffdb"
    assert _otlp_bytes(telemetry.spans())


def test_a_lone_surrogate_in_a_stream_does_not_make_the_span_unexportable(telemetry: Captured) -> None:
    chunks = [
        {"id": "gen-1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "a"}}]},
        {"id": "gen-1", "model": "m", "choices": [{"index": 0, "delta": {"content": "\ud800"}}]},
        {"id": "gen-1", "model": "m", "choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "stop"}]},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    client = _client_serving(body.encode(), content_type="text/event-stream")
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
    texts = [chunk.choices[0].delta.content for chunk in stream]
    assert texts == ["a", "\ud800", "b"]
    span = telemetry.span()
    assert span.attributes["llm.output_messages.0.message.content"] == "a\ufffdb"
    assert _otlp_bytes(telemetry.spans())


def test_a_tampered_client_is_still_traced(telemetry: Captured, sim: Any) -> None:
    client = make_client(sim)
    client.api_key = _Odd()  # type: ignore[assignment]  # not a string
    client._custom_headers = None  # type: ignore[assignment]
    with contextlib.suppress(Exception):  # whatever the SDK does with it, the telemetry must not be the one raising
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert len(telemetry.spans()) == 1


def test_malformed_stream_chunks_never_break_iteration(telemetry: Captured) -> None:
    chunks = [
        {"id": 5, "choices": "nope"},
        {"choices": [{"delta": {"tool_calls": [{"index": "x"}]}}]},
        {"choices": [None, {"delta": None, "finish_reason": 3}]},
        {"usage": {"prompt_tokens": "many"}},
        {"choices": [{"delta": {"content": ["list"], "tool_calls": [{"function": {"arguments": 4}}]}}]},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    client = _client_serving(body.encode(), content_type="text/event-stream")
    received = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    assert len(received) == len(chunks)
    assert telemetry.span().attributes["gateway.stream.outcome"] == "completed"


def test_concurrency_one_span_per_call_with_the_right_parent(telemetry: Captured, sim: Any) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")

    async def many() -> None:
        client = make_client(sim, asynchronous=True)

        async def one(i: int) -> None:
            with tracer.start_as_current_span(f"async-{i}"):
                await client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"a{i}"}])

        await asyncio.gather(*(one(i) for i in range(1000)))

    asyncio.run(many())

    client = make_client(sim)

    def worker(t: int) -> None:
        for i in range(20):
            with tracer.start_as_current_span(f"thread-{t}-{i}"):
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"t{t}-{i}"}])

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    spans = telemetry.spans()
    parents = {s.context.span_id: s.name for s in spans if not s.name.startswith("chat")}
    llm = [s for s in spans if s.name.startswith("chat")]
    assert len(llm) == 1000 + 16 * 20
    assert len(parents) == len(llm)
    for span in llm:
        parent_name = parents[span.parent.span_id]
        asked = json.loads(span.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"]
        expected = parent_name.replace("async-", "a").replace("thread-", "t")
        assert asked == expected, (parent_name, asked)


def test_secrets_never_reach_spans_logs_metrics_or_exported_bytes(
    make_telemetry: Any, sim: Any, caplog: Any, monkeypatch: Any
) -> None:
    """A sentinel API key and management key, the whole workload, and a search of everything produced."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from otlp_receiver import OtlpReceiver

    management_key = "sk-or-v1-MANAGEMENT-SENTINEL-42"
    monkeypatch.setenv("OPENROUTER_MANAGEMENT_KEY", management_key)
    monkeypatch.setenv("OPENROUTER_API_KEY", API_KEY)
    caplog.set_level(logging.DEBUG)
    with OtlpReceiver() as receiver:
        telemetry = make_telemetry()
        telemetry.tracer_provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_url))
        )
        client = make_client(sim, default_headers={"X-Title": "app"})
        aclient = make_client(sim, asynchronous=True)
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
        client.embeddings.create(model="e", input="hi")
        client.responses.create(model="m", input="hi")
        asyncio.run(aclient.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]))
        for scenario in ("error-401", "error-429", "error-500", "timeout", "stream-error"):
            with pytest.raises(openai.OpenAIError) as caught:  # each scenario fails, or the test does
                result = client.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=scenario == "stream-error",
                    extra_headers={"X-Simulator-Scenario": scenario},
                )
                if scenario == "stream-error":
                    list(result)
            assert API_KEY not in str(caught.value)
        telemetry.tracer_provider.force_flush()
        exported = b"".join(receiver.bodies)
    assert len(receiver.bodies) >= 10
    produced = "\n".join(
        [*(s.to_json() for s in telemetry.spans()), caplog.text, telemetry.reader.get_metrics_data().to_json()]
    )
    for secret in (API_KEY, management_key):
        assert secret not in produced
        assert secret.encode() not in exported
    assert "Bearer" not in produced
