"""One span per call, for every surface × sync/async × raw, through the real openai client and the simulator."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from conftest import API_KEY, OPENAI_MAJOR, OPENROUTER_URL, Captured, make_client

MODEL = "openai/gpt-oss-20b:free"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is OpenTelemetry?"}]


def _resource(client: Any, path: str, raw: bool) -> Any:
    obj = client
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj.with_raw_response if raw else obj


def _chat_parse(client: Any, raw: bool) -> Callable[..., Any]:
    resource = client.chat.completions if hasattr(client.chat.completions, "parse") else client.beta.chat.completions
    return (resource.with_raw_response if raw else resource).parse


# surface → (method getter, kwargs, operation, openinference kind)
SURFACES: dict[str, tuple[Callable[[Any, bool], Any], dict[str, Any], str, str]] = {
    "chat": (
        lambda c, raw: _resource(c, "chat.completions", raw).create,
        {"model": MODEL, "messages": MESSAGES, "temperature": 0.2, "max_tokens": 64},
        "chat",
        "LLM",
    ),
    "chat.parse": (_chat_parse, {"model": MODEL, "messages": MESSAGES}, "chat", "LLM"),
    "completions": (
        lambda c, raw: _resource(c, "completions", raw).create,
        {"model": MODEL, "prompt": "Say hello", "max_tokens": 16},
        "text_completion",
        "LLM",
    ),
    "embeddings": (
        lambda c, raw: _resource(c, "embeddings", raw).create,
        {"model": "openai/text-embedding-3-small", "input": "hello world"},
        "embeddings",
        "EMBEDDING",
    ),
    "responses": (
        lambda c, raw: _resource(c, "responses", raw).create,
        {"model": MODEL, "input": "What is OpenTelemetry?", "instructions": "Be brief."},
        "chat",
        "LLM",
    ),
    "responses.parse": (
        lambda c, raw: _resource(c, "responses", raw).parse,
        {"model": MODEL, "input": "What is OpenTelemetry?"},
        "chat",
        "LLM",
    ),
}


def _call(sim: Any, surface: str, asynchronous: bool, raw: bool, **overrides: Any) -> Any:
    """Make the call the way a user would, sync or async, and return what the user gets (parsed)."""
    getter, kwargs, _, _ = SURFACES[surface]

    async def go() -> Any:
        client = make_client(sim, asynchronous=asynchronous)
        method = getter(client, raw)
        result = method(**{**kwargs, **overrides})
        if inspect.isawaitable(result):
            result = await result
        return result.parse() if raw else result

    return asyncio.run(go())


def _usage_expectations(usage: Any) -> dict[str, Any]:
    prompt = getattr(usage, "prompt_tokens", None)
    if prompt is None:
        prompt = usage.input_tokens
        completion = getattr(usage, "output_tokens", None)
        cached = usage.input_tokens_details.cached_tokens
        reasoning = usage.output_tokens_details.reasoning_tokens
    else:
        completion = getattr(usage, "completion_tokens", None)
        details = getattr(usage, "prompt_tokens_details", None)
        cached = details.cached_tokens if details else None
        out_details = getattr(usage, "completion_tokens_details", None)
        reasoning = out_details.reasoning_tokens if out_details else None
    expected = {
        "gen_ai.usage.input_tokens": prompt,
        "llm.token_count.prompt": prompt,
        "llm.token_count.total": usage.total_tokens,
        "gen_ai.usage.cost": usage.cost,
        "llm.cost.total": usage.cost,
        "gateway.cost.source": "gateway",
    }
    if completion is not None:
        expected["gen_ai.usage.output_tokens"] = completion
        expected["llm.token_count.completion"] = completion
    if cached:
        expected["gen_ai.usage.cache_read.input_tokens"] = cached
    if reasoning:
        expected["gen_ai.usage.reasoning.output_tokens"] = reasoning
    return expected


@pytest.mark.parametrize("raw", [False, True], ids=["parsed", "raw"])
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("surface", list(SURFACES))
def test_one_complete_span_per_call(
    telemetry: Captured, sim: Any, surface: str, asynchronous: bool, raw: bool
) -> None:
    if surface == "responses.parse" and not hasattr(make_client(sim).responses, "parse"):
        pytest.skip("this openai version has no responses.parse")
    result = _call(sim, surface, asynchronous, raw)
    _, kwargs, operation, kind = SURFACES[surface]
    span = telemetry.span()
    attrs = dict(span.attributes or {})

    assert span.name == f"{operation} {kwargs['model']}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.OK
    assert span.dropped_attributes == 0
    expected = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": "openrouter",
        "gen_ai.request.model": kwargs["model"],
        "server.address": "openrouter.ai",
        "server.port": 443,
        "gateway.name": "openrouter",
        "openinference.span.kind": kind,
        "llm.system": "openai",
        "llm.provider": "openrouter",
        "gen_ai.response.model": result.model,
        "gen_ai.response.id": result.id,
        "gateway.upstream.provider": result.provider,
        **_usage_expectations(result.usage),
    }
    assert {k: attrs.get(k) for k in expected} == expected
    # The request went out unchanged: the body the simulator received is what the user passed.
    sent = sim.requests[-1].body
    for key, value in kwargs.items():
        assert sent[key] == value
    if kind == "LLM":
        assert attrs["llm.model_name"] == kwargs["model"]
        assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
        assert attrs["input.mime_type"] == "application/json"
        assert "gen_ai.input.messages" in attrs
        assert "gen_ai.output.messages" in attrs
    else:
        assert attrs["embedding.model_name"] == kwargs["model"]
        assert attrs["gateway.embeddings.count"] == len(result.data)
        assert attrs["gen_ai.embeddings.dimension.count"] == len(result.data[0].embedding)
        assert attrs["input.value"] == "hello world"
        assert attrs["embedding.embeddings.0.embedding.text"] == "hello world"
        assert not any("embedding.vector" in k for k in attrs)


def test_chat_span_exact_attributes(telemetry: Captured, sim: Any) -> None:
    """The whole attribute set of a chat span, key for key, in the order essentials first."""
    client = make_client(
        sim,
        default_headers={
            "HTTP-Referer": "https://my.app",
            "X-Title": "My App",
            "X-OpenRouter-Categories": "cli-agent, cloud-agent",
        },
    )
    result = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        seed=7,
        stop=["END"],
        frequency_penalty=0.1,
        presence_penalty=0.3,
        n=1,
        user="user-1",
        extra_body={"session_id": "session-1", "metadata": {"team": "search"}},
    )
    attrs = dict(telemetry.span().attributes or {})
    text = result.choices[0].message.content
    input_json = json.dumps(
        [
            {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
            {"role": "user", "parts": [{"type": "text", "content": "What is OpenTelemetry?"}]},
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    thought = result.choices[0].message.model_extra["reasoning"]  # gpt-oss reasons: the simulator sends it
    parts = [{"type": "reasoning", "content": thought}, {"type": "text", "content": text}]
    output_json = json.dumps(
        [{"role": "assistant", "parts": parts, "finish_reason": "stop"}],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    usage = result.usage
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openrouter",
        "gen_ai.request.model": MODEL,
        "server.address": "openrouter.ai",
        "server.port": 443,
        "gateway.name": "openrouter",
        "openinference.span.kind": "LLM",
        "llm.model_name": MODEL,
        "llm.system": "openai",
        "llm.provider": "openrouter",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": 0.3,
        "gen_ai.request.seed": 7,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.choice.count": 1,
        "gen_ai.request.stream": False,
        "session.id": "session-1",
        "gen_ai.conversation.id": "session-1",
        "user.id": "user-1",
        "metadata": '{"team":"search"}',
        "llm.invocation_parameters": json.dumps(
            {
                k: v
                for k, v in sim.requests[-1].body.items()
                if k not in ("messages", "model", "user", "session_id", "metadata", "trace")
            },
            separators=(",", ":"),
        ),
        "gateway.app.referer": "https://my.app",
        "gateway.app.title": "My App",
        "gateway.app.categories": ("cli-agent", "cloud-agent"),
        "gen_ai.response.model": result.model,
        "gen_ai.response.id": result.id,
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "llm.token_count.prompt": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "llm.token_count.completion": usage.completion_tokens,
        "llm.token_count.total": usage.total_tokens,
        "gen_ai.usage.cost": usage.cost,
        "llm.cost.total": usage.cost,
        "gateway.cost.source": "gateway",
        # The simulator reports 0 cached / cache-write tokens for a short prompt: zero counts are left out.
        "gen_ai.usage.reasoning.output_tokens": usage.completion_tokens_details.reasoning_tokens,
        "llm.token_count.completion_details.reasoning": usage.completion_tokens_details.reasoning_tokens,
        "gateway.cost.is_byok": False,
        **(
            {
                "gateway.cost.upstream_inference_prompt": usage.cost_details["upstream_inference_prompt_cost"],
                "gateway.cost.upstream_inference_completions": usage.cost_details[
                    "upstream_inference_completions_cost"
                ],
            }
            if usage.cost_details.get("upstream_inference_prompt_cost") is not None
            else {}
        ),
        "gateway.upstream.provider": result.provider,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.input.messages": input_json,
        "input.value": input_json,
        "input.mime_type": "application/json",
        "gen_ai.output.messages": output_json,
        "output.value": text,
        "output.mime_type": "text/plain",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": text,
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be brief.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "What is OpenTelemetry?",
    }


def test_tool_calls_both_conventions(telemetry: Captured, sim: Any) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    client = make_client(sim)
    first = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools
    )
    call = first.choices[0].message.tool_calls[0]
    followup = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    client.chat.completions.create(model=MODEL, messages=followup, tools=tools)
    first_span, second_span = telemetry.spans()
    a = dict(first_span.attributes or {})
    assert a["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert a["llm.output_messages.0.message.tool_calls.0.tool_call.id"] == call.id
    assert a["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "get_weather"
    assert a["llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments"] == call.function.arguments
    assert json.loads(a["llm.tools.0.tool.json_schema"]) == tools[0]
    assert json.loads(a["gen_ai.tool.definitions"]) == tools
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"] == [
        {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": call.function.arguments}
    ]
    b = dict(second_span.attributes or {})
    assert b["llm.input_messages.1.message.tool_calls.0.tool_call.function.name"] == "get_weather"
    assert b["llm.input_messages.2.message.role"] == "tool"
    assert b["llm.input_messages.2.message.tool_call_id"] == call.id
    assert b["llm.input_messages.2.message.content"] == "18C and sunny"
    assert json.loads(b["gen_ai.input.messages"])[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": call.id, "response": "18C and sunny"}],
    }


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("scenario", "exc_type", "error_type"),
    [
        ("error-401", openai.AuthenticationError, "401"),
        ("error-402", openai.APIStatusError, "402"),
        ("error-429", openai.RateLimitError, "429"),
        ("error-500", openai.InternalServerError, "500"),
        ("timeout", openai.APITimeoutError, "openai.APITimeoutError"),
    ],
)
def test_errors_pass_through_and_are_recorded(
    telemetry: Captured, sim: Any, scenario: str, exc_type: type, error_type: str, asynchronous: bool
) -> None:
    async def go() -> None:
        client = make_client(sim, asynchronous=asynchronous)
        result = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers={"X-Simulator-Scenario": scenario}
        )
        await result if inspect.isawaitable(result) else None

    with pytest.raises(exc_type) as caught:
        asyncio.run(go())
    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == error_type
    assert span.status.description.startswith(f"{error_type}: ")
    [event] = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"] == f"{type(caught.value).__module__}.{type(caught.value).__qualname__}"
    if scenario.startswith("error-"):
        # OpenRouter's error body reaches the caller untouched, and its code and message reach the span.
        body = caught.value.body
        assert isinstance(body, dict) and body["code"] == int(error_type)
        assert attrs["gateway.error.code"] == error_type
        assert attrs["gateway.error.message"] == body["message"]
        assert attrs["gateway.upstream.provider"] == body["metadata"]["provider_name"]
    assert "gen_ai.response.id" not in attrs
    assert "gen_ai.input.messages" in attrs  # what was asked is still there
    _assert_no_secret(telemetry)
    [duration] = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == error_type
    assert duration.count == 1


def test_connection_error(telemetry: Captured) -> None:
    httpx_module = importlib.import_module("httpx2" if OPENAI_MAJOR >= 3 else "httpx")

    def refuse(request: Any) -> Any:
        raise httpx_module.ConnectError("connection refused", request=request)

    client = openai.OpenAI(
        base_url=OPENROUTER_URL,
        api_key=API_KEY,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=httpx_module.MockTransport(refuse)),
    )
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "openai.APIConnectionError"
    _assert_no_secret(telemetry)


def _assert_no_secret(telemetry: Captured) -> None:
    for span in telemetry.spans():
        dumped = span.to_json()
        assert API_KEY not in dumped
        assert "Authorization" not in dumped and "authorization" not in dumped
    metrics = telemetry.reader.get_metrics_data()
    assert metrics is not None and API_KEY not in metrics.to_json()  # metrics are on: there is something to search


def test_call_inside_user_span_is_its_child(telemetry: Captured, sim: Any) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as parent:
        make_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES)
    llm, app = telemetry.spans()
    assert app.name == "handle request"
    assert llm.parent is not None and llm.parent.span_id == parent.get_span_context().span_id
    assert llm.context.trace_id == parent.get_span_context().trace_id


def test_other_endpoints_are_not_traced(telemetry: Captured, sim: Any) -> None:
    client = make_client(sim)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("openai/gpt-oss-20b")
    assert telemetry.spans() == []
