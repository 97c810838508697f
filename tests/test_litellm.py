"""LiteLLM as a gateway: recognised by its `x-litellm-*` response headers wherever it runs, its served model, cost
and upstream provider recorded, and its streamed usage chunk (which keeps a non-empty `choices`) read.

The responses are LiteLLM 1.106's, recorded from a real proxy with mock models (headers trimmed to the ones that
matter plus a few it always sends), served through an httpx `MockTransport` to the real `openai` client. The
end-to-end suite (`tests/e2e/`) runs the same calls against the real proxy.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from conftest import Captured
from gateway_otel.gateways import header_facts
from gateway_otel.simulator._transport import httpx_module

KEY = "sk-litellm-SENTINEL-0123456789"
# A LiteLLM proxy on a host and port that say nothing about it: only its headers can.
BASE_URL = "http://llm.internal.example:8080/v1"
CHAT_ID = "chatcmpl-6dab335b-3894-4f68-b862-8a39d80ffa70"
CALL_ID = "9446c2b2-5b20-440c-9126-a04f2cffccb8"

_COMMON = {
    "x-litellm-call-id": CALL_ID,
    "x-litellm-model-id": "1212a06a170a5076c42dff14bd3ff31f3ba6f8a27094349657915697b52c3917",
    "x-litellm-model-name": "openai/gpt-4o-mini",
    "x-litellm-model-api-base": "https://api.openai.com",
    "x-litellm-version": "1.106.2",
    "x-litellm-model-group": "mock-gpt",
    "x-litellm-attempted-retries": "0",
    "vary": "Origin",
    "x-content-type-options": "nosniff",
}
CHAT_HEADERS = {
    **_COMMON,
    "content-type": "application/json",
    "x-litellm-response-cost": "1.35e-05",
    "x-litellm-response-cost-original": "1.35e-05",
    "x-litellm-key-spend": "1.35e-05",
}
CHAT_BODY = {
    "id": CHAT_ID,
    "created": 1795433480,
    "model": "mock-gpt",
    "object": "chat.completion",
    "choices": [
        {"finish_reason": "stop", "index": 0, "message": {"content": "Hello from the mock", "role": "assistant"}}
    ],
    "usage": {"completion_tokens": 20, "prompt_tokens": 10, "total_tokens": 30},
}
# A streamed response has no `x-litellm-response-cost` (the cost is not known when the headers leave); the usage
# chunk carries it, and keeps `choices: [{"index": 0, "delta": {}}]`.
STREAM_HEADERS = {
    **_COMMON,
    "content-type": "text/event-stream; charset=utf-8",
    "x-litellm-response-cost-original": "0.0",
    "x-litellm-key-spend": "0.0",
}
STREAM_ID = "chatcmpl-fa42e0a7-56a3-4431-8a60-3e0e9a8e6787"
STREAM_TEXT = ["Hel", "lo ", "fro", "m t", "he ", "moc", "k"]
USAGE_CHUNK = {
    "id": STREAM_ID,
    "created": 1795433481,
    "model": "mock-gpt",
    "object": "chat.completion.chunk",
    "choices": [{"index": 0, "delta": {}}],
    "usage": {
        "completion_tokens": 4,
        "prompt_tokens": 8,
        "total_tokens": 12,
        "completion_tokens_details": {"reasoning_tokens": 0, "text_tokens": 4},
        "cost": 3.6e-6,
    },
}
EMBED_HEADERS = {
    **_COMMON,
    "content-type": "application/json",
    "x-litellm-model-name": "openai/text-embedding-3-small",
    "x-litellm-model-group": "mock-embed",
    "x-litellm-response-cost": "2e-07",
}
EMBED_BODY = {
    "model": "mock-embed",
    "data": [{"embedding": [0.1, 0.2, 0.3, 0.4], "index": 0, "object": "embedding"}],
    "object": "list",
    "usage": {"completion_tokens": 0, "prompt_tokens": 10, "total_tokens": 0},
}
RATE_LIMIT_HEADERS = {
    "x-litellm-call-id": "9150c8ee-401e-48de-80f1-8144a384e487",
    "x-litellm-response-cost": "0",
    "x-litellm-key-spend": "0.0",
    "content-type": "application/json",
}
RATE_LIMIT_MESSAGE = (
    "litellm.RateLimitError: this is a mock rate limit error\n\nLiteLLM: model group 'mock-429' failed with the error "
    "above. No fallback was attempted."
)
RATE_LIMIT_BODY = {"error": {"message": RATE_LIMIT_MESSAGE, "type": "throttling_error", "param": None, "code": "429"}}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish is not None:
        choice["finish_reason"] = finish
    return {"id": STREAM_ID, "object": "chat.completion.chunk", "created": 1795433481, "model": "mock-gpt",
            "choices": [choice]}  # fmt: skip


def _stream_events(include_usage: bool) -> bytes:
    chunks = [_chunk({"role": "assistant", "content": STREAM_TEXT[0]})]
    chunks += [_chunk({"content": text}) for text in STREAM_TEXT[1:]]
    chunks.append(_chunk({}, "stop"))
    if include_usage:
        chunks.append(USAGE_CHUNK)
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def _answer(request: Any) -> tuple[int, dict[str, str], bytes]:
    body = json.loads(request.content)
    model = body.get("model")
    if request.url.path.endswith("/embeddings"):
        return 200, EMBED_HEADERS, json.dumps(EMBED_BODY).encode()
    if model == "mock-429":
        return 429, RATE_LIMIT_HEADERS, json.dumps(RATE_LIMIT_BODY).encode()
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return 200, STREAM_HEADERS, _stream_events(include_usage)
    return 200, CHAT_HEADERS, json.dumps(CHAT_BODY).encode()


def _client(*, asynchronous: bool = False, base_url: str = BASE_URL) -> Any:
    httpx = httpx_module()

    def handler(request: Any) -> Any:
        status, headers, content = _answer(request)
        return httpx.Response(status, headers=headers, content=content, request=request)

    factory = openai.DefaultAsyncHttpxClient if asynchronous else openai.DefaultHttpxClient
    http_client = factory(transport=httpx.MockTransport(handler))
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=base_url, api_key=KEY, max_retries=0, http_client=http_client)


def _chat(**overrides: Any) -> dict[str, Any]:
    return {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], **overrides}


def _cost_points(telemetry: Captured) -> list[Any]:
    return telemetry.metrics().get("gateway.client.cost", [])


LITELLM_NAMES = {"gen_ai.provider.name": "litellm", "gateway.name": "litellm", "llm.provider": "litellm"}


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_chat_through_litellm_records_served_model_cost_and_provider(telemetry: Captured, asynchronous: bool) -> None:
    client = _client(asynchronous=asynchronous)
    call = client.chat.completions.create(**_chat())
    response = asyncio.run(call) if asynchronous else call
    assert response.model == "mock-gpt" and response.id == CHAT_ID  # the caller's response is untouched

    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert span.name == "chat mock-gpt"
    assert span.status.status_code is StatusCode.OK
    assert {k: attrs.get(k) for k in LITELLM_NAMES} == LITELLM_NAMES
    assert attrs["gen_ai.request.model"] == "mock-gpt"
    assert attrs["llm.model_name"] == "mock-gpt"
    assert attrs["gen_ai.response.model"] == "openai/gpt-4o-mini"
    assert attrs["gateway.upstream.provider"] == "openai"
    assert attrs["gen_ai.usage.cost"] == 1.35e-05
    assert attrs["llm.cost.total"] == 1.35e-05
    assert attrs["gateway.call_id"] == CALL_ID
    assert attrs["gen_ai.response.id"] == CHAT_ID
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (10, 20)
    assert attrs["llm.token_count.total"] == 30
    assert attrs["server.address"] == "llm.internal.example" and attrs["server.port"] == 8080

    [cost] = _cost_points(telemetry)
    assert cost.value == 1.35e-05
    assert cost.attributes["gen_ai.provider.name"] == "litellm"
    assert cost.attributes["gen_ai.response.model"] == "openai/gpt-4o-mini"
    assert cost.attributes["gateway.upstream.provider"] == "openai"
    [duration] = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["gen_ai.provider.name"] == "litellm"


def test_stream_usage_chunk_with_non_empty_choices(telemetry: Captured) -> None:
    client = _client()
    stream = client.chat.completions.create(**_chat(stream=True, stream_options={"include_usage": True}))
    chunks = list(stream)
    # The caller sees every chunk as sent, the usage chunk's non-empty `choices` included.
    assert len(chunks) == 9
    assert [c.choices[0].delta.content for c in chunks[:7]] == STREAM_TEXT
    assert chunks[-1].choices[0].delta.content is None and chunks[-1].usage.total_tokens == 12

    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.OK
    assert {k: attrs.get(k) for k in LITELLM_NAMES} == LITELLM_NAMES
    assert attrs["gateway.stream.outcome"] == "completed"
    assert attrs["gateway.stream.chunks"] == 9
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (8, 4)
    assert attrs["gen_ai.usage.cost"] == 3.6e-6  # the chunk's `usage.cost`: no cost header on a stream
    assert attrs["gen_ai.response.model"] == "openai/gpt-4o-mini"
    assert attrs["gateway.upstream.provider"] == "openai"
    assert "gateway.usage.reported" not in attrs
    # One assistant message, not a second empty one for the usage chunk's choice.
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello from the mock"}], "finish_reason": "stop"}
    ]
    assert attrs["llm.output_messages.0.message.content"] == "Hello from the mock"
    assert "llm.output_messages.1.message.role" not in attrs
    [cost] = _cost_points(telemetry)
    assert cost.value == 3.6e-6


def test_stream_without_usage_ends_and_says_so(telemetry: Captured) -> None:
    async def consume() -> list[Any]:
        stream = await _client(asynchronous=True).chat.completions.create(**_chat(stream=True))
        return [chunk async for chunk in stream]

    assert len(asyncio.run(consume())) == 8
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gateway.stream.outcome"] == "completed"
    assert attrs["gateway.usage.reported"] is False
    assert "gen_ai.usage.cost" not in attrs and "gen_ai.usage.input_tokens" not in attrs
    assert attrs["gen_ai.response.model"] == "openai/gpt-4o-mini"
    assert attrs["gateway.name"] == "litellm"
    assert _cost_points(telemetry) == []


def test_embeddings_cost_from_header(telemetry: Captured) -> None:
    result = _client().embeddings.create(model="mock-embed", input="hello")
    assert result.data[0].embedding == [0.1, 0.2, 0.3, 0.4]
    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert span.name == "embeddings mock-embed"
    assert attrs["gen_ai.provider.name"] == "litellm"
    assert attrs["gen_ai.response.model"] == "openai/text-embedding-3-small"
    assert attrs["gen_ai.usage.cost"] == 2e-07
    assert attrs["gen_ai.usage.input_tokens"] == 10
    assert attrs["gen_ai.embeddings.dimension.count"] == 4


def test_rate_limit_error_is_recorded_and_names_litellm(telemetry: Captured) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        _client().chat.completions.create(**_chat(model="mock-429"))
    assert caught.value.status_code == 429  # the API's error passes through untouched
    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == "429"
    assert attrs["gateway.name"] == "litellm" and attrs["gen_ai.provider.name"] == "litellm"
    assert attrs["gateway.error.code"] == "429"
    assert attrs["gateway.error.message"] == RATE_LIMIT_MESSAGE
    assert attrs["gateway.call_id"] == "9150c8ee-401e-48de-80f1-8144a384e487"
    assert "gen_ai.usage.cost" not in attrs  # a failed call reports no cost
    assert [e.name for e in span.events] == ["exception"]
    assert _cost_points(telemetry) == []


def test_raw_response_reads_the_same_headers(telemetry: Captured) -> None:
    raw = _client().chat.completions.with_raw_response.create(**_chat())
    assert raw.headers["x-litellm-model-name"] == "openai/gpt-4o-mini"
    assert raw.parse().id == CHAT_ID
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gen_ai.response.model"] == "openai/gpt-4o-mini"
    assert attrs["gen_ai.usage.cost"] == 1.35e-05
    assert attrs["gateway.name"] == "litellm"


def test_forced_gateway_is_kept(make_telemetry: Any) -> None:
    telemetry = make_telemetry(gateway="openai_compatible")
    _client().chat.completions.create(**_chat())
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gateway.name"] == "openai_compatible"  # the option wins over the headers...
    assert attrs["gen_ai.provider.name"] == "openai_compatible"
    assert attrs["gen_ai.usage.cost"] == 1.35e-05  # ...whose facts are still read
    [duration] = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["gen_ai.provider.name"] == "openai_compatible"


def test_known_host_headers_are_not_read(telemetry: Captured) -> None:
    """A host known to be another gateway is not renamed by headers it happens to carry."""
    _client(base_url="https://api.groq.com/openai/v1").chat.completions.create(**_chat())
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gateway.name"] == "groq"
    assert attrs["gen_ai.response.model"] == "mock-gpt"
    assert "gen_ai.usage.cost" not in attrs and "gateway.call_id" not in attrs


def test_litellm_default_port_is_litellm_from_the_start(telemetry: Captured) -> None:
    """On its default port LiteLLM is known before the call: the span starts with its name (for samplers)."""
    _client(base_url="http://localhost:4000").chat.completions.create(**_chat())
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gateway.name"] == "litellm"
    assert attrs["gen_ai.response.model"] == "openai/gpt-4o-mini"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"content-type": "application/json", "x-request-id": "abc"}, None),
        ({"X-LiteLLM-Version": "1.106.2"}, (None, None, None, None)),
        (
            {"x-litellm-model-name": "azure/gpt-4o", "x-litellm-response-cost": "0.25", "x-litellm-call-id": "c1"},
            ("azure/gpt-4o", "azure", 0.25, "c1"),
        ),
        ({"x-litellm-model-name": "gpt-4o", "x-litellm-response-cost": "nan"}, ("gpt-4o", None, None, None)),
        ({"x-litellm-model-name": "/gpt-4o", "x-litellm-response-cost": "-1"}, ("/gpt-4o", None, None, None)),
        ({"x-litellm-model-name": "", "x-litellm-response-cost": "free"}, (None, None, None, None)),
        ({"x-litellm-response-cost": "inf"}, (None, None, None, None)),
    ],
)
def test_header_facts(headers: dict[str, str], expected: tuple[Any, ...] | None) -> None:
    facts = header_facts(headers)
    if expected is None:
        assert facts is None
        return
    assert facts is not None and facts.gateway.name == "litellm"
    assert (facts.served_model, facts.upstream_provider, facts.cost, facts.call_id) == expected


def test_header_facts_reads_httpx_headers_and_tolerates_anything() -> None:
    httpx = httpx_module()
    facts = header_facts(httpx.Headers(CHAT_HEADERS))
    assert facts is not None and facts.cost == 1.35e-05 and facts.call_id == CALL_ID
    for odd in (None, 42, "x-litellm-version", [("x-litellm-version", 1)]):
        assert header_facts(odd) is None
