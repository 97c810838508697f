"""The gateway simulator, driven through the real openai client (sync and async, in-process and over a socket).

Runs on openai 1.x (httpx) and openai >= 3 (httpx2): every assertion is on what the client parses.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import json
import struct
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from gateway_otel import simulator
from gateway_otel.simulator import GatewaySimulator
from gateway_otel.simulator._transport import httpx_module

BASE_URL = "https://openrouter.ai/api/v1"
API_KEY = "sk-or-test-secret-1234"
NOW = 1_700_000_000
USER = [{"role": "user", "content": "What is the weather like in Paris today?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["location", "unit"],
        },
    },
}


class Api:
    """One openai client, sync or async, behind one calling convention so each test runs in both modes."""

    def __init__(self, sim: GatewaySimulator, asynchronous: bool) -> None:
        self.sim = sim
        self.asynchronous = asynchronous
        factory = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        http_client = simulator.http_client(sim, asynchronous=asynchronous)
        self.client: Any = factory(base_url=BASE_URL, api_key=API_KEY, http_client=http_client, max_retries=0)

    def call(self, method: str, **kwargs: Any) -> Any:
        """Call e.g. `chat.completions.create`; a stream is read to the end and returned as a list."""
        items, error = self.stream(method, **kwargs) if kwargs.get("stream") else (self._once(method, kwargs), None)
        if error is not None:
            raise error
        return items

    def stream(self, method: str, **kwargs: Any) -> tuple[list[Any], BaseException | None]:
        """Read a stream as far as it goes: the items received and the error that ended it, if any."""
        target = functools.reduce(getattr, method.split("."), self.client)
        kwargs["stream"] = True
        items: list[Any] = []
        if not self.asynchronous:
            try:
                items.extend(target(**kwargs))
            except Exception as exc:
                return items, exc
            return items, None

        async def read() -> BaseException | None:
            try:
                async for item in await target(**kwargs):
                    items.append(item)
            except Exception as exc:
                return exc
            return None

        return items, asyncio.run(read())

    def _once(self, method: str, kwargs: dict[str, Any]) -> Any:
        target = functools.reduce(getattr, method.split("."), self.client)
        if not self.asynchronous:
            return target(**kwargs)

        async def once() -> Any:
            return await target(**kwargs)

        return asyncio.run(once())


@pytest.fixture
def sim() -> GatewaySimulator:
    return GatewaySimulator(clock=lambda: NOW)


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, sim: GatewaySimulator) -> Iterator[Api]:
    yield Api(sim, asynchronous=request.param == "async")


def extra(obj: Any, name: str) -> Any:
    """An OpenRouter field the openai models do not declare (kept in `model_extra`)."""
    return (obj.model_extra or {}).get(name, getattr(obj, name, None))


# --- chat completions ------------------------------------------------------------------------------------------------


def test_chat_text_reply_carries_openrouter_fields(api: Api) -> None:
    r = api.call("chat.completions.create", model="openai/gpt-4o-mini", messages=USER, temperature=0.2)

    assert r.id.startswith("gen-")
    assert r.object == "chat.completion"
    assert r.created == NOW
    assert r.model == "openai/gpt-4o-mini"
    assert extra(r, "provider") == "OpenAI"
    choice = r.choices[0]
    assert choice.message.content == "Simulated reply to: What is the weather like in Paris today?"
    assert choice.finish_reason == "stop"
    assert extra(choice, "native_finish_reason") == "stop"
    u = r.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (12, 11, 23)
    assert extra(u, "cost") == pytest.approx(12e-6 + 22e-6)
    assert extra(u, "is_byok") is False
    assert extra(u, "cost_details")["upstream_inference_prompt_cost"] == pytest.approx(12e-6)
    assert u.prompt_tokens_details.cached_tokens == 0
    assert u.completion_tokens_details.reasoning_tokens == 0
    recorded = api.sim.last_request
    assert recorded.method == "POST" and recorded.path == "/api/v1/chat/completions"
    assert recorded.body == {"model": "openai/gpt-4o-mini", "messages": USER, "temperature": 0.2}
    assert recorded.headers["Content-Type"] == "application/json"


def test_free_reasoning_model_and_long_prompt(api: Api) -> None:
    long_prompt = [{"role": "user", "content": "word " * 100}]
    r = api.call("chat.completions.create", model="openai/gpt-oss-20b:free", messages=long_prompt)

    assert r.model == "openai/gpt-oss-20b"  # OpenRouter drops the variant suffix
    assert extra(r.usage, "cost") == 0
    assert r.usage.completion_tokens_details.reasoning_tokens > 0
    assert r.usage.prompt_tokens_details.cached_tokens == r.usage.prompt_tokens // 2 > 0


def test_chat_n_choices(api: Api) -> None:
    r = api.call("chat.completions.create", model="anthropic/claude-3.5-sonnet", messages=USER, n=2)

    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].message.content != r.choices[1].message.content
    assert extra(r, "provider") == "Anthropic"
    assert extra(r.choices[0], "native_finish_reason") == "end_turn"


def test_chat_tool_call_then_tool_result(api: Api) -> None:
    r = api.call("chat.completions.create", model="openai/gpt-4o", messages=USER, tools=[WEATHER_TOOL])

    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris, France", "unit": "celsius"}

    followup = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
    ]
    r2 = api.call("chat.completions.create", model="openai/gpt-4o", messages=followup, tools=[WEATHER_TOOL])
    assert r2.choices[0].finish_reason == "stop"
    assert r2.choices[0].message.content == "Simulated reply using the tool result: 18 degrees and sunny"
    assert r2.choices[0].message.tool_calls is None


def test_chat_tool_choice_none_answers_with_text(api: Api) -> None:
    r = api.call(
        "chat.completions.create", model="openai/gpt-4o", messages=USER, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.tool_calls is None


def test_chat_max_tokens_truncates_with_length(api: Api) -> None:
    r = api.call("chat.completions.create", model="google/gemini-2.0-flash", messages=USER, max_tokens=3)

    assert r.choices[0].message.content == "Simulated reply to:"
    assert r.choices[0].finish_reason == "length"
    assert extra(r.choices[0], "native_finish_reason") == "MAX_TOKENS"
    assert r.usage.completion_tokens == 3


def test_chat_stream_ends_with_usage_chunk(api: Api) -> None:
    whole = api.call("chat.completions.create", model="qwen/qwen3-32b", messages=USER)
    chunks = api.call("chat.completions.create", model="qwen/qwen3-32b", messages=USER, stream=True)

    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].id.startswith("gen-") and chunks[0].id != whole.id
    assert all(extra(c, "provider") == "Chutes" and c.model == "qwen/qwen3-32b" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == len(text.split())
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    last = chunks[-1]
    assert last.choices == []  # sent although the request had no stream_options
    assert last.usage.total_tokens == whole.usage.total_tokens
    assert extra(last.usage, "cost") == extra(whole.usage, "cost") > 0
    assert "stream_options" not in api.sim.last_request.body


def test_chat_stream_tool_call_deltas(api: Api) -> None:
    chunks = api.call(
        "chat.completions.create", model="openai/gpt-4o", messages=USER, tools=[WEATHER_TOOL], stream=True
    )

    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert deltas[0].id.startswith("call_") and deltas[0].function.name == "get_weather"
    assert deltas[0].function.arguments == ""
    assert len(deltas) > 2 and all(d.index == 0 and d.id is None for d in deltas[1:])
    arguments = "".join(d.function.arguments for d in deltas)
    assert json.loads(arguments) == {"location": "Paris, France", "unit": "celsius"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_stream_is_read_incrementally_from_any_host() -> None:
    pulled: list[bytes] = []

    class Counting(GatewaySimulator):
        def handle(self, method: str, path: str, headers: Any, body: bytes) -> simulator.SimulatedResponse:
            answer = super().handle(method, path, headers, body)

            def counted() -> Iterator[bytes]:
                for chunk in answer.chunks or []:
                    pulled.append(chunk)
                    yield chunk

            return dataclasses.replace(answer, chunks=counted())

    sim = Counting()
    client = openai.OpenAI(
        base_url="http://gateway.invalid/v1", api_key=API_KEY, http_client=simulator.http_client(sim)
    )
    stream = client.chat.completions.create(model="openai/gpt-4o", messages=USER, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    assert 0 < len(pulled) <= 3  # the comment and the first chunk, not the whole answer
    rest = list(stream)
    assert len(pulled) == len(rest) + 3  # comment + first chunk + the rest + [DONE]
    assert sim.last_request.headers["host"] == "gateway.invalid"


def test_raw_sse_framing(sim: GatewaySimulator) -> None:
    body = json.dumps({"model": "openai/gpt-4o", "messages": USER, "stream": True}).encode()
    answer = sim.handle("POST", "/v1/chat/completions", {"Authorization": f"Bearer {API_KEY}"}, body)

    assert answer.status == 200 and answer.headers["content-type"] == "text/event-stream"
    assert answer.headers["x-generation-id"].startswith("gen-")
    chunks = list(answer.chunks or [])
    assert chunks[0] == b": OPENROUTER PROCESSING\n\n"
    assert chunks[-1] == b"data: [DONE]\n\n"
    assert all(c.startswith(b"data: {") and c.endswith(b"}\n\n") for c in chunks[1:-1])
    assert json.loads(chunks[-2][6:])["choices"] == []


# --- legacy completions ----------------------------------------------------------------------------------------------


def test_completions(api: Api) -> None:
    r = api.call("completions.create", model="meta-llama/llama-3.1-8b-instruct", prompt="Once upon a time")
    assert r.object == "text_completion" and r.id.startswith("gen-")
    assert r.choices[0].text == "Simulated completion to: Once upon a time"
    assert extra(r, "provider") == "DeepInfra"
    assert extra(r.usage, "cost") > 0

    chunks = api.call("completions.create", model="meta-llama/llama-3.1-8b-instruct", prompt="Once", stream=True)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Simulated completion to: Once"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 5


# --- embeddings ------------------------------------------------------------------------------------------------------


def test_embeddings_float_and_dimensions(api: Api) -> None:
    r = api.call(
        "embeddings.create", model="openai/text-embedding-3-small", input=["a", "b c"], encoding_format="float"
    )

    assert r.object == "list" and extra(r, "id").startswith("gen-emb-")
    assert extra(r, "provider") == "OpenAI"
    assert [len(d.embedding) for d in r.data] == [16, 16]
    assert sum(v * v for v in r.data[0].embedding) == pytest.approx(1.0, rel=1e-5)
    assert r.data[0].embedding != r.data[1].embedding
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (3, 3)
    assert extra(r.usage, "cost") > 0

    r512 = api.call("embeddings.create", model="openai/text-embedding-3-small", input="a", dimensions=512)
    assert len(r512.data[0].embedding) == 512
    assert r512.data[0].embedding[:16] != r.data[0].embedding  # renormalised over more dimensions


def test_embeddings_base64_matches_floats(api: Api) -> None:
    floats = api.call(
        "embeddings.create", model="openai/text-embedding-3-small", input="hello", encoding_format="float"
    )
    # Without encoding_format the client asks for base64 itself and decodes it.
    default = api.call("embeddings.create", model="openai/text-embedding-3-small", input="hello")
    assert api.sim.last_request.body["encoding_format"] == "base64"
    assert default.data[0].embedding == floats.data[0].embedding
    # Asked for explicitly, base64 comes back as the string (little-endian float32).
    raw = api.call("embeddings.create", model="openai/text-embedding-3-small", input="hello", encoding_format="base64")
    packed = base64.b64decode(raw.data[0].embedding)
    assert list(struct.unpack("<16f", packed)) == floats.data[0].embedding


# --- Responses API ---------------------------------------------------------------------------------------------------


def test_responses_string_input(api: Api) -> None:
    r = api.call("responses.create", model="openai/gpt-4o-mini", input="Say this is a test", instructions="Be brief.")

    assert r.object == "response" and r.id.startswith("gen-") and r.status == "completed"
    assert r.output_text == "Simulated reply to: Say this is a test"
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.instructions == "Be brief."
    assert extra(r, "provider") == "OpenAI"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (15, 8)
    assert r.usage.total_tokens == 23
    assert r.usage.input_tokens_details.cached_tokens == 0
    assert r.usage.output_tokens_details.reasoning_tokens == 0
    assert extra(r.usage, "cost") > 0


def test_responses_message_list_and_function_tool(api: Api) -> None:
    messages = [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]}]
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}
    r = api.call("responses.create", model="openai/gpt-4o", input=messages, tools=[tool])

    (item,) = r.output
    assert item.type == "function_call" and item.name == "get_weather" and item.call_id.startswith("call_")
    assert json.loads(item.arguments) == {"location": "Paris, France", "unit": "celsius"}

    followup = [*messages, item.model_dump(exclude_none=True)]
    followup.append({"type": "function_call_output", "call_id": item.call_id, "output": "18 degrees"})
    r2 = api.call("responses.create", model="openai/gpt-4o", input=followup, tools=[tool])
    assert r2.output_text == "Simulated reply using the tool result: 18 degrees"


def test_responses_stream_events(api: Api) -> None:
    events = api.call("responses.create", model="openai/gpt-oss-120b", input="Say this is a test", stream=True)

    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Simulated reply to: Say this is a test"
    final = events[-1].response
    assert final.status == "completed" and final.output_text == deltas
    assert final.usage.output_tokens_details.reasoning_tokens > 0
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens
    assert extra(final.usage, "cost") > 0


def test_responses_max_output_tokens_is_incomplete(api: Api) -> None:
    r = api.call("responses.create", model="openai/gpt-4o", input="one two three four", max_output_tokens=2)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.output_text == "Simulated reply"


# --- errors and faults -----------------------------------------------------------------------------------------------

ERROR_CLASSES: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    402: openai.APIStatusError,
    404: openai.NotFoundError,
    429: openai.RateLimitError,
    500: openai.InternalServerError,
    502: openai.InternalServerError,
    503: openai.InternalServerError,
}


@pytest.mark.parametrize("status", sorted(ERROR_CLASSES))
@pytest.mark.parametrize("via", ["model", "header"])
def test_error_scenarios(api: Api, status: int, via: str) -> None:
    scenario = f"error-{status}"
    model, headers = (
        (f"sim/{scenario}", {}) if via == "model" else ("openai/gpt-4o", {"X-Simulator-Scenario": scenario})
    )

    with pytest.raises(ERROR_CLASSES[status]) as caught:
        api.call("chat.completions.create", model=model, messages=USER, extra_headers=headers)

    exc = caught.value
    assert exc.status_code == status
    assert exc.body["code"] == status and exc.body["message"]
    assert exc.body["metadata"]["provider_name"] == ("OpenAI" if via == "header" else "DeepInfra")
    assert "raw" in exc.body["metadata"]
    payload = exc.response.json()
    assert payload["user_id"].startswith("user_") and payload["error"] == exc.body
    assert (exc.response.headers.get("retry-after") == "0") is (status == 429)


def test_stream_error_arrives_as_error_chunk(api: Api) -> None:
    chunks, error = api.stream("chat.completions.create", model="sim/stream-error", messages=USER, stream=True)

    assert [c.choices[0].delta.content for c in chunks[1:]] == ["Simulated", " reply"]
    assert isinstance(error, openai.APIError) and not isinstance(error, openai.APIStatusError)
    assert error.body["metadata"] == {"error_type": "provider_error"}
    assert error.body["message"] == str(error)


def test_stream_error_wire_shape(sim: GatewaySimulator) -> None:
    body = json.dumps({"model": "openai/gpt-4o", "messages": USER, "stream": True}).encode()
    headers = {"authorization": "Bearer x", "x-simulator-scenario": "stream-error"}
    chunks = list(sim.handle("POST", "/chat/completions", headers, body).chunks or [])

    assert chunks[-1] == b"data: [DONE]\n\n"
    failure = json.loads(chunks[-2][6:])
    assert failure["error"]["metadata"]["error_type"] == "provider_error"
    assert failure["choices"][0]["finish_reason"] == "error"
    assert failure["object"] == "chat.completion.chunk" and failure["provider"] == "OpenAI"


def test_stream_error_responses_api_ends_failed(api: Api) -> None:
    events = api.call("responses.create", model="sim/stream-error", input="one two three", stream=True)
    assert [e.type for e in events][-3:] == ["response.output_text.delta"] * 2 + ["response.failed"]
    assert events[-1].response.status == "failed" and events[-1].response.error.code == "server_error"


def test_disconnect_mid_stream(api: Api) -> None:
    chunks, error = api.stream("chat.completions.create", model="sim/disconnect", messages=USER, stream=True)

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Simulated reply"
    # openai >= 3 wraps transport errors raised while iterating; openai 1.x lets the httpx error through.
    assert isinstance(error, (openai.APIConnectionError, httpx_module().ReadError))


def test_disconnect_non_stream(api: Api) -> None:
    with pytest.raises(openai.APIConnectionError):
        api.call("chat.completions.create", model="sim/disconnect", messages=USER)


def test_timeout(api: Api) -> None:
    with pytest.raises(openai.APITimeoutError):
        api.call(
            "chat.completions.create",
            model="openai/gpt-4o",
            messages=USER,
            extra_headers={"X-Simulator-Scenario": "timeout"},
        )


def test_missing_auth_is_401(api: Api) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        api.call(
            "chat.completions.create",
            model="openai/gpt-4o",
            messages=USER,
            extra_headers={"Authorization": openai.Omit()},
        )
    assert caught.value.body == {"code": 401, "message": "No auth credentials found"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/v1/chat/completions", 200),
        ("POST", "/v1/embeddings?x=1", 200),
        ("POST", "/responses", 200),
        ("POST", "/api/v1/models/whatever", 404),
        ("GET", "/api/v1/chat/completions", 405),
    ],
)
def test_routing(sim: GatewaySimulator, method: str, path: str, status: int) -> None:
    body = {"model": "openai/gpt-4o", "messages": USER, "input": "hi", "prompt": "hi"}
    answer = sim.handle(method, path, {"Authorization": "Bearer k"}, json.dumps(body).encode())
    assert answer.status == status
    if status != 200:
        assert json.loads(answer.body)["error"]["code"] == status


def test_unknown_scenarios_and_bad_requests_are_400(sim: GatewaySimulator) -> None:
    auth = {"Authorization": "Bearer k"}
    bodies = [
        (auth | {"X-Simulator-Scenario": "nope"}, {"model": "openai/gpt-4o", "messages": USER}),
        (auth, {"model": "sim/nope", "messages": USER}),
        (auth, {"model": "openai/gpt-4o", "messages": []}),
        (auth, {"messages": USER}),
    ]
    for headers, body in bodies:
        answer = sim.handle("POST", "/chat/completions", headers, json.dumps(body).encode())
        assert answer.status == 400, body
        assert json.loads(answer.body)["error"]["code"] == 400
    assert sim.handle("POST", "/chat/completions", auth, b"{not json").status == 400


def test_api_key_is_never_echoed_or_recorded(sim: GatewaySimulator) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Simulator-Scenario": "error-401"}
    for scenario_headers in (headers, {"Authorization": f"Bearer {API_KEY}"}):
        body = json.dumps({"model": "openai/gpt-4o", "messages": USER, "stream": True}).encode()
        answer = sim.handle("POST", "/chat/completions", scenario_headers, body)
        wire = answer.body + b"".join(answer.chunks or []) + json.dumps(answer.headers).encode()
        assert API_KEY.encode() not in wire
    assert all(r.headers["authorization"] == "Bearer [REDACTED]" for r in sim.requests)
    assert API_KEY not in repr(sim.requests)


def test_deterministic_and_reset(sim: GatewaySimulator) -> None:
    body = json.dumps({"model": "openai/gpt-4o", "messages": USER, "stream": True}).encode()
    first = b"".join(sim.handle("POST", "/chat/completions", {"Authorization": "Bearer k"}, body).chunks or [])
    sim.reset()
    assert sim.requests == []
    again = b"".join(sim.handle("POST", "/chat/completions", {"Authorization": "Bearer k"}, body).chunks or [])
    assert first == again


def test_thread_safe_ids(sim: GatewaySimulator) -> None:
    body = json.dumps({"model": "openai/gpt-4o", "messages": USER}).encode()
    ids: list[str] = []

    def worker() -> None:
        for _ in range(25):
            ids.append(
                json.loads(sim.handle("POST", "/chat/completions", {"Authorization": "Bearer k"}, body).body)["id"]
            )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(sim.requests) == 100


# --- the real server -------------------------------------------------------------------------------------------------


@pytest.fixture
def running(sim: GatewaySimulator) -> Iterator[simulator.RunningSimulator]:
    with simulator.serve(port=0, sim=sim) as running:
        yield running


def test_real_server_with_default_http_client(running: simulator.RunningSimulator) -> None:
    assert running.url == f"http://127.0.0.1:{running.port}/api/v1" and running.port > 0
    client = openai.OpenAI(base_url=running.url, api_key=API_KEY, max_retries=0)

    r = client.chat.completions.create(model="openai/gpt-4o", messages=USER)
    assert r.id.startswith("gen-") and extra(r, "provider") == "OpenAI"
    chunks = list(client.chat.completions.create(model="openai/gpt-4o", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == r.choices[0].message.content
    assert chunks[-1].choices == [] and extra(chunks[-1].usage, "cost") == extra(r.usage, "cost")
    assert running.simulator.last_request.body == {"model": "openai/gpt-4o", "messages": USER, "stream": True}
    assert running.simulator.last_request.headers["Authorization"] == "Bearer [REDACTED]"


def test_real_server_faults(running: simulator.RunningSimulator) -> None:
    client = openai.OpenAI(base_url=running.url, api_key=API_KEY, max_retries=0, timeout=0.2)
    chunks: list[Any] = []
    with pytest.raises((openai.APIConnectionError, httpx_module().TransportError)):
        chunks.extend(client.chat.completions.create(model="sim/disconnect", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Simulated reply"
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="sim/timeout", messages=USER)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="sim/error-429", messages=USER)


def test_serve_refuses_remote_hosts() -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        simulator.serve(host="0.0.0.0")
    with pytest.raises(SystemExit) as caught:
        from gateway_otel.simulator._server import main

        main(["--host", "0.0.0.0"])
    assert caught.value.code == 2


def test_the_command_says_in_one_line_why_it_cannot_listen(capsys: pytest.CaptureFixture[str]) -> None:
    """A port already taken (8000 is also vLLM's) or out of range: exit 1 with one line, not a traceback."""
    from gateway_otel.cli import main as cli

    with simulator.serve() as running:
        port = running.url.split(":")[2].split("/")[0]
        assert cli(["simulator", "--port", port]) == 1
    assert capsys.readouterr().err.startswith(f"gateway-otel simulator: cannot listen on 127.0.0.1:{port}: [Errno ")
    assert cli(["simulator", "--port", "70000"]) == 1
    assert capsys.readouterr().err == (
        "gateway-otel simulator: cannot listen on 127.0.0.1:70000: bind(): port must be 0-65535.\n"
    )
    with pytest.raises(SystemExit) as caught:
        cli(["simulator", "--host", "0.0.0.0"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.endswith(
        "gateway-otel simulator: error: refusing non-loopback host '0.0.0.0'; pass --allow-remote to bind it anyway\n"
    )


def test_a_client_resetting_its_connection_prints_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's clients close idle keep-alive sockets; a reset seen by the server is not an error to print."""
    with simulator.serve() as running:
        server = running._server
        for gone in (ConnectionResetError(104, "Connection reset by peer"), BrokenPipeError(32, "Broken pipe")):
            try:
                raise gone
            except ConnectionError:
                server.handle_error(None, ("127.0.0.1", 1))
        assert capsys.readouterr().err == ""
        try:
            raise ValueError("a real bug in the simulator")
        except ValueError:
            server.handle_error(None, ("127.0.0.1", 1))
        assert "ValueError: a real bug in the simulator" in capsys.readouterr().err


def test_public_api() -> None:
    assert sorted(simulator.__all__) == sorted(
        [
            "SCENARIOS",
            "SCENARIO_HEADER",
            "GatewaySimulator",
            "RecordedRequest",
            "RunningSimulator",
            "SimulatedResponse",
            "http_client",
            "serve",
            "transport",
        ]
    )
    assert set(simulator.SCENARIOS) >= {"error-429", "stream-error", "disconnect", "timeout"}
    installed = openai.DefaultHttpxClient.__mro__
    assert httpx_module().Client in installed
