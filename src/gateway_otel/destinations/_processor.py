"""One batch span processor per destination, so that a slow or dead backend never delays the application or
another destination.

- Sampling (`sampling_rate`) is decided per trace id, so a destination keeps whole traces or none of a trace.
- Privacy mode strips prompt and completion content for this destination only (tokens, cost, timing stay), a
  destination's own resource attributes (its project) are applied to its copy, a call the gateway reported no cost
  for is priced from the price table (`_prices`, with the `prices` extra), and a backend that reads more than the
  conventions gets it added to its copy (`_shaping`: OpenObserve); all on the exporting thread, never on the
  application's.

- The queue is bounded: spans beyond it are dropped and counted (`dropped`), never blocking `span.end()` for
  long: while it is more than a quarter full, `span.end()` yields 1 ms to the exporting thread (`_yield_to_worker`).
- Export failures are counted (`failed_spans`) and said **once** per destination and cause, naming the destination,
  the endpoint and the cause in plain words (`_guard`, `_causes`); the exporter's own log lines are held back.
- The processor also holds its destination's metric reader and log processor, so that the shutdown stops the three
  signals of every destination at once, within one deadline (`_shutdown`); each part stops only once.
- `shutdown()` alone waits at most `shutdown_timeout` seconds, whatever the backend does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .._prices import available, price_attributes
from .._semconv import without_content
from ._guard import Guard, Health
from ._shaping import Shaper
from ._shutdown import Deadline, Task

logger = logging.getLogger("gateway_otel")

_LOW_64 = (1 << 64) - 1
YIELD_SECONDS = 0.001


def _yield_to_worker() -> None:
    """Let the exporting thread run: while the queue is more than a quarter full, each finished span waits
    `YIELD_SECONDS`. A thread that releases the GIL only briefly (the store's writer around each SQLite call) loses
    it to a busy application thread for tens to hundreds of milliseconds each time (CPython's GIL convoy): a 10,000-call
    burst filled a queue of 8192 while the writer, given the GIL, needs ~0.1 ms per span. A blocking sleep hands it
    over; no yield while the destination's exports fail (the worker is not what is slow then)."""
    time.sleep(YIELD_SECONDS)


def _rewrite(
    span: ReadableSpan, privacy_mode: bool, resource: Resource | None, shaper: Shaper | None, prices: bool
) -> ReadableSpan:
    """This destination's copy of `span`: content dropped in privacy mode, the cost priced from the price table
    where the gateway reported none (`_prices`: ~85 µs, here rather than on the application's thread), the backend's
    own attributes, its resource; `span` itself when none of these changes it."""
    attributes: Any = span.attributes
    priced = price_attributes(attributes, span.start_time) if prices and attributes else None
    if not (privacy_mode or priced or resource is not None or shaper is not None):
        return span
    if privacy_mode:
        attributes = without_content(attributes or {})
    if priced:
        attributes = {**(attributes or {}), **priced}
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


def _encodable(span: ReadableSpan) -> bool:
    """Whether OTLP can encode `span` (checked only after an export raised)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    try:
        encode_spans([span]).SerializeToString()
    except (ValueError, TypeError, OverflowError):  # a lone surrogate (UnicodeEncodeError), an out-of-range number
        logger.debug("gateway_otel: span %r cannot be encoded as OTLP; left out", span.name, exc_info=True)
        return False
    return True


class _GuardedExporter(SpanExporter):
    """Counts what leaves the queue; its destination's copy of each span; failures said once per cause."""

    def __init__(self, destination: DestinationProcessor, exporter: SpanExporter, endpoint: str) -> None:
        self._destination = destination
        self._exporter = exporter
        self.guard = Guard(destination.health, exporter, endpoint)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        destination = self._destination
        destination._released(len(spans))
        prices = available()
        if destination.privacy_mode or destination.resource is not None or destination.shaper is not None or prices:
            rewrite = (destination.privacy_mode, destination.resource, destination.shaper, prices)
            spans = [_rewrite(s, *rewrite) for s in spans]
        batch = list(spans)
        if self.guard.attempt(lambda: self._send(batch), lambda r: r is SpanExportResult.SUCCESS):
            destination.exported_spans += len(batch)
            destination.exporting_fails = False
            return SpanExportResult.SUCCESS
        destination.failed_spans += len(batch)
        destination.exporting_fails = True
        return SpanExportResult.FAILURE

    def _send(self, batch: list[ReadableSpan]) -> SpanExportResult:
        """Export `batch`; when the encoder refuses one of its spans (a value another library put on a span that
        OTLP cannot carry: a lone surrogate, an integer beyond int64), export the others without it, not none."""
        error: Exception | None = None
        try:
            result = self._exporter.export(batch)
        except (ValueError, TypeError, OverflowError) as raised:  # an exporter that lets the encoder's error through
            result, error = None, raised
        if result is SpanExportResult.SUCCESS:
            return result
        kept = [span for span in batch if _encodable(span)]  # on the failure path only: a few ms per 512 spans
        if len(kept) == len(batch):
            if error is not None:
                raise error  # not a value of a span: the guard says why
            return result  # the backend's failure, not the batch's
        self._destination.unencodable += len(batch) - len(kept)
        batch[:] = kept
        return self._exporter.export(kept) if kept else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.guard.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class GuardedMetricExporter(MetricExporter):
    """A destination's metric exporter: failures counted and said once per cause, like its spans'."""

    def __init__(self, health: Health, exporter: MetricExporter, endpoint: str) -> None:
        super().__init__(
            preferred_temporality=getattr(exporter, "_preferred_temporality", None),
            preferred_aggregation=getattr(exporter, "_preferred_aggregation", None),
        )
        self._guard = Guard(health, exporter, endpoint)
        self._exporter = exporter

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        ok = self._guard.attempt(
            lambda: self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            lambda r: r is MetricExportResult.SUCCESS,
        )
        if not ok:
            self._guard.health.failed_metric_exports += 1
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._exporter.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._guard.shutdown()


class OnceMetricReader(PeriodicExportingMetricReader):
    """The SDK's periodic reader, whose second `shutdown()` (the meter provider's, after ours) returns at once and
    says nothing."""

    _stopping = False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if self._stopping:
            return
        self._stopping = True
        super().shutdown(timeout_millis=timeout_millis, **kwargs)


def sampling_bound(sampling_rate: float) -> int | None:
    """The bound below which a trace id's low 64 bits are kept; None when every trace is (`sampling_rate` 1)."""
    return int(sampling_rate * (1 << 64)) if sampling_rate < 1.0 else None


def leaves_out(trace_id: int, bound: int | None) -> bool:
    """Whether a destination with this `sampling_bound` leaves out the trace `trace_id` (0: no trace, kept)."""
    return bound is not None and trace_id != 0 and (trace_id & _LOW_64) >= bound


class OnceLogProcessor(BatchLogRecordProcessor):
    """The SDK's batch log processor, whose second `shutdown()` (the logger provider's, after ours) returns at once,
    and which keeps a record only when its destination keeps the record's trace (`sampling_rate`, as for spans), so a
    failure or a generation record never reaches a backend without its span."""

    _stopping = False
    sampled_out = 0

    def __init__(self, exporter: Any, *, sampling_rate: float = 1.0, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self._sampling_bound = sampling_bound(sampling_rate)

    def on_emit(self, log_record: Any) -> None:
        """`log_record`: a `ReadWriteLogRecord` (SDK 1.39+) whose `log_record` has the trace id."""
        record = getattr(log_record, "log_record", log_record)
        if leaves_out(getattr(record, "trace_id", None) or 0, self._sampling_bound):
            self.sampled_out += 1
            return
        super().on_emit(log_record)

    def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        super().shutdown()


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
        endpoint: str = "",
        destination_type: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.health = Health(name, destination_type, timeout)
        """This destination's failures, said once per cause, for all its signals."""
        self.shaper = shaper
        """What this destination's backend reads beyond the conventions, added to its copy (`_shaping`)."""
        self.privacy_mode = privacy_mode
        self.sampling_rate = sampling_rate
        self._sampling_bound = sampling_bound(sampling_rate)
        self.resource = Resource(dict(resource_attributes)) if resource_attributes else None
        self.sampled_out = 0
        self.exporter = exporter
        self.max_queue_size = max_queue_size
        self.shutdown_timeout = shutdown_timeout
        self.dropped = 0
        self.unencodable = 0
        """Spans left out of their batch because OTLP could not encode a value of theirs (the rest were sent)."""
        self.exported_spans = 0
        self.failed_spans = 0
        self.exporting_fails = False
        self._yield_above = max_queue_size // 4
        self.metric_reader: OnceMetricReader | None = None
        self.log_processor: OnceLogProcessor | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._stopping = False
        if hasattr(os, "register_at_fork"):  # the SDK's batch processor empties its queue in a forked child: so do we
            reinit = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (method := reinit()) and method())
        guarded = _GuardedExporter(self, exporter, endpoint)
        self._spans = guarded.guard
        self._batch = BatchSpanProcessor(
            guarded,
            max_queue_size=max_queue_size,
            max_export_batch_size=min(max_export_batch_size, max_queue_size),
            schedule_delay_millis=schedule_delay * 1000,
        )

    @property
    def failed_metric_exports(self) -> int:
        return self.health.failed_metric_exports

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if leaves_out(span.context.trace_id, self._sampling_bound):
            self.sampled_out += 1
            return
        with self._lock:
            pending = self._pending
            full = pending >= self.max_queue_size
            if full:
                self.dropped += 1
            else:
                self._pending += 1
        if full:
            self.health.say_once(
                "queue full", f"drops spans: its queue of {self.max_queue_size} spans is full", counted="drops"
            )
            return
        self._batch.on_end(span)
        if pending > self._yield_above and not self.exporting_fails:
            _yield_to_worker()

    def _after_fork(self) -> None:
        """A forked child (gunicorn, Celery, multiprocessing) starts with an empty queue of its own: the parent's
        count of queued spans would otherwise make it drop every span it makes, for its whole life. Its counts
        (`stats()`) are its own too."""
        self._lock = threading.Lock()
        self._pending = 0
        self.dropped = self.exported_spans = self.failed_spans = self.sampled_out = self.unencodable = 0

    def _released(self, count: int) -> None:
        with self._lock:
            self._pending = max(0, self._pending - count)

    def shutdown(self, deadline: Deadline | None = None) -> None:
        """Flush what can be flushed by `deadline` (alone: within `shutdown_timeout` seconds), then stop. Once."""
        deadline = deadline or Deadline(self.shutdown_timeout)
        if not self._stop_spans(deadline):
            self.gave_up(deadline)

    def _stop_spans(self, deadline: Deadline) -> bool:
        """Whether the spans' queue was flushed and stopped by `deadline` (True when already stopping)."""
        with self._lock:
            if self._stopping:
                return True
            self._stopping = True
        self._spans.deadline = deadline
        stopping = threading.Thread(target=self._batch.shutdown, name=f"gateway-otel-spans-{self.name}", daemon=True)
        stopping.start()
        stopping.join(deadline.remaining())
        return not stopping.is_alive()

    def shutdown_tasks(self, deadline: Deadline) -> list[Task]:
        """Stopping this destination's spans, metrics and log records: run at once by `_shutdown.shut_down`, which
        says why when one is late (here, on a daemon thread, the saying could be cut off by the exit)."""
        self.health.deadline = deadline
        tasks: list[Task] = [(f"{self.name} spans", lambda: self._stop_spans(deadline))]
        reader, logs = self.metric_reader, self.log_processor
        if reader is not None:
            tasks.append((f"{self.name} metrics", lambda: reader.shutdown(timeout_millis=deadline.remaining() * 1000)))
        if logs is not None:
            tasks.append((f"{self.name} logs", logs.shutdown))
        return tasks

    def gave_up(self, deadline: Deadline) -> None:
        self.health.gave_up(deadline)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        flushing = threading.Thread(target=self._batch.force_flush, daemon=True)
        flushing.start()
        flushing.join(min(timeout_millis / 1000, self.shutdown_timeout))
        return not flushing.is_alive()

    def stats(self) -> dict[str, Any]:
        """Counters for this destination: spans exported, failed to export, dropped at the queue, left out by
        sampling, and left out of a batch because OTLP could not encode them."""
        return {
            "exported": self.exported_spans,
            "failed": self.failed_spans,
            "dropped": self.dropped,
            "sampled_out": self.sampled_out,
            "unencodable": self.unencodable,
        }
