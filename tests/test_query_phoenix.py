"""The phoenix query backend against a real Phoenix server: instrumented calls exported with the phoenix preset,
read back through Phoenix's REST API and compared with the spans that were exported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import gateway_otel
from conftest import make_client
from gateway_otel.query import QueryError, _phoenix
from gateway_otel.query._model import LogQuery, SpanQuery
from gateway_otel.query._phoenix import PhoenixBackend
from gateway_otel.query._remote import from_unix_ns
from phoenix_server import PhoenixServer

PROJECT = "gateway-otel-query"


@pytest.fixture(scope="module")
def exported(phoenix: PhoenixServer) -> Iterator[dict[str, Any]]:
    """Four calls under an application span, exported to Phoenix by the preset and also kept in memory."""
    from gateway_otel.simulator import GatewaySimulator

    env = {
        "GATEWAY_OTEL_DESTINATIONS": "phoenix",
        "PHOENIX_COLLECTOR_ENDPOINT": phoenix.url,
        "PHOENIX_PROJECT_NAME": PROJECT,
    }
    providers = gateway_otel.configure(environ=env, set_global=False)
    memory = InMemorySpanExporter()
    provider: TracerProvider = providers.tracer_provider
    provider.add_span_processor(SimpleSpanProcessor(memory))
    gateway_otel.instrument(tracer_provider=provider, meter_provider=providers.meter_provider)
    before = datetime.now(timezone.utc)
    try:
        client = make_client(GatewaySimulator())
        with provider.get_tracer("app").start_as_current_span("handle request"):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "one"}])
            for _ in client.chat.completions.create(
                model="anthropic/claude-3.5-haiku", stream=True, messages=[{"role": "user", "content": "two"}]
            ):
                pass
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "three"}])
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(
                model="openai/gpt-4o-mini",
                messages=[{"role": "user", "content": "four"}],
                extra_headers={"X-Simulator-Scenario": "error-429"},
            )
    finally:
        gateway_otel.uninstrument()
    providers.shutdown()
    spans = {format(s.context.span_id, "016x"): s for s in memory.get_finished_spans()}
    phoenix.wait_for_spans(PROJECT, len(spans))
    yield {"spans": spans, "start": before, "end": datetime.now(timezone.utc), "url": phoenix.url}


def backend(exported: dict[str, Any], **options: Any) -> PhoenixBackend:
    env = {"PHOENIX_COLLECTOR_ENDPOINT": exported["url"], "PHOENIX_PROJECT_NAME": PROJECT}
    return PhoenixBackend.from_env(env, **options)


def window(exported: dict[str, Any], **fields: Any) -> SpanQuery:
    return SpanQuery(start=exported["start"], end=exported["end"], **fields)


def test_every_exported_span_reads_back_as_it_was_exported(exported: dict[str, Any]) -> None:
    rows = backend(exported).spans(window(exported))
    spans = exported["spans"]
    assert sorted(r.span_id for r in rows) == sorted(spans)
    assert [r.start_time for r in rows] == sorted((r.start_time for r in rows), reverse=True)  # newest first
    for row in rows:
        span = spans[row.span_id]
        attrs = span.attributes
        assert row.trace_id == format(span.context.trace_id, "032x")
        assert row.parent_span_id == (format(span.parent.span_id, "016x") if span.parent else None)
        assert row.name == span.name
        assert row.project_name == PROJECT
        assert abs(row.start_time - from_unix_ns(span.start_time)) <= timedelta(microseconds=1)  # Phoenix rounds
        assert row.duration_ms == pytest.approx((span.end_time - span.start_time) / 1e6, abs=0.002)
        assert row.status == {"OK": "ok", "ERROR": "error", "UNSET": "unset"}[span.status.status_code.name]
        assert row.operation == attrs.get("gen_ai.operation.name")
        assert row.model == attrs.get("gen_ai.response.model", attrs.get("gen_ai.request.model"))
        assert row.input_tokens == attrs.get("gen_ai.usage.input_tokens")
        assert row.output_tokens == attrs.get("gen_ai.usage.output_tokens")
        assert row.cost == attrs.get("gen_ai.usage.cost")
        assert row.provider == attrs.get("gateway.upstream.provider")
        ttft = attrs.get("gen_ai.response.time_to_first_chunk")
        assert row.time_to_first_token_ms == (pytest.approx(ttft * 1000) if ttft is not None else None)
        for key, value in attrs.items():  # Phoenix keeps every attribute under its dotted key
            assert row.attributes[key] == (list(value) if isinstance(value, tuple) else value), key
    calls = [r for r in rows if r.model]
    assert len(calls) == 4 and len(rows) == 5
    (failed,) = [r for r in rows if r.status == "error"]
    assert failed.status_message and failed.model == "openai/gpt-4o-mini"
    (streamed,) = [r for r in rows if r.model and r.model.startswith("anthropic/")]
    assert streamed.time_to_first_token_ms and streamed.time_to_first_token_ms > 0


def test_filters_by_trace_status_and_model(exported: dict[str, Any]) -> None:
    px = backend(exported)
    rows = px.spans(window(exported))
    (app,) = [r for r in rows if r.name == "handle request"]
    in_trace = px.spans(window(exported, trace_id=app.trace_id.upper()))
    assert sorted(r.name for r in in_trace) == sorted(
        ["handle request", "chat openai/gpt-4o-mini", "chat anthropic/claude-3.5-haiku"]
    )
    # Phoenix matches whole ids only: a prefix is matched over the window's spans, with the same answer
    by_prefix = px.spans(window(exported, trace_id=app.trace_id[:6]))
    assert {r.trace_id for r in by_prefix} == {r.trace_id for r in rows if r.trace_id.startswith(app.trace_id[:6])}
    assert sorted(r.span_id for r in by_prefix if r.trace_id == app.trace_id) == sorted(r.span_id for r in in_trace)
    assert [r.status for r in px.spans(window(exported, status="error"))] == ["error"]
    assert {r.status for r in px.spans(window(exported, status="ok"))} == {"ok"}
    mini = px.spans(window(exported, model="openai/gpt-4o-mini"))
    assert len(mini) == 3 and {r.model for r in mini} == {"openai/gpt-4o-mini"}
    assert px.spans(window(exported, model="no/such-model")) == []


def test_pages_through_cursors_with_progress(exported: dict[str, Any], monkeypatch: Any) -> None:
    monkeypatch.setattr(_phoenix, "PAGE_SIZE", 2)
    seen: list[int] = []
    rows = backend(exported, progress=seen.append).spans(window(exported, limit=None))
    assert len(rows) == 5 and seen == [2, 4, 5]
    assert len({r.span_id for r in rows}) == 5
    limited = backend(exported).spans(window(exported, limit=3))
    assert [r.span_id for r in limited] == [r.span_id for r in rows[:3]]


def test_the_window_bounds_what_is_returned(exported: dict[str, Any]) -> None:
    later = exported["end"] + timedelta(minutes=1)
    assert backend(exported).spans(SpanQuery(start=later, end=later + timedelta(hours=1))) == []
    light = backend(exported).spans(window(exported, detail=False, limit=1))
    assert len(light) == 1 and light[0].attributes == {} and light[0].events == ()


def test_an_unknown_project_and_logs_are_clear_errors(exported: dict[str, Any]) -> None:
    with pytest.raises(QueryError) as raised:
        backend(exported).spans(window(exported, project_name="no-such-project"))
    assert str(raised.value).startswith("Phoenix refused the query (404 at ")
    assert str(raised.value).endswith("no project 'no-such-project' (set PHOENIX_PROJECT_NAME or pass project_name)")
    with pytest.raises(QueryError, match="Phoenix stores traces only, not log records"):
        backend(exported).logs(LogQuery(start=exported["start"], end=exported["end"]))


def test_the_cli_reads_phoenix(exported: dict[str, Any], monkeypatch: Any, capsys: Any) -> None:
    from gateway_otel.cli import main as cli

    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", exported["url"])
    monkeypatch.setenv("PHOENIX_PROJECT_NAME", PROJECT)
    monkeypatch.setenv("GATEWAY_OTEL_DOTENV", "/nonexistent/.env")
    assert cli(["stats", "--backend", "phoenix", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert [(m["model"], m["calls"], m["errors"]) for m in stats["models"]] == [
        ("openai/gpt-4o-mini", 3, 1),
        ("anthropic/claude-3.5-haiku", 1, 0),
    ]
    calls = [s for s in exported["spans"].values() if "gen_ai.request.model" in s.attributes]
    assert stats["total"]["input_tokens"] == sum(s.attributes.get("gen_ai.usage.input_tokens", 0) for s in calls)
    assert stats["total"]["cost"] == pytest.approx(sum(s.attributes.get("gen_ai.usage.cost", 0) for s in calls))

    (app,) = [s for s in exported["spans"].values() if s.name == "handle request"]
    trace_id = format(app.context.trace_id, "032x")
    assert cli(["trace", trace_id[:12], "--backend", "phoenix"]) == 0
    tree = capsys.readouterr().out.splitlines()
    assert tree[0] == f"trace {trace_id}"
    assert [line.split(" · ")[0].split(" ms  ", 1)[1] for line in tree[3:] if " · " in line] == [
        "handle request",
        "├─ chat openai/gpt-4o-mini",
        "└─ chat anthropic/claude-3.5-haiku",
    ]
    excerpts = [line.strip(" │").split("  ", 1) for line in tree if "prompt  " in line or "answer  " in line]
    assert [label for label, _ in excerpts] == ["prompt", "answer", "prompt", "answer"]
    assert excerpts[0] == ["prompt", "one"] and excerpts[2] == ["prompt", "two"]

    assert cli(["logs", "--backend", "phoenix"]) == 1
    assert capsys.readouterr().err == (
        "gateway-otel: Phoenix stores traces only, not log records: query logs with the local or openobserve backend\n"
    )


def test_the_telemetry_client_reads_phoenix(exported: dict[str, Any]) -> None:
    from gateway_otel import Telemetry

    env = {"PHOENIX_COLLECTOR_ENDPOINT": exported["url"], "PHOENIX_PROJECT_NAME": PROJECT}
    with Telemetry("phoenix", environ=env) as telemetry:
        errors = telemetry.traces.query(status="error", time_window="1h")
        assert [(s.model, s.status) for s in errors.spans] == [("openai/gpt-4o-mini", "error")]
        mini = telemetry.traces.query(model="openai/gpt-4o-mini", time_window="1h", limit=2)
        assert len(mini.spans) == 2 and all(s.model == "openai/gpt-4o-mini" for s in mini.spans)
        usage = telemetry.metrics.query("model_usage", time_window="1h")
        assert {s.labels["model"]: s.points[0][1] for s in usage.series} == {
            "anthropic/claude-3.5-haiku": 1.0,
            "openai/gpt-4o-mini": 3.0,
        }
        assert telemetry.metrics.query("error_rate", time_window="1h").value == 0.25
        with pytest.raises(QueryError, match="Phoenix stores traces only"):
            telemetry.logs.query()
