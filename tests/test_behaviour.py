"""Content capture and its limits, the attribute budget, metrics, set-up, uninstrument and the entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

import gateway_otel
from conftest import Captured, make_client
from gateway_otel import ConfigurationError, Settings

MODEL = "anthropic/claude-3.5-sonnet"
CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "input.value",
    "output.value",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
)


def _content_keys(attrs: dict[str, Any]) -> list[str]:
    return [
        k
        for k in attrs
        if k in CONTENT_KEYS
        or k.startswith(("llm.input_messages", "llm.output_messages", "llm.tools", "embedding.embeddings"))
    ]


@pytest.mark.parametrize(
    ("options", "env"),
    [
        ({"capture_content": False}, {}),
        ({}, {"GATEWAY_OTEL_CAPTURE_CONTENT": "false"}),
        ({}, {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}),
        ({}, {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}),
    ],
    ids=["option", "env", "standard-env", "standard-env-mode"],
)
def test_privacy_mode_keeps_tokens_cost_and_timing(
    make_telemetry: Any, sim: Any, monkeypatch: Any, options: dict[str, Any], env: dict[str, str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    telemetry = make_telemetry(**options)
    client = make_client(sim)
    client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "my secret plan"}],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
    )
    client.embeddings.create(model="openai/text-embedding-3-small", input="private text")
    client.responses.create(model=MODEL, input="my secret plan", instructions="hush")
    for span in telemetry.spans():
        attrs = dict(span.attributes or {})
        assert _content_keys(attrs) == []
        assert "secret" not in span.to_json() and "private" not in span.to_json()
        assert attrs["gen_ai.usage.input_tokens"] > 0
        assert "gen_ai.usage.cost" in attrs
        assert span.end_time > span.start_time


def test_truncation_marker(make_telemetry: Any, sim: Any) -> None:
    telemetry = make_telemetry(max_content_length=20)
    long_text = "x" * 100
    make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": long_text}])
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["llm.input_messages.0.message.content"] == "x" * 20 + "…[truncated 80 chars]"
    assert attrs["gen_ai.input.messages"].endswith("chars]")
    assert len(attrs["gen_ai.input.messages"]) <= 20 + len("…[truncated 1000 chars]")


def test_inline_images_are_never_recorded(telemetry: Captured, sim: Any) -> None:
    payload = "iVBORw0KGgo" * 3000
    content = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{payload}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    span = telemetry.span()
    assert payload[:40] not in span.to_json()
    attrs = dict(span.attributes or {})
    prefix = "llm.input_messages.0.message.contents"
    assert attrs[f"{prefix}.0.message_content.text"] == "What is in this image?"
    assert attrs[f"{prefix}.1.message_content.text"] == f"[image/png data omitted, {len(payload) * 3 // 4} bytes]"
    assert attrs[f"{prefix}.2.message_content.type"] == "image"
    assert attrs[f"{prefix}.2.message_content.image.image.url"] == "https://example.com/cat.png"


def test_long_conversation_never_pushes_out_the_essentials(telemetry: Captured, sim: Any) -> None:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"} for i in range(199)]
    make_client(sim).chat.completions.create(model=MODEL, messages=messages)
    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert span.dropped_attributes == 0
    assert len(attrs) <= 128
    for key in (
        "gen_ai.request.model",
        "gen_ai.operation.name",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cost",
        "gen_ai.response.model",
        "server.address",
    ):
        assert key in attrs, key
    omitted = attrs["gateway.input_messages.omitted"]
    assert omitted > 100
    # The latest messages are the ones kept, at their real index.
    assert attrs["llm.input_messages.198.message.content"] == "message 198"
    assert f"llm.input_messages.{omitted - 1}.message.role" not in attrs
    assert f"llm.input_messages.{omitted}.message.role" in attrs


def test_metrics(telemetry: Captured, sim: Any) -> None:
    client = make_client(sim)
    first = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "one"}])
    second = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "two three four"}])
    metrics = telemetry.metrics()
    [duration] = metrics["gen_ai.client.operation.duration"]
    assert duration.count == 2
    assert list(duration.explicit_bounds) == [
        0.01,
        0.02,
        0.04,
        0.08,
        0.16,
        0.32,
        0.64,
        1.28,
        2.56,
        5.12,
        10.24,
        20.48,
        40.96,
        81.92,
    ]
    assert duration.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openrouter",
        "gen_ai.request.model": MODEL,
        "server.address": "openrouter.ai",
        "server.port": 443,
        "gen_ai.response.model": first.model,
        "gateway.upstream.provider": first.provider,
    }
    tokens = {p.attributes["gen_ai.token.type"]: p for p in metrics["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == first.usage.prompt_tokens + second.usage.prompt_tokens
    assert tokens["output"].sum == first.usage.completion_tokens + second.usage.completion_tokens
    assert tokens["input"].explicit_bounds[:3] == (1, 4, 16)
    [cost] = metrics["gateway.client.cost"]
    assert cost.value == pytest.approx(first.usage.cost + second.usage.cost)


def test_metrics_can_be_turned_off(make_telemetry: Any, sim: Any) -> None:
    telemetry = make_telemetry(metrics=False)
    make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "one"}])
    assert telemetry.span().attributes["gen_ai.usage.input_tokens"] > 0
    assert telemetry.metrics() == {}


def test_instrument_is_idempotent_and_uninstrument_restores(make_telemetry: Any, sim: Any) -> None:
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    original_sync, original_async = SyncAPIClient.__dict__["request"], AsyncAPIClient.__dict__["request"]
    telemetry = make_telemetry()
    gateway_otel.instrument()  # a second call changes nothing
    client = make_client(sim)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert len(telemetry.spans()) == 1
    gateway_otel.uninstrument()
    assert SyncAPIClient.__dict__["request"] is original_sync
    assert AsyncAPIClient.__dict__["request"] is original_async
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert len(telemetry.spans()) == 1


def test_suppressed_calls_are_not_traced(telemetry: Captured, sim: Any) -> None:
    with suppress_instrumentation():
        make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert telemetry.spans() == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_OTEL_CAPTURE_CONTENT": "maybe"}, "GATEWAY_OTEL_CAPTURE_CONTENT='maybe' is not valid: expected true"),
        (
            {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "sometimes"},
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT='sometimes' is not valid",
        ),
        (
            {"GATEWAY_OTEL_MAX_CONTENT_LENGTH": "-3"},
            "GATEWAY_OTEL_MAX_CONTENT_LENGTH='-3' is not valid: expected a whole number greater than 0",
        ),
        ({"GATEWAY_OTEL_GATEWAY": "open router!"}, "GATEWAY_OTEL_GATEWAY='open router!' is not valid"),
        (
            {"GATEWAY_OTEL_GATEWAY": "openruter"},
            "GATEWAY_OTEL_GATEWAY='openruter' is not valid: expected one of anthropic, azure, cerebras, cloudflare, "
            "deepseek, fireworks, gemini, groq, helicone, litellm, mistral, ollama, openai, openai_compatible, "
            "openrouter, perplexity, portkey, together, vllm, xai (did you mean openrouter?)",
        ),
        (
            {"GATEWAY_OTEL_CAPTURE_CONTENT": "SPAN_ONLLY"},
            "GATEWAY_OTEL_CAPTURE_CONTENT='SPAN_ONLLY' is not valid: expected true or false (or one of NO_CONTENT, "
            "SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT)",
        ),
    ],
)
def test_bad_settings_fail_at_set_up_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.load(environ=env)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("raw", "expected"), [("NO_CONTENT", False), ("span_only", True), ("SPAN_AND_EVENT", True), ("off", False)]
)
def test_capture_content_takes_the_genai_modes_on_our_variable_too(raw: str, expected: bool) -> None:
    assert Settings.load(environ={"GATEWAY_OTEL_CAPTURE_CONTENT": raw}).capture_content is expected
    genai = Settings.load(environ={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": raw})
    assert genai.capture_content is expected


def test_the_gateway_option_refuses_an_unknown_name_like_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"gateway='my-proxy' is not valid: expected one of anthropic, "):
        Settings.load(environ={}, gateway="my-proxy")
    assert Settings.load(environ={}, gateway=" OpenRouter ").gateway == "openrouter"


def test_bad_options_fail_at_instrument(make_telemetry: Any) -> None:
    with pytest.raises(ConfigurationError, match="unknown option capture: expected any of"):
        make_telemetry(capture=True)
    with pytest.raises(ConfigurationError, match="max_content_length=0 is not valid"):
        make_telemetry(max_content_length=0)


def test_settings_precedence() -> None:
    env = {
        "GATEWAY_OTEL_CAPTURE_CONTENT": "no",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
        "GATEWAY_OTEL_MAX_CONTENT_LENGTH": "100",
        "GATEWAY_OTEL_GATEWAY": "LiteLLM",
    }
    assert Settings.load(environ=env) == Settings(capture_content=False, max_content_length=100, gateway="litellm")
    assert Settings.load(environ=env, capture_content=True).capture_content is True
    assert Settings.load(environ={}) == Settings(capture_content=True, max_content_length=32_768, gateway=None)
    assert Settings.load(environ={"GATEWAY_OTEL_METRICS": "off"}).metrics is False


def test_settings_in_the_dotenv_file_apply_to_instrument(
    make_telemetry: Any, sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.env` is read by `configure()`, the destinations and `doctor`; `GATEWAY_OTEL_CAPTURE_CONTENT=false` there
    must be privacy mode for `instrument()` too, not a prompt recorded while `doctor` says capture is off."""
    for name in (
        "GATEWAY_OTEL_CAPTURE_CONTENT",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "GATEWAY_OTEL_DOTENV",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("GATEWAY_OTEL_CAPTURE_CONTENT=false\nGATEWAY_OTEL_MAX_CONTENT_LENGTH=50\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_OTEL_MAX_CONTENT_LENGTH", "70")  # the environment wins over .env
    assert Settings.load() == Settings(capture_content=False, max_content_length=70)
    telemetry = make_telemetry()
    make_client(sim).chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "my private prompt"}]
    )
    attributes = telemetry.span().attributes
    assert "my private prompt" not in repr(dict(attributes))
    assert attributes["gen_ai.usage.input_tokens"] > 0


def test_gateway_option_overrides_detection(make_telemetry: Any, sim: Any) -> None:
    telemetry = make_telemetry(gateway="litellm")
    make_client(sim, base_url="http://10.1.2.3:9999/v1").chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gateway.name"] == "litellm"
    assert attrs["gen_ai.provider.name"] == "litellm"
    assert attrs["server.address"] == "10.1.2.3"
    assert attrs["server.port"] == 9999


def test_public_api_is_pinned() -> None:
    assert sorted(gateway_otel.__all__) == sorted(
        [
            "AsyncTelemetry",
            "ConfigurationError",
            "GatewayInstrumentor",
            "GatewayOtelError",
            "Providers",
            "Settings",
            "Telemetry",
            "__version__",
            "configure",
            "instrument",
            "trace_metadata",
            "uninstrument",
        ]
    )


def test_entry_point_under_opentelemetry_instrument(tmp_path: Path) -> None:
    """`opentelemetry-instrument python app.py` loads the instrumentor and exports, with no code change."""
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent("""
        import openai
        from gateway_otel.simulator import http_client
        client = openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="sk-or-test-key-000",
                               http_client=http_client())
        reply = client.chat.completions.create(model="openai/gpt-oss-20b:free",
                                               messages=[{"role": "user", "content": "hello"}])
        # One write: the console exporter's thread may print between the parts of a multi-argument print().
        print("REPLY " + reply.choices[0].message.content)
    """)
    )
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "GATEWAY_OTEL_DESTINATIONS": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(
        [str(bindir / "opentelemetry-instrument"), sys.executable, str(app)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "REPLY " in done.stdout
    assert '"name": "chat openai/gpt-oss-20b:free"' in done.stdout
    assert '"gateway.upstream.provider"' in done.stdout
    assert "sk-or-test-key-000" not in done.stdout + done.stderr


def test_instrument_without_providers_configures_them(tmp_path: Path) -> None:
    """With no providers set, `instrument()` sets SDK providers exporting to GATEWAY_OTEL_DESTINATIONS."""
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent("""
        import gateway_otel, openai
        from opentelemetry import trace
        from gateway_otel.simulator import http_client
        gateway_otel.instrument()
        print("PROVIDER", type(trace.get_tracer_provider()).__name__)
        client = openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="k", http_client=http_client())
        client.embeddings.create(model="openai/text-embedding-3-small", input="hi")
    """)
    )
    env = {**os.environ, "GATEWAY_OTEL_DESTINATIONS": "console"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "PROVIDER TracerProvider" in done.stdout
    assert '"name": "embeddings openai/text-embedding-3-small"' in done.stdout
    assert '"name": "gen_ai.client.operation.duration"' in done.stdout


def test_bad_destination_fails_with_a_clear_message() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"GATEWAY_OTEL_DESTINATIONS='opentelemetry' is not valid: "
        r"expected a comma-separated list of otlp, openobserve, arize, phoenix, console",
    ):
        gateway_otel.configure(environ={"GATEWAY_OTEL_DESTINATIONS": "opentelemetry"}, set_global=False)
    with pytest.raises(ConfigurationError, match="OTEL_EXPORTER_OTLP_PROTOCOL='http/json' is not valid"):
        gateway_otel.configure("otlp", environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, set_global=False)
