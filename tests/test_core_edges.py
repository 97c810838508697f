"""Edge cases of the instrumentation core found in review: each drives the real openai client and checks the
exported span or metric exactly.

Credentials a gateway takes in the body, a content part that claims an internal part type, a telemetry bug while
the span is being recorded, Azure's id-less first stream chunk, a stream closed long after its last chunk, and a
span attribute limit far below the default.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import time
import types
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import gateway_otel
from conftest import API_KEY, OPENAI_MAJOR, Captured, make_client
from gateway_otel import ConfigurationError, _internal
from gateway_otel.instrumentation import _attributes, _invocation, _stream

httpx_module = importlib.import_module("httpx2" if OPENAI_MAJOR >= 3 else "httpx")
MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Tell me about spans"}]
LITELLM_URL = "http://localhost:4000/v1"


def test_upstream_credentials_in_the_body_never_reach_the_span(telemetry: Captured, sim: Any) -> None:
    """LiteLLM's client-side credentials: `api_key` (and a `user_config` full of keys) travel in the body."""
    secrets = ["sk-upstream-SENTINEL-1", "aws-SENTINEL-2", "vertex-SENTINEL-3", "ad-SENTINEL-4", "meta-SENTINEL-5"]
    user_config = {
        "model_list": [
            {
                "model_name": "mine",
                "litellm_params": {"model": "azure/gpt-4o", "api_key": secrets[0], "api_base": "https://x"},
            },
            {
                "model_name": "bedrock",
                "litellm_params": {"model": "bedrock/claude", "aws_secret_access_key": secrets[1]},
            },
        ]
    }
    make_client(sim, base_url=LITELLM_URL).chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        max_tokens=20,
        extra_body={
            "api_key": secrets[0],
            "api_base": "https://x",
            "vertex_credentials": secrets[2],
            "azure_ad_token": secrets[3],
            "prompt_cache_key": "conversation-7",
            "user_config": user_config,
            "metadata": {"team": "search", "api_key": secrets[4]},
        },
    )
    assert sim.last_request.body["api_key"] == secrets[0]  # the request itself is untouched
    attrs = dict(telemetry.span().attributes or {})
    assert not [k for k, v in attrs.items() if any(s in str(v) for s in secrets)]
    params = json.loads(attrs["llm.invocation_parameters"])
    assert params["api_key"] == params["vertex_credentials"] == params["azure_ad_token"] == "[REDACTED]"
    assert params["api_base"] == "https://x"
    assert params["max_tokens"] == 20
    assert params["prompt_cache_key"] == "conversation-7"
    first, second = params["user_config"]["model_list"]
    assert first["litellm_params"] == {"model": "azure/gpt-4o", "api_key": "[REDACTED]", "api_base": "https://x"}
    assert second["litellm_params"]["aws_secret_access_key"] == "[REDACTED]"
    assert json.loads(attrs["metadata"]) == {"team": "search", "api_key": "[REDACTED]"}


def test_request_parts_typed_like_internal_parts_are_recorded(telemetry: Captured, sim: Any) -> None:
    """A content part whose `type` is `tool_call` or `tool_call_response` is still just an unknown part."""
    content = [{"type": "text", "text": "see"}, {"type": "tool_call", "x": 1}, {"type": "tool_call_response"}]
    make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["llm.input_messages.0.message.role"] == "user"
    assert attrs["llm.input_messages.0.message.content"] == "see"
    assert not [k for k in attrs if ".tool_call" in k]
    assert json.loads(attrs["gen_ai.input.messages"])[0]["parts"][1] == {
        "type": "tool_call",
        "content": "[tool_call part omitted]",
    }


@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
def test_the_span_ends_even_when_recording_it_fails(
    telemetry: Captured, sim: Any, monkeypatch: Any, stream: bool
) -> None:
    """A bug in a mapper (production mode: logged, not raised) must not leave the span open forever."""
    monkeypatch.setattr(_internal, "STRICT", False)

    def broken(*args: Any) -> Any:
        raise RuntimeError("mapper bug")

    monkeypatch.setattr(_attributes, "response_attributes", broken)
    result = make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
    chunks = list(result) if stream else None
    assert (chunks[-1].usage if stream else result.usage).total_tokens > 0  # the caller's result is whole
    span = telemetry.span()
    assert span.end_time is not None
    assert span.attributes["gen_ai.request.model"] == MODEL


def _serving_sse(chunks: list[dict[str, Any]]) -> Any:
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    def handler(request: Any) -> Any:
        return httpx_module.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})

    return openai.DefaultHttpxClient(transport=httpx_module.MockTransport(handler))


AZURE_STREAM = [  # Azure OpenAI: the prompt filter results come first, with an empty id and model
    {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    },
    {
        "choices": [{"delta": {"content": "", "role": "assistant"}, "finish_reason": None, "index": 0}],
        "created": 1,
        "id": "chatcmpl-A1",
        "model": "gpt-4o-2024-08-06",
        "object": "chat.completion.chunk",
    },
    {
        "choices": [{"delta": {"content": "Hi"}, "finish_reason": None, "index": 0}],
        "created": 1,
        "id": "chatcmpl-A1",
        "model": "gpt-4o-2024-08-06",
        "object": "chat.completion.chunk",
    },
    {
        "choices": [{"delta": {}, "finish_reason": "stop", "index": 0}],
        "created": 1,
        "id": "chatcmpl-A1",
        "model": "gpt-4o-2024-08-06",
        "object": "chat.completion.chunk",
    },
]


def test_an_azure_stream_keeps_the_response_model_and_id(telemetry: Captured) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint="https://myres.openai.azure.com",
        api_key=API_KEY,
        api_version="2024-10-21",
        max_retries=0,
        http_client=_serving_sse(AZURE_STREAM),
    )
    assert (
        "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            if c.choices
        )
        == "Hi"
    )
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attrs["gen_ai.response.id"] == "chatcmpl-A1"
    assert attrs["output.value"] == "Hi"
    [duration] = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"


@pytest.mark.parametrize("ending", ["close", "abandon"])
def test_time_per_output_chunk_is_not_the_time_the_caller_held_the_stream(
    telemetry: Captured, sim: Any, monkeypatch: Any, ending: str
) -> None:
    """Two chunks read, then the caller keeps the stream ten minutes before closing or dropping it (a fake clock)."""
    clock = [1000.0]
    fake_time = types.SimpleNamespace(perf_counter=lambda: clock[0], time_ns=time.time_ns)
    monkeypatch.setattr(_stream, "time", fake_time)
    monkeypatch.setattr(_invocation, "time", fake_time)
    stream = make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    next(stream)
    clock[0] += 0.05
    next(stream)
    clock[0] += 600
    if ending == "close":
        stream.close()
    else:
        del stream
    span = telemetry.span()
    assert span.attributes["gateway.stream.outcome"] == ("closed" if ending == "close" else "abandoned")
    metrics = telemetry.metrics()
    assert [p.sum for p in metrics["gen_ai.client.operation.time_to_first_chunk"]] == [0.0]
    assert "gen_ai.client.operation.time_per_output_chunk" not in metrics


def test_a_stream_read_to_its_end_measures_time_per_output_chunk(
    telemetry: Captured, sim: Any, monkeypatch: Any
) -> None:
    clock = [1000.0]
    fake_time = types.SimpleNamespace(perf_counter=lambda: clock[0], time_ns=time.time_ns)
    monkeypatch.setattr(_stream, "time", fake_time)
    monkeypatch.setattr(_invocation, "time", fake_time)
    chunks = 0
    for _ in make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
        chunks += 1
        clock[0] += 0.25
    [per_chunk] = telemetry.metrics()["gen_ai.client.operation.time_per_output_chunk"]
    assert per_chunk.count == 1
    assert per_chunk.sum == pytest.approx(0.25 * chunks / (chunks - 1))


def test_a_small_span_attribute_limit_never_drops_the_essentials(sim: Any) -> None:
    """OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT far below 128: content gives way, model and tokens stay."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=34))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    gateway_otel.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider())
    try:
        tools = [
            {"type": "function", "function": {"name": f"tool_{i}", "parameters": {"type": "object"}}} for i in range(12)
        ]
        make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, tools=tools, tool_choice="none")
    finally:
        gateway_otel.uninstrument()
    [span] = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.dropped_attributes == 0
    for key in ("gen_ai.operation.name", "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.response.model"):
        assert key in attrs, key
    assert not [k for k in attrs if k.startswith("llm.tools.")]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("read", ["read", "text"])
def test_a_streaming_response_read_whole_is_recorded(
    telemetry: Captured, sim: Any, read: str, asynchronous: bool
) -> None:
    """`with_streaming_response` without `stream=True`: the caller reads the body itself, then the block closes it."""

    async def go() -> Any:
        client = make_client(sim, asynchronous=asynchronous)
        call = client.chat.completions.with_streaming_response.create(model=MODEL, messages=MESSAGES)
        if asynchronous:
            async with call as response:
                return await getattr(response, read)()
        with call as response:
            return getattr(response, read)()

    body = asyncio.run(go())
    reply = json.loads(body)
    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.response.model"] == reply["model"]
    assert attrs["gen_ai.response.id"] == reply["id"]
    assert attrs["gen_ai.usage.input_tokens"] == reply["usage"]["prompt_tokens"]
    assert attrs["gen_ai.usage.cost"] == reply["usage"]["cost"]
    assert attrs["output.value"] == reply["choices"][0]["message"]["content"]
    assert span.status.status_code is StatusCode.OK


@pytest.mark.parametrize("value", [2.5, 1000.0, [100]])
def test_a_non_integer_content_length_fails_at_instrument(make_telemetry: Any, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"max_content_length=.* is not valid: expected a whole number"):
        make_telemetry(max_content_length=value)


def test_instrumenting_again_with_other_settings_is_not_silent(make_telemetry: Any, sim: Any, caplog: Any) -> None:
    """`opentelemetry-instrument` instruments first; the app's own `instrument(capture_content=False)` is then
    ignored (idempotent): it must say so, and a bad option must still fail."""
    telemetry = make_telemetry()
    caplog.set_level(logging.DEBUG, logger="gateway_otel")
    gateway_otel.instrument(capture_content=False, max_content_length=100)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "gateway_otel is already instrumented, so capture_content=False, max_content_length=100 is ignored: "
        "call gateway_otel.uninstrument() first to change it"
    ]
    with pytest.raises(ConfigurationError, match="max_content_length=0 is not valid"):
        gateway_otel.instrument(max_content_length=0)
    caplog.clear()
    gateway_otel.instrument()  # the same settings again: quiet
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert "gen_ai.input.messages" in telemetry.span().attributes  # the first settings are the ones in force
