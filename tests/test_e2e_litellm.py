"""End to end, with real software nobody here wrote: an application instrumented by `gateway_otel.instrument()`
(configured only by environment variables, exporting through the `phoenix` preset) calls a real LiteLLM proxy
through the real `openai` client; the spans are read back from a real Phoenix's REST API.

The servers start once per session (`litellm_proxy`, `phoenix`); the application runs once per module as a
subprocess making every call, so its exporter set-up and its flush at exit are the real ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from e2e_support import E2E, new_project, run_app
from litellm_proxy import EMBEDDING, MOCK_REPLY, LiteLLMProxy
from phoenix_server import PhoenixServer

pytestmark = E2E

SCENARIOS = ["chat", "stream", "stream_usage", "async_chat", "async_stream", "embeddings", "rate_limit", "timeout"]


def _user(span: dict[str, Any]) -> str | None:
    return span["attributes"].get("user.id")


@pytest.fixture(scope="module")
def app_spans(phoenix: PhoenixServer, litellm_proxy: LiteLLMProxy) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(project, what the app saw by scenario, its span in Phoenix by scenario), after one run of every scenario."""
    project = new_project("e2e-litellm")
    env = {
        "OPENAI_BASE_URL": litellm_proxy.base_url,
        "OPENAI_API_KEY": litellm_proxy.key,
        "GATEWAY_OTEL_DESTINATIONS": "phoenix",
        "PHOENIX_COLLECTOR_ENDPOINT": phoenix.url,
        "PHOENIX_PROJECT_NAME": project,
    }
    seen = run_app(env, SCENARIOS)
    spans = phoenix.wait_for_spans(project, len(SCENARIOS))
    by_user: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_user.setdefault(_user(span) or "", []).append(span)
    # One span per call: every span belongs to exactly one call, every call has exactly one span.
    assert sorted(by_user) == sorted(f"e2e-{s}" for s in SCENARIOS), [(s["name"], _user(s)) for s in spans]
    assert all(len(found) == 1 for found in by_user.values()), {u: len(f) for u, f in by_user.items()}
    return project, seen, {user.removeprefix("e2e-"): found[0] for user, found in by_user.items()}


def test_the_application_saw_what_litellm_sent(app_spans: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    _, seen, _ = app_spans
    assert seen["chat"] == {"text": MOCK_REPLY, "model": "mock-gpt", "usage": seen["chat"]["usage"]}
    assert seen["chat"]["usage"] > 0
    assert seen["stream"]["text"] == MOCK_REPLY and seen["stream"]["usage"] is None
    assert seen["stream_usage"]["text"] == MOCK_REPLY and seen["stream_usage"]["usage"] > 0
    assert seen["stream_usage"]["chunks"] == seen["stream"]["chunks"] + 1  # the usage chunk
    assert seen["async_chat"]["text"] == MOCK_REPLY
    assert seen["async_stream"]["text"] == MOCK_REPLY
    assert seen["embeddings"] == {"dimensions": len(EMBEDDING), "vectors": 1}
    assert seen["rate_limit"] == {"error": "RateLimitError", "status": 429}
    assert seen["timeout"] == {"error": "APITimeoutError"}


def test_every_span_is_an_ended_llm_span_of_litellm(app_spans: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    project, _, spans = app_spans
    for scenario, span in spans.items():
        attrs = span["attributes"]
        assert span["end_time"] and span["end_time"] >= span["start_time"], scenario
        assert attrs["gen_ai.operation.name"] == ("embeddings" if scenario == "embeddings" else "chat"), scenario
        assert attrs["server.address"] == "127.0.0.1", scenario
        if scenario != "timeout":  # a call that never got an answer never saw LiteLLM's headers
            assert attrs["gateway.name"] == "litellm", scenario
            assert attrs["gen_ai.provider.name"] == "litellm", scenario
            assert attrs["gateway.call_id"], scenario
    assert {s["name"] for s in spans.values()} == {
        "chat mock-gpt",
        "embeddings mock-embed",
        "chat mock-429",
        "chat mock-timeout",
    }
    assert project.startswith("e2e-litellm-")


def test_chat_span_models_tokens_cost(app_spans: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    _, seen, spans = app_spans
    for scenario in ("chat", "async_chat"):
        span = spans[scenario]
        attrs = span["attributes"]
        assert span["name"] == "chat mock-gpt"
        assert span["status_code"] == "OK"
        assert attrs["gen_ai.request.model"] == "mock-gpt"
        assert attrs["gen_ai.response.model"] == "openai/gpt-4o-mini"
        assert attrs["gateway.upstream.provider"] == "openai"
        assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
        total = attrs["gen_ai.usage.input_tokens"] + attrs["gen_ai.usage.output_tokens"]
        assert attrs["llm.token_count.total"] == total == seen[scenario]["usage"]
        assert attrs["gen_ai.usage.cost"] > 0  # from x-litellm-response-cost
        assert attrs["llm.cost.total"] == attrs["gen_ai.usage.cost"]
        assert attrs["output.value"] == MOCK_REPLY
        assert attrs["gen_ai.response.finish_reasons"] == ["stop"]


def test_streaming_spans_end_with_and_without_usage(app_spans: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    _, seen, spans = app_spans
    with_usage = spans["stream_usage"]["attributes"]
    assert spans["stream_usage"]["status_code"] == "OK"
    assert with_usage["gateway.stream.outcome"] == "completed"
    assert with_usage["gateway.stream.chunks"] == seen["stream_usage"]["chunks"]
    assert with_usage["llm.token_count.total"] == seen["stream_usage"]["usage"]
    assert with_usage["gen_ai.usage.cost"] > 0  # the usage chunk's `usage.cost`
    assert with_usage["output.value"] == MOCK_REPLY  # the usage chunk's non-empty `choices` added nothing
    assert with_usage["gen_ai.response.model"] == "openai/gpt-4o-mini"

    for scenario in ("stream", "async_stream"):
        span = spans[scenario]
        attrs = span["attributes"]
        assert span["status_code"] == "OK", scenario
        assert attrs["gateway.stream.outcome"] == "completed", scenario
        assert attrs["gateway.usage.reported"] is False, scenario
        assert "gen_ai.usage.input_tokens" not in attrs, scenario
        assert attrs["output.value"] == MOCK_REPLY, scenario
        assert attrs["gen_ai.response.time_to_first_chunk"] > 0, scenario
    assert spans["stream"]["attributes"]["gateway.stream.chunks"] == seen["stream"]["chunks"]


def test_embeddings_span(app_spans: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    _, _, spans = app_spans
    span = spans["embeddings"]
    attrs = span["attributes"]
    assert span["name"] == "embeddings mock-embed"
    assert span["status_code"] == "OK"
    assert span["span_kind"] == "EMBEDDING"  # Phoenix keeps `openinference.span.kind` as the span's kind
    assert attrs["gen_ai.response.model"] == "openai/text-embedding-3-small"
    assert attrs["gen_ai.embeddings.dimension.count"] == len(EMBEDDING)
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.usage.cost"] > 0


def test_error_spans(app_spans: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    _, _, spans = app_spans
    limited = spans["rate_limit"]
    assert limited["name"] == "chat mock-429"
    assert limited["status_code"] == "ERROR"
    assert limited["attributes"]["error.type"] == "429"
    assert "RateLimitError" in limited["attributes"]["gateway.error.message"]
    assert "gen_ai.usage.cost" not in limited["attributes"]
    assert [e["name"] for e in limited["events"]] == ["exception"]

    timed_out = spans["timeout"]
    assert timed_out["name"] == "chat mock-timeout"
    assert timed_out["status_code"] == "ERROR"
    assert timed_out["attributes"]["error.type"] == "openai.APITimeoutError"


def test_litellm_spans_join_the_application_trace(phoenix: PhoenixServer, litellm_proxy: LiteLLMProxy) -> None:
    """With `GATEWAY_OTEL_TRACEPARENT=true` LiteLLM's own `litellm_request` span (its `otel` callback, exporting to
    the same Phoenix) continues the application's trace, under the application's LLM span."""
    project = new_project("e2e-traceparent")
    env = {
        "OPENAI_BASE_URL": litellm_proxy.base_url,
        "OPENAI_API_KEY": litellm_proxy.key,
        "GATEWAY_OTEL_DESTINATIONS": "phoenix",
        "PHOENIX_COLLECTOR_ENDPOINT": phoenix.url,
        "PHOENIX_PROJECT_NAME": project,
        "GATEWAY_OTEL_TRACEPARENT": "true",
    }
    run_app(env, ["chat"])
    # LiteLLM exports in batches (every 5 s by default). Phoenix files every span of a trace under the project of
    # the trace, so the proxy's spans arrive in the application's project.
    [proxy_span] = phoenix.wait_for_spans(project, 1, timeout=30, name="litellm_request")
    trace = {s["context"]["span_id"]: s for s in phoenix.spans(project, trace_id=proxy_span["context"]["trace_id"])}
    [llm] = [s for s in trace.values() if s["name"] == "chat mock-gpt"]
    assert llm["parent_id"] is None  # the application's LLM span is the root of the trace
    assert llm["attributes"]["gateway.name"] == "litellm"
    chain, span = [], proxy_span
    while span["parent_id"] is not None:  # litellm_request → the proxy's request span → the application's LLM span
        chain.append(span["name"])
        span = trace[span["parent_id"]]
    assert span is llm, chain
    assert chain[0] == "litellm_request" and len(chain) <= 3, chain
