"""OpenObserve's LLM views, filled from what the `openobserve` destination really sends.

An app configured only by OpenObserve's guide variables exports to a local OTLP receiver; the decoded bytes go
through OpenObserve's own ingest and sidebar rules (`openobserve_rules.py`, restated from its source), and every
field of its view must be filled. Another destination in the same process gets none of the additions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import gateway_otel
import openobserve_rules as oo_rules
from conftest import make_client
from gateway_otel.destinations._shaping import openobserve_attributes
from otlp_receiver import OtlpReceiver, decode_spans

TOKEN = "Basic cm9vdEBleGFtcGxlLmNvbTpzZWNyZXQ="
LONG_PROMPT = "Tell me about the weather in Lisbon. " * 12


def _spans(bodies: list[bytes]) -> list[dict[str, Any]]:
    return [span for body in bodies for span in decode_spans(body)]


def _export(sim: Any, extra_env: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two calls (a chat with cache read and write, a stream) to OpenObserve and to a plain OTLP receiver at once."""
    with OtlpReceiver() as oo, OtlpReceiver() as other:
        env = {
            "GATEWAY_OTEL_DESTINATIONS": "openobserve,otlp",
            "OPENOBSERVE_URL": oo.url,
            "OPENOBSERVE_ORG": "default",
            "OPENOBSERVE_AUTH_TOKEN": TOKEN,
            "OTEL_EXPORTER_OTLP_ENDPOINT": other.url,
            **(extra_env or {}),
        }
        providers = gateway_otel.configure(environ=env, set_global=False)
        gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
        try:
            client = make_client(sim)
            client.chat.completions.create(
                model="anthropic/claude-3.5-haiku",
                messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": LONG_PROMPT}],
                temperature=0.3,
                max_tokens=100,
                user="user-42",
                extra_body={"session_id": "session-7"},
            )
            for _ in client.chat.completions.create(
                model="openai/gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "Stream a haiku."}]
            ):
                pass
        finally:
            gateway_otel.uninstrument()
            providers.shutdown()
    to_oo = _spans([b for path, _, b in oo.requests if path == "/api/default/v1/traces"])
    to_other = _spans([b for path, _, b in other.requests if path == "/v1/traces"])
    return to_oo, to_other


def test_openobserve_fills_every_field_of_its_llm_view(sim: Any) -> None:
    to_oo, to_other = _export(sim)
    chat, stream = sorted(to_oo, key=lambda s: s["start_ns"])
    row = oo_rules.ingest(chat["attributes"], chat["start_ns"])
    assert row["legacy_content_keys"] == []
    assert row["gen_ai_provider_name"] == "openrouter"
    assert row["gen_ai_response_model"] == chat["attributes"]["gen_ai.response.model"]
    assert row["gen_ai_usage_input_tokens"] > 0 and row["gen_ai_usage_output_tokens"] > 0
    assert row["gen_ai_usage_total_tokens"] == row["gen_ai_usage_input_tokens"] + row["gen_ai_usage_output_tokens"]
    assert row["gen_ai_usage_cache_read_input_tokens"] > 0
    assert row["gen_ai_usage_cache_creation_input_tokens"] > 0
    assert row["gen_ai_usage_cost"] > 0
    assert row["gen_ai_usage_cost_input"] > 0 and row["gen_ai_usage_cost_output"] > 0
    assert row["gen_ai_usage_cost_input"] + row["gen_ai_usage_cost_output"] == pytest.approx(row["gen_ai_usage_cost"])
    assert (row["user_id"], row["session_id"]) == ("user-42", "session-7")
    assert json.loads(row["llm_request_parameters"]) == {"temperature": 0.3, "max_tokens": 100}
    # the sidebar: the prompt and the answer as text, not empty bodies or raw JSON
    assert oo_rules.sidebar_messages(row["gen_ai_input_messages"]) == [("system", "Be brief."), ("user", LONG_PROMPT)]
    [(role, answer)] = oo_rules.sidebar_messages(row["gen_ai_output_messages"])
    assert role == "assistant" and answer and not answer.startswith(("{", "["))
    assert oo_rules.first_user_message(row["gen_ai_input_messages"]) == LONG_PROMPT[:400]
    assert oo_rules.sidebar_ttft_us(row) is None  # not a stream
    # a stream: its time to first token in the form the sidebar computes it from
    streamed = oo_rules.ingest(stream["attributes"], stream["start_ns"])
    ttft_s = stream["attributes"]["gen_ai.response.time_to_first_chunk"]
    assert oo_rules.sidebar_ttft_us(streamed) == pytest.approx(ttft_s * 1e6, abs=1)
    assert oo_rules.sidebar_messages(streamed["gen_ai_output_messages"])[0][1]
    # the other destination's copy carries none of OpenObserve's additions
    for span in to_other:
        added = set(span["attributes"]) & {
            "gen_ai.usage.cost.input",
            "gen_ai.usage.cost.output",
            "gen_ai.usage.cache_creation.input_tokens",
            "llm.request.parameters",
            "gen_ai_completion_start_time",
        }
        assert added == set()
        messages = json.loads(span["attributes"]["gen_ai.output.messages"])
        assert all("content" not in m for m in messages)


def test_privacy_mode_on_openobserve_keeps_the_numbers_and_no_content(sim: Any) -> None:
    to_oo, _ = _export(sim, {"GATEWAY_OTEL_OPENOBSERVE_PRIVACY_MODE": "true"})
    for span in to_oo:
        row = oo_rules.ingest(span["attributes"], span["start_ns"])
        assert row["gen_ai_input_messages"] is None and row["gen_ai_output_messages"] is None
        assert row["gen_ai_usage_cost"] > 0 and row["gen_ai_usage_input_tokens"] > 0


def test_the_shaping_leaves_what_it_cannot_read_as_it_was() -> None:
    cut = '[{"role":"user","parts":[{"type":"text","content":"abc'  # cut at the content limit: not JSON
    shaped = openobserve_attributes({"gen_ai.input.messages": cut, "gen_ai.response.time_to_first_chunk": -1}, 10)
    assert shaped == {"gen_ai.input.messages": cut, "gen_ai.response.time_to_first_chunk": -1}
    call = {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Oslo"}}
    calls = json.dumps([{"role": "assistant", "parts": [call]}])
    [message] = json.loads(openobserve_attributes({"gen_ai.output.messages": calls}, 0)["gen_ai.output.messages"])
    assert message["content"] == 'calls weather({"city":"Oslo"})'
