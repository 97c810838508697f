"""What one destination's exporter is handed, and what is counted: the spans themselves when nothing changes, else a
copy without content (privacy mode), with the destination's resource and shaping, every other field kept; failures
counted, and warned about once with their reason. (Mutation testing, `bench/mutate.py privacy`, asked for each.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from gateway_otel.destinations import _processor as processor_module
from gateway_otel.destinations._processor import DestinationProcessor, _GuardedExporter, _rewrite

ATTRIBUTES = {
    "gen_ai.request.model": "openai/gpt-4o",
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"secret"}]}]',
    "llm.input_messages.0.message.content": "secret",
    "output.value": "secret",
}
KEPT = {"gen_ai.request.model": "openai/gpt-4o", "gen_ai.usage.input_tokens": 12}
FIELDS = ("name", "context", "parent", "events", "links", "kind", "status", "start_time", "end_time")
ENDPOINT = "http://collector.invalid:4318/v1/traces"
EXPORTER_LOG = logging.getLogger("opentelemetry.exporter.gateway_otel_tests")  # before any processor: captured


def _span(start_time: int | None = 1_000) -> ReadableSpan:
    return ReadableSpan(
        name="chat openai/gpt-4o",
        context=SpanContext(trace_id=1, span_id=2, is_remote=False),
        parent=SpanContext(trace_id=1, span_id=3, is_remote=False),
        resource=Resource({"service.name": "shop"}),
        attributes=ATTRIBUTES,
        events=[Event("gateway.first_chunk", timestamp=1_500)],
        links=[Link(SpanContext(trace_id=4, span_id=5, is_remote=False))],
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, "boom"),
        start_time=start_time,
        end_time=2_000,
        instrumentation_scope=InstrumentationScope("gateway_otel", "1.0"),
    )


class _Shaper:
    """Records what it was given; adds one attribute."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], int]] = []

    def __call__(self, attributes: Mapping[str, Any], start_ns: int) -> dict[str, Any]:
        self.calls.append((dict(attributes), start_ns))
        return {**attributes, "shaped": True}


def test_privacy_mode_drops_the_content_and_keeps_every_other_field() -> None:
    span, shaper = _span(), _Shaper()
    copy = _rewrite(span, True, Resource({"openinference.project.name": "checkout"}), shaper, False)
    assert dict(copy.attributes or {}) == {**KEPT, "shaped": True}
    assert shaper.calls == [(KEPT, 1_000)]  # the shaper sees the private attributes and the start time
    assert [getattr(copy, f) for f in FIELDS] == [getattr(span, f) for f in FIELDS]
    assert copy.instrumentation_scope == span.instrumentation_scope
    assert dict(copy.resource.attributes) == {"service.name": "shop", "openinference.project.name": "checkout"}


def test_without_privacy_mode_the_shaper_sees_the_content() -> None:
    span, shaper = _span(start_time=None), _Shaper()
    copy = _rewrite(span, False, None, shaper, False)
    assert shaper.calls == [(ATTRIBUTES, 0)]  # no start time: 0
    assert dict(copy.attributes or {}) == {**ATTRIBUTES, "shaped": True}
    assert copy.resource is span.resource


class _Exporter(SpanExporter):
    """Answers each batch with the next of `results`: a result, an exception to raise, or `"log"` (logs a line the
    way the OTLP exporter does, then fails)."""

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.batches: list[list[ReadableSpan]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(list(spans))
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        if result == "log":
            EXPORTER_LOG.warning("Transient error 503 encountered while exporting span batch")
            return SpanExportResult.FAILURE
        return result

    def shutdown(self) -> None:
        return None


@pytest.fixture
def destination() -> Iterator[Any]:
    """A destination named `x` and its guarded exporter over `_Exporter(*results)`."""
    made: list[DestinationProcessor] = []

    def make(*results: Any, **options: Any) -> tuple[DestinationProcessor, _GuardedExporter, _Exporter]:
        exporter = _Exporter(*results)
        processor = DestinationProcessor("x", exporter, **options)
        made.append(processor)
        return processor, _GuardedExporter(processor, exporter, ENDPOINT), exporter

    yield make
    for processor in made:
        processor.shutdown()


def test_a_destination_with_nothing_to_change_exports_the_spans_themselves(destination: Any) -> None:
    _, guarded, exporter = destination(SpanExportResult.SUCCESS, SpanExportResult.SUCCESS)
    span = _span()
    guarded.export([span])
    assert exporter.batches[0][0] is span  # no copy made
    _, guarded, exporter = destination(SpanExportResult.SUCCESS, privacy_mode=True)
    guarded.export([span])
    assert dict(exporter.batches[0][0].attributes or {}) == KEPT


def test_exported_and_failed_spans_add_up_over_batches(destination: Any) -> None:
    results = [SpanExportResult.SUCCESS] * 2 + [SpanExportResult.FAILURE] * 3
    processor, guarded, _ = destination(*results)
    returned = [guarded.export([_span(), _span()]) for _ in results]
    assert returned == results
    assert (processor.exported_spans, processor.failed_spans) == (4, 6)


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (ConnectionError("connection refused"), "connection refused: nothing listens at collector.invalid:4318; is "
                                                "the backend running?"),
        ("log", "cannot send to collector.invalid:4318: Transient error 503 encountered while exporting span batch."),
        (SpanExportResult.FAILURE, "cannot resolve collector.invalid:4318: check the endpoint."),
    ],
    ids=["raised", "logged", "returned"],
)
def test_a_failed_export_is_warned_about_once_with_its_reason(
    destination: Any, caplog: pytest.LogCaptureFixture, outcome: Any, reason: str
) -> None:
    _, guarded, _ = destination(outcome, outcome)
    with caplog.at_level(logging.WARNING):
        assert [guarded.export([_span()]) for _ in range(2)] == [SpanExportResult.FAILURE] * 2
        EXPORTER_LOG.warning("a line after the export")  # outside an export, the exporter's lines are not held back
    assert [r.getMessage() for r in caplog.records] == [
        f"gateway_otel: destination 'x' cannot export to {ENDPOINT}: {reason} The application is unaffected; "
        "further failures are counted, not logged.",
        "a line after the export",
    ]


def _sampled_span() -> ReadableSpan:
    context = SpanContext(trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return ReadableSpan(name="chat", context=context, start_time=1, end_time=2)


def test_a_queue_more_than_a_quarter_full_yields_to_its_worker_unless_exports_fail(
    destination: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GIL convoy (`_yield_to_worker`): a busy application thread would starve the exporting thread. A queue of 8:
    the 4th to 8th span (3 to 7 already queued, more than 8 // 4) yield; the 8th wakes the worker (a batch of 8),
    whose export fails; once failing, nothing yields (the worker is not what is slow)."""
    yields: list[int] = []
    monkeypatch.setattr(processor_module, "_yield_to_worker", lambda: yields.append(len(yields)))
    processor, _, exporter = destination(
        SpanExportResult.FAILURE, SpanExportResult.SUCCESS, max_queue_size=8, max_export_batch_size=8,
        schedule_delay=60.0,
    )
    per_span = []
    for _ in range(8):
        before = len(yields)
        processor.on_end(_sampled_span())
        per_span.append(len(yields) - before)
    assert per_span == [0, 0, 0, 1, 1, 1, 1, 1]
    assert processor.force_flush()
    assert (len(exporter.batches), processor.failed_spans, processor.exporting_fails) == (1, 8, True)
    for _ in range(7):
        processor.on_end(_sampled_span())
    assert len(yields) == 5  # exports fail: no yield though 7 are queued
    assert processor.force_flush()
    assert (processor.exported_spans, processor.exporting_fails) == (7, False)
    for _ in range(4):
        processor.on_end(_sampled_span())
    assert len(yields) == 6  # exporting again: the 4th yields
