"""GenAI client metrics with the semantic conventions' bucket boundaries, plus a cost counter in USD.

Each measurement costs the OpenTelemetry SDK about as much as a span (it copies, validates and hashes every
attribute), ~11-14 µs here, 4-6 per call. `MetricRecorder` takes them off the caller's path: a call queues one tuple.
Late is fine, lost is not, so every collection of the meter provider (a periodic export, `force_flush`, `shutdown` at
exit, `InMemoryMetricReader.get_metrics_data()`) first records everything queued before it; a test reads exact
records right after the call. Between collections a worker thread records the queue each time it reaches
`_WAKE_AT` calls, which bounds its memory.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from .._internal import internal_error
from .._prices import GATEWAY, PRICE_TABLE, SOURCE, price

DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
METRIC_ATTRIBUTES = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "server.address",
    "server.port",
    "gen_ai.response.model",
    "gateway.upstream.provider",
    "error.type",
)
"""What every measurement is grouped by; a call's `key` holds their values in this order, None where absent."""
_CACHE_SIZE = 256
_WAKE_AT = 128
"""Calls queued before the worker is woken to record them: what bounds the queue between collections (~40 KB; 4-6 ms
of recording per wake-up, on the worker's thread).

No timer: a worker that looked every 50 ms while calls kept coming took the GIL from a busy caller at each tick, and
ran 20 times a second for as long; a wake-up (`Event.set()`) per call cost ~15 µs. The bench's per-call
overhead did not move either way (within its noise); what changed is that nothing runs between calls."""
_MAX_PENDING = 10_000
"""A queue longer than this (a worker left behind by a process busy on the CPU) is recorded on the callers' threads,
`_WAKE_AT` calls at a time: memory stays bounded (~3 MB)."""


class Instruments:
    """The instruments one `instrument()` call records into."""

    __slots__ = ("cost", "duration", "time_per_output_chunk", "time_to_first_chunk", "tokens")

    def __init__(self, meter: Meter) -> None:
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        )
        self.cost = meter.create_counter(
            "gateway.client.cost",
            unit="USD",
            description="Cost of GenAI operations as reported by the gateway, else priced from genai-prices' table",
        )
        self.time_to_first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time from the request to the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.time_per_output_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk",
            unit="s",
            description="Time between chunks of a streamed response, after the first",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )


Measurements = tuple[tuple[Any, ...], float, "float | None", "float | None", Any, Any, Any, "Context | None"]
"""One call's metrics: (key, duration, time to first chunk, time per chunk, input tokens, output tokens, cost — or
the `_prices.PriceRequest` the worker prices it by —, the context current when the call ended — for exemplars, as if
recorded then)."""


class MetricRecorder:
    """Records each call's measurements on a worker thread, and everything still queued at each collection.

    `put` is the only thing on the caller's path: a deque append, and an `Event.set()` once per `_WAKE_AT` calls.
    """

    def __init__(self, meter: Meter, instruments: Instruments) -> None:
        self.instruments = instruments
        self._pending: deque[Measurements] = deque()
        self._attributes: dict[tuple[Any, ...], tuple[dict[str, Any], ...]] = {}
        self._with_context = _takes_context(instruments.duration.record)
        self._closed = False
        self._reset()
        with _LIVE_LOCK:
            _LIVE.add(self)
        # An observable instrument whose callback yields nothing: the SDK calls it at the start of every collection,
        # for every reader, and it exports no data point of its own. Instrumenting again with the same meter gets
        # the instrument registered the first time (the SDK keeps one per name), so its callback records what every
        # live recorder queued, not one recorder's.
        meter.create_observable_gauge("gateway.client.pending_measurements", callbacks=[_record_queued])
        os.register_at_fork(after_in_child=_forked(weakref.ref(self)))

    def _reset(self) -> None:
        """Fresh locks, event and no thread: at start-up, and in a forked child (the parent's thread is not there).

        Re-entrant: an instrument whose recording triggers a collection (an exporter that records metrics of its
        own, say) records the rest of the queue from within, instead of waiting for itself forever."""
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, measurements: Measurements) -> None:
        """Queue one call's measurements (the caller's path: never waits for a recording, never raises)."""
        pending = self._pending
        pending.append(measurements)
        if len(pending) >= _WAKE_AT or self._closed:
            self._drain()

    def _drain(self) -> None:
        """A full queue: wake the worker. Record on the caller's thread only after `uninstrument()`, or, when the
        worker has fallen `_MAX_PENDING` behind (a process busy on the CPU, where it lets the callers go first), a
        batch of `_WAKE_AT` — unless another thread is recording already: then the caller goes on at once."""
        if self._closed:
            self.flush()
        elif len(self._pending) > _MAX_PENDING:
            self.flush(most=_WAKE_AT, wait=False)
        elif not self._wake.is_set():
            self._wake.set()
            if self._thread is None:
                self._start()

    def flush(self, *, yielding: bool = False, most: int | None = None, wait: bool = True) -> None:
        """Record what is queued when the lock is taken (calls queued meanwhile are the next flush's), on this
        thread. One recorder at a time, so that a collection that flushes first sees every measurement queued before
        it, including one the worker had already taken.

        `yielding` (the worker): the GIL is let go after each call's measurements, so that a busy caller's thread
        waits ~50 µs for the worker, not the interpreter's switch interval (5 ms) it would otherwise hold it for.
        `most`: record at most that many calls. `wait=False`: return at once if another thread is recording.
        """
        if not self._lock.acquire(blocking=wait):
            return
        try:
            pending = self._pending
            count = len(pending) if most is None else min(most, len(pending))
            for _ in range(count):
                try:
                    item = pending.popleft()
                except IndexError:  # a collection from within a recording took the rest
                    return
                try:
                    self._record(item)
                except Exception:
                    internal_error("metrics")
                if yielding:
                    time.sleep(0)
        finally:
            self._lock.release()

    def close(self) -> None:
        """`uninstrument()`: record what is queued and stop the worker; a stream still open records at its end."""
        self._closed = True
        self._wake.set()  # the worker wakes, records what it finds and ends
        self.flush()

    def _start(self) -> None:
        """Start the worker; where no thread can start (at interpreter shutdown), record on the caller's thread."""
        try:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(target=_work, args=(weakref.ref(self),), name="gateway_otel-metrics")
                    thread.daemon = True
                    thread.start()
                    self._thread = thread
        except RuntimeError:
            self._wake.clear()
            self.flush()

    def _record(self, item: Measurements) -> None:
        key, duration, first_chunk, per_chunk, input_tokens, output_tokens, cost, context = item
        attrs, input_attrs, output_attrs = self.attributes(key)
        kwargs = {"context": context} if self._with_context and context is not None else {}
        instruments = self.instruments
        instruments.duration.record(duration, attrs, **kwargs)
        if first_chunk is not None:
            instruments.time_to_first_chunk.record(first_chunk, attrs, **kwargs)
        if per_chunk is not None:
            instruments.time_per_output_chunk.record(per_chunk, attrs, **kwargs)
        if input_tokens is not None:
            instruments.tokens.record(input_tokens, input_attrs, **kwargs)
        if output_tokens is not None:
            instruments.tokens.record(output_tokens, output_attrs, **kwargs)
        source = GATEWAY
        if isinstance(cost, tuple):  # the call reported no cost: priced here, off the caller's thread
            cost, source = price(cost), PRICE_TABLE
        if cost:  # a free call adds nothing to the total
            instruments.cost.add(cost, self.cost_attributes(attrs, source), **kwargs)

    def cost_attributes(self, attrs: dict[str, Any], source: str) -> dict[str, Any]:
        """A cost's attributes: the call's, and where the cost came from (`gateway.cost.source`)."""
        return {**attrs, SOURCE: source}

    def attributes(self, key: tuple[Any, ...]) -> tuple[dict[str, Any], ...]:
        """The attributes of every measurement, then with `gen_ai.token.type` input and output, for one `key`
        (the values of `METRIC_ATTRIBUTES`). Built once per distinct key and shared: never mutated."""
        try:
            cached = self._attributes.get(key)
        except TypeError:  # an unhashable value from an odd response: built, not cached
            return _metric_attributes(key)
        if cached is None:
            cached = _metric_attributes(key)
            if len(self._attributes) >= _CACHE_SIZE:
                self._attributes.clear()
            self._attributes[key] = cached
        return cached


_LIVE: weakref.WeakSet[MetricRecorder] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def _fresh_live_lock() -> None:
    """In a forked child: a lock another thread of the parent held at the fork would never be released."""
    global _LIVE_LOCK
    _LIVE_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_fresh_live_lock)


def _record_queued(options: CallbackOptions) -> Iterable[Observation]:
    """The collection's callback: every live recorder records what it holds queued, before the readers read."""
    with _LIVE_LOCK:
        recorders = list(_LIVE)
    for recorder in recorders:
        recorder.flush()
    return ()


def _work(ref: weakref.ref[MetricRecorder]) -> None:
    """The worker: sleeps until `put` wakes it (`_WAKE_AT` calls queued), records the queue, sleeps again; ends with
    its recorder. The event is cleared before recording: a call queued meanwhile is recorded now or wakes it again."""
    while True:
        recorder = ref()
        if recorder is None or recorder._closed:
            return
        wake = recorder._wake
        del recorder  # not kept alive by its own thread while waiting
        if not wake.wait(timeout=60.0):
            continue
        wake.clear()
        recorder = ref()
        if recorder is None:
            return
        try:
            recorder.flush(yielding=True)
        except Exception:  # pragma: no cover - flush guards each record
            internal_error("metrics worker")
        del recorder


def _forked(ref: weakref.ref[MetricRecorder]) -> Any:
    def after_in_child() -> None:
        """The child starts empty: what the parent queued is the parent's to record."""
        recorder = ref()
        if recorder is not None:
            recorder._pending.clear()
            recorder._reset()

    return after_in_child


def _metric_attributes(key: tuple[Any, ...]) -> tuple[dict[str, Any], ...]:
    attrs = {name: value for name, value in zip(METRIC_ATTRIBUTES, key, strict=True) if value is not None}
    return attrs, {**attrs, "gen_ai.token.type": "input"}, {**attrs, "gen_ai.token.type": "output"}


def _takes_context(record: Any) -> bool:
    """Whether this API's `record` takes `context=` (opentelemetry-api 1.28 and later): exemplars then link to the
    span that was current when the call ended, as they would have had the measurement been recorded then."""
    try:
        return "context" in inspect.signature(record).parameters
    except (TypeError, ValueError):
        return False
