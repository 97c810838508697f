"""Reasoning models: their reasoning is recorded as a `reasoning` part before the answer, whichever spelling the
gateway uses (OpenRouter's `reasoning` / `reasoning_details`, DeepSeek's, vLLM's and LiteLLM's `reasoning_content`),
streamed or not; encrypted reasoning is a placeholder, never the blob; OpenInference's answer stays the answer alone;
the caller's results are what the gateway sent."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from conftest import API_KEY, OPENROUTER_URL, Captured, make_client
from gateway_otel.instrumentation._content import ENCRYPTED_REASONING
from gateway_otel.simulator._transport import httpx_module

THOUGHT = 'Okay, the user sent "Hi". I should greet them back briefly.'
ANSWER = "Hello! How can I help you today?"
BLOB = "gAAAAABoEncryptedReasoningBlob0123456789"


def _groq_body(**message_extra: Any) -> dict[str, Any]:
    """OpenRouter's answer from qwen/qwen3-32b served by Groq (its documented shape, reasoning fields included)."""
    return {
        "id": "gen-1764489600-AbCdEfGhIjKlMnOp",
        "provider": "Groq",
        "model": "qwen/qwen3-32b",
        "object": "chat.completion",
        "created": 1764489600,
        "choices": [
            {
                "logprobs": None,
                "finish_reason": "stop",
                "native_finish_reason": "stop",
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": None, **message_extra},
            }
        ],
        "system_fingerprint": "fp_5ac2c9fbe7",
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 48,
            "total_tokens": 57,
            "cost": 0.0000315,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "cost_details": {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": 0.0000027,
                "upstream_inference_completions_cost": 0.0000288,
            },
            "completion_tokens_details": {"reasoning_tokens": 40, "image_tokens": 0},
        },
    }


OPENROUTER_SPELLING = {
    "reasoning": THOUGHT,
    "reasoning_details": [{"type": "reasoning.text", "text": THOUGHT, "format": "unknown", "index": 0}],
}


def _client(payload: bytes, *, content_type: str = "application/json", asynchronous: bool = False) -> Any:
    def handler(request: Any) -> Any:
        return httpx_module().Response(200, content=payload, headers={"content-type": content_type})

    httpx = httpx_module()
    transport = httpx.MockTransport(handler)
    if asynchronous:
        http = openai.DefaultAsyncHttpxClient(transport=transport)
        return openai.AsyncOpenAI(base_url=OPENROUTER_URL, api_key=API_KEY, max_retries=0, http_client=http)
    http = openai.DefaultHttpxClient(transport=transport)
    return openai.OpenAI(base_url=OPENROUTER_URL, api_key=API_KEY, max_retries=0, http_client=http)


def _ask(client: Any, **kwargs: Any) -> Any:
    messages = [{"role": "user", "content": "Hi"}]
    return client.chat.completions.create(model="qwen/qwen3-32b", messages=messages, **kwargs)


def _output_parts(attrs: Any) -> list[dict[str, Any]]:
    [message] = json.loads(attrs["gen_ai.output.messages"])
    return message["parts"]


@pytest.mark.parametrize(
    "message_extra",
    [
        OPENROUTER_SPELLING,
        {"reasoning_content": THOUGHT},
        {"reasoning_details": OPENROUTER_SPELLING["reasoning_details"]},
    ],
    ids=["openrouter", "reasoning_content", "details-only"],
)
def test_reasoning_becomes_a_part_before_the_answer(telemetry: Captured, message_extra: dict[str, Any]) -> None:
    body = _groq_body(**message_extra)
    result = _ask(_client(json.dumps(body).encode()))
    assert result.choices[0].message.content == ANSWER
    assert result.choices[0].message.model_dump()["role"] == "assistant"
    for key, value in message_extra.items():  # the caller's result is what the gateway sent
        assert result.choices[0].message.model_extra[key] == value
    attrs = telemetry.span().attributes
    assert _output_parts(attrs) == [{"type": "reasoning", "content": THOUGHT}, {"type": "text", "content": ANSWER}]
    assert attrs["output.value"] == ANSWER
    assert attrs["llm.output_messages.0.message.content"] == ANSWER
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 40
    assert attrs["gateway.upstream.provider"] == "Groq"


def test_summaries_are_reasoning_and_encrypted_reasoning_is_a_placeholder(telemetry: Captured) -> None:
    details = [
        {"type": "reasoning.summary", "summary": "Greets the user.", "format": "openai-responses-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": BLOB, "format": "openai-responses-v1", "index": 1},
    ]
    _ask(_client(json.dumps(_groq_body(reasoning_details=details)).encode()))
    assert _output_parts(telemetry.spans()[-1].attributes)[0] == {"type": "reasoning", "content": "Greets the user."}
    _ask(_client(json.dumps(_groq_body(reasoning_details=details[1:])).encode()))
    attrs = telemetry.spans()[-1].attributes
    assert _output_parts(attrs)[0] == {"type": "reasoning", "content": ENCRYPTED_REASONING}
    assert not any(BLOB in str(value) for value in attrs.values())


def _sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def _stream_chunks(reasoning_key: str, with_details: bool) -> list[dict[str, Any]]:
    base = {"id": "gen-1764489601-Stream", "provider": "Groq", "model": "qwen/qwen3-32b"}
    base["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": {"role": "assistant", **delta}, "finish_reason": finish}
        return {**base, "created": 1764489601, "choices": [choice], **extra}

    out = []
    for piece in ("Okay, the user sent ", '"Hi". ', "I should greet them back briefly."):
        delta: dict[str, Any] = {"content": "", reasoning_key: piece}
        if with_details:
            delta["reasoning_details"] = [{"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}]
        out.append(chunk(delta))
    out += [chunk({"content": "Hello! "}), chunk({"content": "How can I help you today?"}, "stop")]
    usage = {"prompt_tokens": 9, "completion_tokens": 48, "total_tokens": 57, "cost": 0.0000315}
    out.append({**base, "created": 1764489601, "choices": [], "usage": usage})
    return out


@pytest.mark.parametrize(
    ("reasoning_key", "with_details", "asynchronous"),
    [("reasoning", True, False), ("reasoning_content", False, False), ("reasoning", True, True)],
    ids=["openrouter-sync", "reasoning_content-sync", "openrouter-async"],
)
def test_streamed_reasoning_is_joined_from_its_deltas(
    telemetry: Captured, reasoning_key: str, with_details: bool, asynchronous: bool
) -> None:
    payload = _sse(_stream_chunks(reasoning_key, with_details))
    client = _client(payload, content_type="text/event-stream", asynchronous=asynchronous)

    async def read_async() -> list[Any]:
        return [c async for c in await _ask(client, stream=True)]

    chunks = asyncio.run(read_async()) if asynchronous else list(_ask(client, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].delta.model_extra[reasoning_key] for c in chunks[:3]] == [
        "Okay, the user sent ",
        '"Hi". ',
        "I should greet them back briefly.",
    ]
    attrs = telemetry.span().attributes
    assert _output_parts(attrs) == [{"type": "reasoning", "content": THOUGHT}, {"type": "text", "content": ANSWER}]
    assert attrs["output.value"] == ANSWER
    assert attrs["gateway.stream.outcome"] == "completed"


def test_no_reasoning_is_recorded_without_content_capture(make_telemetry: Any) -> None:
    captured = make_telemetry(capture_content=False)
    _ask(_client(json.dumps(_groq_body(**OPENROUTER_SPELLING)).encode()))
    list(_ask(_client(_sse(_stream_chunks("reasoning", True)), content_type="text/event-stream"), stream=True))
    for span in captured.spans():
        assert not any(THOUGHT in str(v) or "Okay, the user" in str(v) for v in span.attributes.values())
        assert span.attributes["gen_ai.usage.output_tokens"] == 48


def test_an_azure_body_with_cache_write_and_an_unknown_key_is_recorded_and_passed_through(telemetry: Captured) -> None:
    body = {
        "id": "gen-1764489700-Azure",
        "provider": "Azure",
        "model": "openai/gpt-4o-mini",
        "object": "chat.completion",
        "created": 1764489700,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Sure."}}],
        "usage": {
            "prompt_tokens": 2048,
            "completion_tokens": 3,
            "total_tokens": 2051,
            "cost": 0.00031,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 1920},
        },
        "service_tier_decision": {"tier": "standard", "queue_ms": 4},
    }
    result = _ask(_client(json.dumps(body).encode()))
    assert result.model_extra["service_tier_decision"] == {"tier": "standard", "queue_ms": 4}
    assert result.choices[0].message.content == "Sure."
    attrs = telemetry.span().attributes
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 1920
    assert attrs["llm.token_count.prompt_details.cache_write"] == 1920
    assert _output_parts(attrs) == [{"type": "text", "content": "Sure."}]


# --- the simulator serves reasoning models in both spellings -------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "key"), [("openai/gpt-oss-20b", "reasoning"), ("deepseek/deepseek-r1", "reasoning_content")]
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_the_simulators_reasoning_models_reach_the_span(
    telemetry: Captured, sim: Any, model: str, key: str, stream: bool
) -> None:
    client = make_client(sim)
    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    if stream:
        chunks = list(client.chat.completions.create(model=model, messages=messages, stream=True))
        thought = "".join(c.choices[0].delta.model_extra.get(key) or "" for c in chunks if c.choices)
        answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        details = [c.choices[0].delta.model_extra.get("reasoning_details") for c in chunks if c.choices]
    else:
        message = client.chat.completions.create(model=model, messages=messages).choices[0].message
        thought, answer = message.model_extra[key], message.content
        details = [message.model_extra.get("reasoning_details")]
    assert thought and answer
    assert any(details) == (key == "reasoning")  # OpenRouter's spelling carries the details too
    parts = _output_parts(telemetry.span().attributes)
    assert parts == [{"type": "reasoning", "content": thought}, {"type": "text", "content": answer}]
