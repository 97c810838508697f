"""Metrics are recorded off the caller's path (`_metrics.MetricRecorder`): late is fine, lost is not.

A call queues its measurements; every collection of the meter provider records what is still queued first; a worker
thread records the queue whenever it reaches `_WAKE_AT` calls. These tests hold the worker back (a queue that never
fills) so that they see what the collection itself does, and check the exact values that reach a reader, an exporter
at shutdown, and an exporter at the process's exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider

import gateway_otel
from conftest import Captured, make_client, metric_points
from gateway_otel.instrumentation import GatewayInstrumentor, _metrics
from otlp_receiver import OtlpReceiver

MODEL = "openai/gpt-4o-mini"
KEY = ("chat", "openrouter", MODEL, "openrouter.ai", 443, MODEL, "OpenAI", None)
ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openrouter",
    "gen_ai.request.model": MODEL,
    "server.address": "openrouter.ai",
    "server.port": 443,
    "gen_ai.response.model": MODEL,
    "gateway.upstream.provider": "OpenAI",
}


@pytest.fixture
def worker_held_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker is never woken: what the tests see is the collection's doing."""
    monkeypatch.setattr(_metrics, "_WAKE_AT", 1_000_000)


class KeepingExporter(MetricExporter):
    """Keeps every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[Any] = []

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def _recorder() -> _metrics.MetricRecorder:
    recorder = GatewayInstrumentor()._recorder
    assert recorder is not None
    return recorder


def test_a_collection_records_what_the_calls_queued(worker_held_back: None, telemetry: Captured, sim: Any) -> None:
    reply = make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "one"}])
    assert len(_recorder()._pending) == 1  # queued, not recorded, when the call returned
    metrics = telemetry.metrics()
    assert set(metrics) == {"gen_ai.client.operation.duration", "gen_ai.client.token.usage", "gateway.client.cost"}
    [duration] = metrics["gen_ai.client.operation.duration"]
    assert (duration.count, duration.attributes) == (1, {**ATTRIBUTES, "gen_ai.response.model": reply.model})
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in metrics["gen_ai.client.token.usage"]}
    assert tokens == {"input": reply.usage.prompt_tokens, "output": reply.usage.completion_tokens}
    [cost] = metrics["gateway.client.cost"]
    assert cost.value == pytest.approx(reply.usage.cost)
    assert cost.attributes == {**ATTRIBUTES, "gen_ai.response.model": reply.model, "gateway.cost.source": "gateway"}
    assert len(_recorder()._pending) == 0
    assert telemetry.metrics()["gen_ai.client.operation.duration"][0].count == 1  # recorded once, not per collection


def test_instrumenting_again_with_the_same_meter_provider_still_records_at_collection(
    worker_held_back: None, sim: Any
) -> None:
    """The SDK keeps the first observable instrument of a name: its callback must serve the second recorder too."""
    reader = InMemoryMetricReader()
    meter_provider, tracer_provider = MeterProvider(metric_readers=[reader]), TracerProvider()
    counts = []
    try:
        for _ in range(2):
            gateway_otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "one"}])
            [duration] = metric_points(reader.get_metrics_data())["gen_ai.client.operation.duration"]
            counts.append(duration.count)
            gateway_otel.uninstrument()
    finally:
        gateway_otel.uninstrument()
    assert counts == [1, 2]


class _Instrument:
    """Stands in for an SDK instrument: keeps what is recorded, and on which thread."""

    def __init__(self, name: str, recorded: list[tuple[str, float, dict[str, Any], str]]) -> None:
        self.name, self.recorded = name, recorded

    def record(self, value: float, attributes: dict[str, Any], context: Any = None) -> None:
        self.recorded.append((self.name, value, attributes, threading.current_thread().name))

    add = record


def _stub_recorder(recorded: list[tuple[str, float, dict[str, Any], str]]) -> _metrics.MetricRecorder:
    class Instruments:
        duration, tokens, cost = _Instrument("duration", recorded), _Instrument("tokens", recorded), None
        time_to_first_chunk = _Instrument("ttfc", recorded)
        time_per_output_chunk = _Instrument("per_chunk", recorded)

    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("test")
    return _metrics.MetricRecorder(meter, Instruments())  # type: ignore[arg-type]


def _wait_until(condition: Any) -> None:
    """Waits for a condition the worker thread makes true: looks again at each switch of threads, fails after 30 s."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the worker did not record"
        time.sleep(0)


def test_the_worker_records_on_its_own_thread_once_the_queue_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_metrics, "_WAKE_AT", 3)
    recorded: list[tuple[str, float, dict[str, Any], str]] = []
    recorder = _stub_recorder(recorded)
    for duration in (0.25, 0.5):
        recorder.put((KEY, duration, None, None, None, None, 0.0, None))
    # below the mark a call only queues: no thread, no wake-up
    assert (len(recorder._pending), recorder._thread, recorder._wake.is_set()) == (2, None, False)
    recorder.put((KEY, 0.75, 0.05, 0.01, 58, 100, 0.0, None))  # the third call wakes the worker
    _wait_until(lambda: len(recorded) == 7)
    worker = "gateway_otel-metrics"
    assert recorded == [
        ("duration", 0.25, ATTRIBUTES, worker),
        ("duration", 0.5, ATTRIBUTES, worker),
        ("duration", 0.75, ATTRIBUTES, worker),
        ("ttfc", 0.05, ATTRIBUTES, worker),
        ("per_chunk", 0.01, ATTRIBUTES, worker),
        ("tokens", 58, {**ATTRIBUTES, "gen_ai.token.type": "input"}, worker),
        ("tokens", 100, {**ATTRIBUTES, "gen_ai.token.type": "output"}, worker),
    ]  # a cost of 0 adds nothing, as before
    _wait_until(lambda: not recorder._wake.is_set())  # back to sleep, and woken again by the next full queue
    for duration in (1.0, 1.25, 1.5):
        recorder.put((KEY, duration, None, None, None, None, 0.0, None))
    _wait_until(lambda: len(recorded) == 10)
    assert recorded[7:] == [("duration", d, ATTRIBUTES, worker) for d in (1.0, 1.25, 1.5)]
    assert len(recorder._pending) == 0
    recorder.close()


def test_the_worker_lets_the_callers_thread_run_between_two_calls_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    """After each call's measurements the worker sleeps 0 s, which releases the GIL: a CPU-bound caller waits one
    call's recording for it, not the interpreter's 5 ms switch interval. A collection records without pausing."""
    recorded: list[tuple[str, float, dict[str, Any], str]] = []

    class Clock:
        @staticmethod
        def sleep(seconds: float) -> None:
            recorded.append(("sleep", seconds, {}, threading.current_thread().name))

    monkeypatch.setattr(_metrics, "time", Clock)
    monkeypatch.setattr(_metrics, "_WAKE_AT", 2)
    recorder = _stub_recorder(recorded)
    for duration in (0.25, 0.5):
        recorder.put((KEY, duration, None, None, None, None, None, None))
    _wait_until(lambda: len(recorded) == 4)
    worker = "gateway_otel-metrics"
    assert recorded == [
        ("duration", 0.25, ATTRIBUTES, worker),
        ("sleep", 0, {}, worker),
        ("duration", 0.5, ATTRIBUTES, worker),
        ("sleep", 0, {}, worker),
    ]
    recorder._pending.append((KEY, 0.75, None, None, None, None, None, None))
    recorder.flush()  # what a collection runs
    assert recorded[4:] == [("duration", 0.75, ATTRIBUTES, threading.current_thread().name)]
    recorder.close()


def _holding(lock: Any) -> Any:
    """Another thread holds `lock` until the returned event is set (a recording in progress elsewhere)."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            release.wait(30)

    threading.Thread(target=hold, daemon=True).start()
    assert taken.wait(30)
    return release


def test_a_worker_that_falls_far_behind_leaves_the_recording_to_the_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays bounded: past `_MAX_PENDING` queued calls (a worker left behind) a call records `_WAKE_AT` of
    them itself — unless another thread is recording already: then it goes on at once."""
    monkeypatch.setattr(_metrics, "_WAKE_AT", 2)
    monkeypatch.setattr(_metrics, "_MAX_PENDING", 4)
    recorded: list[tuple[str, float, dict[str, Any], str]] = []
    recorder = _stub_recorder(recorded)
    recorder._thread = threading.current_thread()  # a worker that never runs
    for n in range(4):
        recorder.put((KEY, float(n), None, None, None, None, None, None))
    assert (recorder._wake.is_set(), len(recorder._pending), recorded) == (True, 4, [])
    recorder.put((KEY, 4.0, None, None, None, None, None, None))  # the fifth: more than 4 behind
    here = threading.current_thread().name
    assert (len(recorder._pending), recorded) == (3, [("duration", float(n), ATTRIBUTES, here) for n in range(2)])
    recorder.put((KEY, 5.0, None, None, None, None, None, None))
    assert (len(recorder._pending), len(recorded)) == (4, 2)  # not past the bound: queued only
    release = _holding(recorder._lock)
    recorder.put((KEY, 6.0, None, None, None, None, None, None))  # past it, while another thread records
    assert (len(recorder._pending), len(recorded)) == (5, 2)
    release.set()
    recorder.flush()
    assert [value for _, value, _, _ in recorded] == [float(n) for n in range(7)]


def test_calls_from_many_threads_are_each_recorded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 threads queue 500 calls each while another collects without pause; the worker wakes every 7 calls."""
    monkeypatch.setattr(_metrics, "_WAKE_AT", 7)
    monkeypatch.setattr(_metrics, "_MAX_PENDING", 50)
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    recorder = _metrics.MetricRecorder(meter, _metrics.Instruments(meter))
    done = threading.Event()

    def call() -> None:
        for n in range(500):
            recorder.put((KEY, n / 1000, None, None, 1, None, None, None))

    def collect() -> None:
        while not done.is_set():
            reader.get_metrics_data()

    collector = threading.Thread(target=collect)
    callers = [threading.Thread(target=call) for _ in range(8)]
    collector.start()
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    done.set()
    collector.join()
    points = metric_points(reader.get_metrics_data())
    [duration] = points["gen_ai.client.operation.duration"]
    [tokens] = points["gen_ai.client.token.usage"]
    assert (duration.count, duration.sum, tokens.sum) == (4000, pytest.approx(8 * sum(range(500)) / 1000), 4000)
    recorder.close()


def test_a_recording_that_collects_does_not_wait_for_itself() -> None:
    """An instrument whose recording triggers a collection (which records what is queued first)."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    instruments = _metrics.Instruments(meter)
    histogram, collected = instruments.duration, []

    class Collecting:
        def record(self, value: float, attributes: Any, **kwargs: Any) -> None:
            histogram.record(value, attributes, **kwargs)
            if not collected:  # once: a collection from within that collection would wait for the SDK's own lock
                collected.append(value)
                reader.get_metrics_data()

    instruments.duration = Collecting()  # type: ignore[assignment]
    recorder = _metrics.MetricRecorder(meter, instruments)
    for n in range(3):
        recorder.put((KEY, float(n), None, None, None, None, None, None))
    flushing = threading.Thread(target=recorder.flush, daemon=True)
    flushing.start()
    flushing.join(30)
    assert not flushing.is_alive(), "the recording waited for itself"
    [duration] = metric_points(reader.get_metrics_data())["gen_ai.client.operation.duration"]
    assert (duration.count, len(recorder._pending)) == (3, 0)


def test_shutdown_records_what_is_still_queued(worker_held_back: None, sim: Any) -> None:
    exporter = KeepingExporter()
    meter_provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)]
    )
    gateway_otel.instrument(tracer_provider=TracerProvider(), meter_provider=meter_provider)
    try:
        client = make_client(sim)
        for _ in range(3):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "one"}])
        assert len(_recorder()._pending) == 3
        meter_provider.shutdown()
    finally:
        gateway_otel.uninstrument()
    [data] = exporter.batches
    [duration] = metric_points(data)["gen_ai.client.operation.duration"]
    assert duration.count == 3


def test_uninstrument_records_what_is_queued_and_later_ends_record_at_once(
    worker_held_back: None, telemetry: Captured, sim: Any
) -> None:
    make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "one"}])
    recorder = _recorder()
    gateway_otel.uninstrument()
    assert len(recorder._pending) == 0
    recorder.put((KEY, 0.5, None, None, None, None, None, None))  # a stream that ends after uninstrument()
    assert len(recorder._pending) == 0
    assert telemetry.metrics()["gen_ai.client.operation.duration"][0].count == 2


def test_uninstrument_stops_the_worker(monkeypatch: pytest.MonkeyPatch, telemetry: Captured) -> None:
    monkeypatch.setattr(_metrics, "_WAKE_AT", 1)
    recorder = _recorder()
    recorder.put((KEY, 0.5, None, None, None, None, None, None))  # starts the worker
    worker = recorder._thread
    assert worker is not None
    gateway_otel.uninstrument()
    worker.join(30)
    assert not worker.is_alive()
    assert telemetry.metrics()["gen_ai.client.operation.duration"][0].count == 1


def test_exemplars_still_point_at_the_span_current_when_the_call_ended(telemetry: Captured, sim: Any) -> None:
    """Every measurement of a streamed call (its 6 records), recorded later on another thread."""
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request handler") as parent:
        stream = make_client(sim).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "one"}], stream=True
        )
        for _ in stream:
            pass
    metrics = telemetry.metrics()
    exemplars = {
        (name, point.attributes.get("gen_ai.token.type")): [e.span_id for e in point.exemplars]
        for name, points in metrics.items()
        for point in points
    }
    parent_id = parent.get_span_context().span_id
    assert exemplars == {
        ("gen_ai.client.operation.duration", None): [parent_id],
        ("gen_ai.client.operation.time_to_first_chunk", None): [parent_id],
        ("gen_ai.client.operation.time_per_output_chunk", None): [parent_id],
        ("gen_ai.client.token.usage", "input"): [parent_id],
        ("gen_ai.client.token.usage", "output"): [parent_id],
        ("gateway.client.cost", None): [parent_id],
    }


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_forked_child_starts_with_an_empty_queue_and_no_worker(
    monkeypatch: pytest.MonkeyPatch, telemetry: Captured
) -> None:
    """A real fork, taken while the parent's worker holds the lock mid-recording: the child starts empty, with locks
    of its own, and records its own calls."""
    monkeypatch.setattr(_metrics, "_WAKE_AT", 2)
    recorder = _recorder()
    recorder._thread = threading.current_thread()  # the parent's worker, not running here
    for _ in range(3):
        recorder.put((KEY, 0.5, None, None, None, None, None, None))
    assert recorder._wake.is_set()
    release = _holding(recorder._lock)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        signal.alarm(20)  # a child stuck on the parent's held lock ends, and its report with it
        os.write(write, repr((len(recorder._pending), recorder._thread, recorder._wake.is_set())).encode())
        recorder.put((KEY, 1.5, None, None, None, None, None, None))
        recorder.flush()
        os.write(write, f" {len(recorder._pending)}".encode())
        os._exit(0)
    release.set()
    os.close(write)
    with os.fdopen(read) as pipe:
        report = pipe.read()
    os.waitpid(child, 0)
    assert report == "(0, None, False) 0"
    assert len(recorder._pending) == 3  # the parent's own queue is untouched


def test_where_no_thread_can_start_the_caller_records(monkeypatch: pytest.MonkeyPatch, telemetry: Captured) -> None:
    """At interpreter shutdown `Thread.start()` raises RuntimeError: the measurement is recorded at once instead."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    recorder = _recorder()
    monkeypatch.setattr(_metrics, "_WAKE_AT", 1)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    recorder.put((KEY, 0.5, None, None, 58, 100, None, None))
    assert (len(recorder._pending), recorder._thread) == (0, None)
    monkeypatch.undo()
    [duration] = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert (duration.count, duration.sum, duration.attributes) == (1, 0.5, ATTRIBUTES)


APP = textwrap.dedent(
    """
    import json, sys
    import openai, gateway_otel
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from gateway_otel.instrumentation import _metrics
    from gateway_otel.simulator import http_client

    _metrics._WAKE_AT = 1_000_000  # the worker never records here: only the exit does

    class Printer(MetricExporter):
        def export(self, data, timeout_millis=10_000, **kwargs):
            for rm in data.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        for p in m.data.data_points:
                            value = getattr(p, "count", None)  # histograms; the cost counter: its sum, > 0
                            value = value if value is not None else p.value > 0
                            print(json.dumps([m.name, dict(p.attributes).get("gen_ai.token.type"), value]))
            return MetricExportResult.SUCCESS
        def force_flush(self, timeout_millis=10_000):
            return True
        def shutdown(self, timeout_millis=30_000, **kwargs):
            pass

    meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(Printer(), 3_600_000)])
    gateway_otel.instrument(tracer_provider=TracerProvider(), meter_provider=meter_provider)
    client = openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="sk-or-test", http_client=http_client(),
                           max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    print("CALLS DONE", flush=True)
    """
)


def test_the_process_exit_records_and_exports_what_is_queued(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(APP)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "CALLS DONE"
    assert sorted(lines[1:]) == [
        '["gateway.client.cost", null, true]',
        '["gen_ai.client.operation.duration", null, 2]',
        '["gen_ai.client.token.usage", "input", 2]',
        '["gen_ai.client.token.usage", "output", 2]',
    ]


BUSY_APP = textwrap.dedent(
    """
    import openai, gateway_otel
    from gateway_otel.simulator import http_client

    gateway_otel.instrument()  # the destination from the environment: OTLP to the test's receiver
    client = openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="sk-or-test", http_client=http_client(),
                           max_retries=0)
    for _ in range(300):  # the worker is woken twice (128 queued calls each time); the exit records the other 44
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    """
)


def test_the_default_set_up_exports_every_calls_metrics_when_the_process_ends(tmp_path: Path) -> None:
    """As a user runs it: `instrument()` with an OTLP destination, 300 calls, no shutdown of its own."""
    script = tmp_path / "app.py"
    script.write_text(BUSY_APP)
    with OtlpReceiver() as receiver:
        env = {
            **os.environ,
            "GATEWAY_OTEL_DESTINATIONS": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env
        )
        metrics = [(path, body) for path, _, body in receiver.requests if path == "/v1/metrics"]
    assert done.returncode == 0, done.stderr
    counts: dict[tuple[str, Any], int] = {}
    for _, body in metrics:
        request = ExportMetricsServiceRequest.FromString(body)
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.histogram.data_points:
                        token_type = {a.key: a.value.string_value for a in point.attributes}.get("gen_ai.token.type")
                        key = (metric.name, token_type)
                        counts[key] = counts.get(key, 0) + point.count
    assert counts == {
        ("gen_ai.client.operation.duration", None): 300,
        ("gen_ai.client.token.usage", "input"): 300,
        ("gen_ai.client.token.usage", "output"): 300,
    }
