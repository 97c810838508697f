"""The pure pieces on their own: gateway detection, endpoint matching, content normalisation, the budget."""

from __future__ import annotations

import pytest

from gateway_otel.gateways import detect_gateway
from gateway_otel.instrumentation._content import (
    cap,
    chat_messages,
    content_parts,
    encodable,
    openinference_messages,
)
from gateway_otel.instrumentation._endpoints import find_endpoint
from gateway_otel.instrumentation._response import (
    ResponseRecord,
    Usage,
    int64,
    map_chat,
    map_responses,
    map_usage,
)


@pytest.mark.parametrize(
    ("host", "port", "gateway", "provider"),
    [
        ("openrouter.ai", 443, "openrouter", "openrouter"),
        ("api.openai.com", 443, "openai", "openai"),
        ("my-resource.openai.azure.com", 443, "azure", "azure.ai.openai"),
        ("api.groq.com", 443, "groq", "groq"),
        ("api.together.xyz", 443, "together", "together"),
        ("api.fireworks.ai", 443, "fireworks", "fireworks"),
        ("api.deepseek.com", 443, "deepseek", "deepseek"),
        ("api.mistral.ai", 443, "mistral", "mistral_ai"),
        ("localhost", 11434, "ollama", "ollama"),
        ("127.0.0.1", 4000, "litellm", "litellm"),
        ("litellm.internal.example", 443, "litellm", "litellm"),
        ("localhost", 8000, "vllm", "vllm"),
        ("inference.example.com", 8000, "openai_compatible", "openai_compatible"),
        ("openrouter.ai.example.com", 443, "openai_compatible", "openai_compatible"),
    ],
)
def test_detect_gateway(host: str, port: int, gateway: str, provider: str) -> None:
    detected = detect_gateway(host, port)
    assert (detected.name, detected.provider_name) == (gateway, provider)


def test_suffix_match_is_on_label_boundaries() -> None:
    assert detect_gateway("notopenrouter.ai", 443).name == "openai_compatible"
    assert detect_gateway("eu.openrouter.ai", 443).name == "openrouter"
    assert detect_gateway("fakeapi.openai.com", 443).name == "openai_compatible"


@pytest.mark.parametrize(
    ("method", "url", "operation"),
    [
        ("post", "/chat/completions", "chat"),
        ("post", "/completions", "text_completion"),
        ("post", "/embeddings", "embeddings"),
        ("post", "/responses", "chat"),
        ("post", "/deployments/gpt/chat/completions", "chat"),
        ("post", "/openai/deployments/x/completions", "text_completion"),
        ("get", "/chat/completions", None),
        ("post", "/responses/resp_1/cancel", None),
        ("post", "/responses/input_tokens", None),
        ("get", "/models", None),
        ("post", "/files", None),
    ],
)
def test_find_endpoint(method: str, url: str, operation: str | None) -> None:
    endpoint = find_endpoint(method, url)
    assert (endpoint.operation if endpoint else None) == operation


def test_cap() -> None:
    assert cap("abc", 3) == "abc"
    assert cap("abcdef", 3) == "abc…[truncated 3 chars]"
    assert cap("a\ud800bcd", 3) == "a\ufffdb…[truncated 2 chars]"


def test_encodable_replaces_only_lone_surrogates() -> None:
    text = "plain ascii"
    assert encodable(text) is text
    valid = "héllo 😀 日本"
    assert encodable(valid) is valid
    assert encodable("x\ud83dy\udc00z") == "x\ufffdy\ufffdz"
    assert encodable("😀\udfff").encode("utf-8") == "😀\ufffd".encode()


def test_content_parts_replace_inline_media() -> None:
    parts = content_parts(
        [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
            {"type": "input_audio", "input_audio": {"data": "AAAAAAAA", "format": "wav"}},
        ],
        100,
    )
    assert parts == [
        {"type": "text", "content": "look"},
        {
            "type": "blob",
            "modality": "image",
            "mime_type": "image/jpeg",
            "content": "[image/jpeg data omitted, 3 bytes]",
        },
        {"type": "blob", "modality": "audio", "mime_type": "audio/wav", "content": "[audio omitted, 6 bytes]"},
    ]


def test_odd_messages_do_not_break_normalisation() -> None:
    class Weird:
        role = "user"
        content = 42

    assert chat_messages([Weird(), {"content": None}, "plain"], 10) == [
        {"role": "user", "parts": [{"type": "text", "content": "42"}]},
        {"role": "user", "parts": []},
        {"role": "user", "parts": []},
    ]
    assert chat_messages(None, 10) == []


def test_flattening_keeps_the_latest_messages_within_budget() -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": str(i)}]} for i in range(10)]
    attrs, omitted = openinference_messages("llm.input_messages", messages, 5)
    assert omitted == 8
    assert attrs == {
        "llm.input_messages.8.message.role": "user",
        "llm.input_messages.8.message.content": "8",
        "llm.input_messages.9.message.role": "user",
        "llm.input_messages.9.message.content": "9",
    }


def test_usage_mapping_never_invents_values() -> None:
    usage = map_usage({"prompt_tokens": 3, "completion_tokens": None, "cost": "free", "is_byok": "no"})
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.cost, usage.is_byok) == (3, None, None, None)
    assert map_usage(None) is None


CHAT_USAGE = {  # OpenRouter's, every field a different number
    "prompt_tokens": 100,
    "completion_tokens": 20,
    "total_tokens": 120,
    "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 10, "audio_tokens": 5},
    "completion_tokens_details": {"reasoning_tokens": 7, "audio_tokens": 3},
    "cost": 0.0123,
    "is_byok": True,
    "cost_details": {
        "upstream_inference_cost": 0.02,
        "upstream_inference_prompt_cost": 0.015,
        "upstream_inference_completions_cost": 0.005,
    },
}
RESPONSES_USAGE = {
    "input_tokens": 100,
    "output_tokens": 20,
    "total_tokens": 120,
    "input_tokens_details": {"cached_tokens": 30, "audio_tokens": 5},
    "output_tokens_details": {"reasoning_tokens": 7, "audio_tokens": 3},
    "cost": 0.0123,
}


def test_usage_mapping_reads_every_count_and_cost_of_both_shapes() -> None:
    from openai.types import CompletionUsage

    chat = Usage(100, 20, 120, 30, 10, 7, 5, 3, 0.0123, True, 0.02, 0.015, 0.005)
    assert map_usage(CHAT_USAGE) == map_usage(CompletionUsage.model_validate(CHAT_USAGE)) == chat
    assert map_usage(RESPONSES_USAGE) == Usage(100, 20, 120, 30, None, 7, 5, 3, 0.0123)


def test_a_record_is_cleaned_to_what_otlp_and_sqlite_can_carry() -> None:
    record = ResponseRecord(id="gen-\ud800", error_code=2**63, error_message=42, usage=Usage(input_tokens=-(2**64)))
    record.clean()
    assert (record.id, record.error_code, record.error_message) == ("gen-\ufffd", None, "42")
    assert record.usage == Usage()
    kept = ResponseRecord(error_code=429, error_message="rate limited").clean()
    assert (kept.error_code, kept.error_message) == (429, "rate limited")
    assert ResponseRecord(error_code="bad-\ud800").clean().error_code == "bad-\ufffd"
    assert ResponseRecord(error_code=True).clean().error_code is True


def test_int64_keeps_its_bounds_and_drops_what_is_beyond() -> None:
    assert [int64(v) for v in (-(2**63), 2**63 - 1, "x", 1.5)] == [-(2**63), 2**63 - 1, "x", 1.5]
    assert int64(-(2**63) - 1) is None and int64(2**63) is None


def test_chat_mapping_reads_dicts_and_skips_content_when_not_captured() -> None:
    response = {
        "id": "gen-1",
        "model": "m",
        "provider": "OpenAI",
        "choices": [{"finish_reason": "length", "message": {"role": "assistant", "content": "abc"}}],
    }
    record = map_chat(response, capture=False, limit=10)
    assert (record.id, record.model, record.upstream_provider, record.finish_reasons, record.output) == (
        "gen-1",
        "m",
        "OpenAI",
        ["length"],
        None,
    )
    assert map_chat(response, capture=True, limit=2).output == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "ab…[truncated 1 chars]"}],
            "finish_reason": "length",
        }
    ]


def test_responses_finish_reasons() -> None:
    assert map_responses({"status": "completed", "output": []}, False, 10).finish_reasons == ["stop"]
    assert map_responses(
        {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}, False, 10
    ).finish_reasons == ["length"]
    assert map_responses({"status": "completed", "output": [{"type": "function_call"}]}, False, 10).finish_reasons == [
        "tool_calls"
    ]
