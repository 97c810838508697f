"""One batch span processor per destination, so that a slow or dead backend never delays the application or
another destination.

- Sampling (`sampling_rate`) is decided per trace id, so a destination keeps whole traces or none of a trace.
- Privacy mode strips prompt and completion content for this destination only (tokens, cost, timing stay), a
  destination's own resource attributes (its project) are applied to its copy, and a backend that reads more than
  the conventions gets it added to its copy (`_shaping`: OpenObserve); all on the exporting thread, never on the
  application's.

- The queue is bounded: spans beyond it are dropped and counted (`dropped`), never blocking `span.end()`.
- Export failures are counted (`failed_spans`) and logged **once** per destination, as one warning that names the
  destination and the reason; the exporter's own per-batch log lines are kept out of the application's logs.
- `shutdown()` waits at most `shutdown_timeout` seconds, whatever the backend does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .._semconv import without_content
from ._shaping import Shaper

logger = logging.getLogger("gateway_otel")

_capture = threading.local()
_LOW_64 = (1 << 64) - 1


class _ExporterLogCapture(logging.Filter):
    """Holds back the exporter's own log records while one of our destinations exports (on its worker thread)."""

    def filter(self, record: logging.LogRecord) -> bool:
        records = getattr(_capture, "records", None)
        if records is None:
            return True
        records.append(record.getMessage())
        return False


_FILTER = _ExporterLogCapture()


def _capture_exporter_logs() -> None:
    """Attach the capture filter to every exporter logger known now (filters do not apply to child loggers)."""
    names = [
        n for n in logging.root.manager.loggerDict if n.startswith(("opentelemetry.exporter", "opentelemetry.sdk"))
    ]
    for name in names:
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)


def _rewrite(
    span: ReadableSpan, privacy_mode: bool, resource: Resource | None, shaper: Shaper | None
) -> ReadableSpan:
    attributes: Any = without_content(span.attributes or {}) if privacy_mode else span.attributes
    if shaper is not None:
        attributes = shaper(attributes or {}, span.start_time or 0)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource.merge(resource) if resource is not None else span.resource,
        attributes=attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class _GuardedExporter(SpanExporter):
    """Counts what leaves the queue, and turns failures into one warning per destination."""

    def __init__(self, destination: DestinationProcessor, exporter: SpanExporter) -> None:
        self._destination = destination
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        destination = self._destination
        destination._released(len(spans))
        if destination.privacy_mode or destination.resource is not None or destination.shaper is not None:
            rewrite = (destination.privacy_mode, destination.resource, destination.shaper)
            spans = [_rewrite(s, *rewrite) for s in spans]
        _capture.records = records = []
        try:
            result = self._exporter.export(spans)
        except Exception as exc:
            records.append(f"{type(exc).__name__}: {exc}")
            result = SpanExportResult.FAILURE
        finally:
            _capture.records = None
        if result is SpanExportResult.SUCCESS:
            destination.exported_spans += len(spans)
        else:
            destination.failed_spans += len(spans)
            destination._warn_once("export failed", records[-1] if records else "the exporter reported a failure")
        return result

    def shutdown(self) -> None:
        _capture.records = []
        try:
            self._exporter.shutdown()
        finally:
            _capture.records = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class GuardedMetricExporter(MetricExporter):
    """A destination's metric exporter: failures counted and logged once, like its spans'."""

    def __init__(self, destination: DestinationProcessor, exporter: MetricExporter) -> None:
        _capture_exporter_logs()
        super().__init__(
            preferred_temporality=getattr(exporter, "_preferred_temporality", None),
            preferred_aggregation=getattr(exporter, "_preferred_aggregation", None),
        )
        self._destination = destination
        self._exporter = exporter

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        _capture.records = records = []
        try:
            result = self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            records.append(f"{type(exc).__name__}: {exc}")
            result = MetricExportResult.FAILURE
        finally:
            _capture.records = None
        if result is not MetricExportResult.SUCCESS:
            self._destination.failed_metric_exports += 1
            reason = records[-1] if records else "the exporter reported a failure"
            self._destination._warn_once("metric export failed", reason)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._exporter.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        _capture.records = []
        try:
            self._exporter.shutdown(timeout_millis=timeout_millis, **kwargs)
        finally:
            _capture.records = None


class DestinationProcessor(SpanProcessor):
    """Batches spans to one destination's exporter, with a bounded queue and a bounded shutdown."""

    def __init__(
        self,
        name: str,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay: float = 1.0,
        shutdown_timeout: float = 5.0,
        privacy_mode: bool = False,
        sampling_rate: float = 1.0,
        resource_attributes: Mapping[str, Any] | None = None,
        shaper: Shaper | None = None,
    ) -> None:
        _capture_exporter_logs()
        self.name = name
        self.shaper = shaper
        """What this destination's backend reads beyond the conventions, added to its copy (`_shaping`)."""
        self.privacy_mode = privacy_mode
        self.sampling_rate = sampling_rate
        self._sampling_bound = int(sampling_rate * (1 << 64))
        self.resource = Resource(dict(resource_attributes)) if resource_attributes else None
        self.sampled_out = 0
        self.exporter = exporter
        self.max_queue_size = max_queue_size
        self.shutdown_timeout = shutdown_timeout
        self.dropped = 0
        self.exported_spans = 0
        self.failed_spans = 0
        self.failed_metric_exports = 0
        self._pending = 0
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._batch = BatchSpanProcessor(
            _GuardedExporter(self, exporter),
            max_queue_size=max_queue_size,
            max_export_batch_size=min(max_export_batch_size, max_queue_size),
            schedule_delay_millis=schedule_delay * 1000,
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self.sampling_rate < 1.0 and (span.context.trace_id & _LOW_64) >= self._sampling_bound:
            self.sampled_out += 1
            return
        with self._lock:
            full = self._pending >= self.max_queue_size
            if full:
                self.dropped += 1
            else:
                self._pending += 1
        if full:
            self._warn_once("queue full", f"its queue of {self.max_queue_size} spans is full; spans are dropped")
            return
        self._batch.on_end(span)

    def _released(self, count: int) -> None:
        with self._lock:
            self._pending = max(0, self._pending - count)

    def _warn_once(self, kind: str, reason: str) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        logger.warning(
            "gateway_otel: destination %r: %s (%s). The application is unaffected; further %s are counted, not logged.",
            self.name,
            kind,
            reason,
            "drops" if kind == "queue full" else "failures",
        )

    def shutdown(self) -> None:
        """Flush what can be flushed within `shutdown_timeout` seconds, then stop."""
        done = threading.Thread(target=self._batch.shutdown, name=f"gateway-otel-shutdown-{self.name}", daemon=True)
        done.start()
        done.join(self.shutdown_timeout)
        if done.is_alive():
            self._warn_once("shutdown timed out", f"gave up after {self.shutdown_timeout:g} s")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        flushing = threading.Thread(target=self._batch.force_flush, daemon=True)
        flushing.start()
        flushing.join(min(timeout_millis / 1000, self.shutdown_timeout))
        return not flushing.is_alive()

    def stats(self) -> dict[str, Any]:
        """Counters for this destination: spans exported, failed to export, and dropped at the queue."""
        return {
            "exported": self.exported_spans,
            "failed": self.failed_spans,
            "dropped": self.dropped,
            "sampled_out": self.sampled_out,
        }


def _log_without_content(item: Any) -> Any:
    """A copy of an exported log record (`ReadableLogRecord`, or `LogData` before SDK 1.39) minus content."""
    import copy

    record = copy.copy(item.log_record)
    record.attributes = without_content(record.attributes or {})
    clone = copy.copy(item)
    object.__setattr__(clone, "log_record", record)
    return clone


def private_log_exporter(exporter: Any) -> Any:
    """`exporter` for a destination in privacy mode: log records lose their prompt and completion attributes."""
    return _PrivateLogs(exporter)


class _PrivateLogs:
    """Duck-typed log exporter (the SDK's processors only call these three methods)."""

    def __init__(self, exporter: Any) -> None:
        self._exporter = exporter

    def export(self, batch: Sequence[Any]) -> Any:
        return self._exporter.export([_log_without_content(item) for item in batch])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._exporter.force_flush(timeout_millis))
