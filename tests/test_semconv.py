"""The attribute names several modules agree on (`gateway_otel._semconv`): one lift from a span to a row, read the
same way by the local store, OpenObserve and Phoenix; one list of content attributes that privacy mode drops."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import gateway_otel
from conftest import Captured, make_client
from gateway_otel import _semconv
from gateway_otel.destinations._processor import DestinationProcessor
from gateway_otel.instrumentation import _attributes
from gateway_otel.query._local_store import LocalBackend
from gateway_otel.query._model import SpanQuery, SpanRow
from gateway_otel.query._openobserve import span_from_hit
from gateway_otel.query._phoenix import span_from_phoenix
from gateway_otel.store import LocalSpanExporter, StoreConfig
from openobserve_fake import stored_row

WHOLE_DAY = timedelta(days=1)


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat()


def phoenix_span(span: ReadableSpan) -> dict[str, Any]:
    """A span as Phoenix's REST API returns it (`GET /v1/projects/{project}/spans`): dotted attribute keys."""
    return {
        "name": span.name,
        "context": {"trace_id": format(span.context.trace_id, "032x"), "span_id": format(span.context.span_id, "016x")},
        "parent_id": format(span.parent.span_id, "016x") if span.parent is not None else None,
        "span_kind": span.attributes.get("openinference.span.kind", "UNKNOWN"),
        "start_time": _iso(span.start_time),
        "end_time": _iso(span.end_time),
        "status_code": span.status.status_code.name,
        "status_message": span.status.description or "",
        "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in span.attributes.items()},
        "events": [],
    }


def _workload(telemetry: Captured, sim: Any) -> list[ReadableSpan]:
    client = make_client(sim)
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    for _ in client.chat.completions.create(
        model="anthropic/claude-3.5-haiku",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream"}],
        extra_body={"session_id": "session-7"},
    ):
        pass
    client.embeddings.create(model="openai/text-embedding-3-small", input=["a", "b"])
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-Simulator-Scenario": "error-429"},
        )
    # A span another instrumentor made, with the OpenInference names only: every reader falls back to them alike.
    tracer = telemetry.tracer_provider.get_tracer("openinference.instrumentation.openai")
    with tracer.start_as_current_span("ChatCompletion", kind=SpanKind.INTERNAL) as span:
        span.set_attributes(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4.1-nano",
                "llm.provider": "openai",
                "llm.token_count.prompt": 12,
                "llm.token_count.completion": 3,
                "llm.cost.total": 0.00042,
                "gen_ai.conversation.id": "conversation-1",
            }
        )
    return telemetry.spans()


def _lifted(row: SpanRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in ("trace_id", "span_id", "status", *_semconv.LIFTED_FIELDS)}


def test_the_store_openobserve_and_phoenix_read_one_span_into_the_same_row(
    telemetry: Captured, sim: Any, tmp_path: Path
) -> None:
    spans = _workload(telemetry, sim)
    assert len(spans) == 5
    exporter = LocalSpanExporter(StoreConfig(tmp_path / "telemetry.db", None, None))
    exporter.export(spans)
    exporter.shutdown()
    now = datetime.now(timezone.utc)
    local = {r.span_id: r for r in LocalBackend(tmp_path / "telemetry.db").spans(SpanQuery(now - WHOLE_DAY, now))}
    assert len(local) == 5
    for span in spans:
        from_store = _lifted(local[format(span.context.span_id, "016x")])
        from_openobserve = _lifted(span_from_hit(stored_row(span)))
        from_phoenix = _lifted(span_from_phoenix(phoenix_span(span), "default"))
        assert from_store == from_openobserve == from_phoenix, span.name
    rows = {r.name: r for r in local.values()}
    assert rows["chat openai/gpt-4o-mini"].cost is not None
    assert rows["chat anthropic/claude-3.5-haiku"].session_id == "session-7"
    assert rows["chat anthropic/claude-3.5-haiku"].time_to_first_token_ms is not None
    other = rows["ChatCompletion"]
    assert (other.model, other.provider, other.input_tokens, other.output_tokens, other.cost, other.session_id) == (
        "gpt-4.1-nano",
        "openai",
        12,
        3,
        0.00042,
        "conversation-1",
    )


def test_the_lift_never_returns_what_a_store_cannot_hold() -> None:
    lifted = _semconv.lift(
        {
            "gen_ai.usage.input_tokens": 2**70,
            "gen_ai.usage.output_tokens": float("inf"),
            "gen_ai.usage.cost": float("nan"),
            "gen_ai.response.time_to_first_chunk": True,
        }
    )
    assert (lifted["input_tokens"], lifted["output_tokens"], lifted["cost"], lifted["time_to_first_token_ms"]) == (
        None,
        None,
        None,
        None,
    )


# --- content and privacy mode ---------------------------------------------------------------------------------------


def _rich_calls(sim: Any) -> None:
    client = make_client(sim)
    tool = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather?"}],
        tools=[tool],
    )
    for _ in client.chat.completions.create(
        model="openai/gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "stream"}]
    ):
        pass
    client.embeddings.create(model="openai/text-embedding-3-small", input="embed me")
    client.responses.create(model="openai/gpt-4o-mini", input="respond", instructions="be kind")


def test_every_attribute_that_only_content_capture_adds_is_content(make_telemetry: Any, sim: Any) -> None:
    """What capture_content adds to a span is exactly what `_semconv` calls content, so privacy mode drops it all."""
    captured = make_telemetry(capture_content=True)
    _rich_calls(sim)
    with_content = captured.spans()
    gateway_otel.uninstrument()
    plain = make_telemetry(capture_content=False)
    _rich_calls(sim)
    without_content = plain.spans()
    added = set()
    for rich, bare in zip(with_content, without_content, strict=True):
        added |= set(rich.attributes) - set(bare.attributes)
    assert {"gen_ai.input.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions"} <= added
    assert [key for key in added if not _semconv.is_content(key)] == []


def test_a_new_content_attribute_is_private_once_semconv_names_it(
    make_telemetry: Any, sim: Any, monkeypatch: Any
) -> None:
    """A producer that starts emitting a new content attribute needs only its name in `_semconv`: the destination
    processor, untouched, drops it in privacy mode."""
    new_key = "gen_ai.output.annotations"
    monkeypatch.setattr(_semconv, "CONTENT_KEYS", _semconv.CONTENT_KEYS | {new_key})
    produce = _attributes.output_content_attributes
    monkeypatch.setattr(
        _attributes, "output_content_attributes", lambda *args, **kwargs: {**produce(*args, **kwargs), new_key: "[]"}
    )
    private, open_ = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider()
    processors = [
        DestinationProcessor("private", private, privacy_mode=True),
        DestinationProcessor("open", open_, privacy_mode=False),
    ]
    for processor in processors:
        provider.add_span_processor(processor)
    make_telemetry()
    gateway_otel.uninstrument()
    gateway_otel.instrument(tracer_provider=provider)
    make_client(sim).chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    for processor in processors:
        processor.shutdown()
    [kept], [stripped] = open_.get_finished_spans(), private.get_finished_spans()
    assert kept.attributes[new_key] == "[]"
    assert new_key not in stripped.attributes
    assert "gen_ai.input.messages" not in stripped.attributes
    assert stripped.attributes["gen_ai.usage.input_tokens"] == kept.attributes["gen_ai.usage.input_tokens"]
