"""Metrics are recorded off the caller's path (`_metrics.MetricRecorder`): late is fine, lost is not.

A call queues its measurements; a worker thread records them; every collection of the meter provider records what
is still queued first. These tests hold the worker back (its batch pause made a minute long) so that they see what
the collection itself does, and check the exact values that reach a reader, an exporter at shutdown, and an
exporter at the process's exit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest
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
    """The worker wakes, then pauses a minute before recording: what the tests see is the collection's doing."""
    monkeypatch.setattr(_metrics, "_BATCH_SECONDS", 60.0)


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


def test_the_worker_records_on_its_own_thread_without_any_collection() -> None:
    recorded: list[tuple[str, float, dict[str, Any], str]] = []
    done = threading.Event()

    class Instrument:
        def __init__(self, name: str) -> None:
            self.name = name

        def record(self, value: float, attributes: dict[str, Any], context: Any = None) -> None:
            recorded.append((self.name, value, attributes, threading.current_thread().name))
            if self.name == "tokens" and attributes["gen_ai.token.type"] == "output":
                done.set()

        add = record

    class Instruments:
        duration, tokens, cost = Instrument("duration"), Instrument("tokens"), Instrument("cost")
        time_to_first_chunk, time_per_output_chunk = Instrument("ttfc"), Instrument("per_chunk")

    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("test")
    recorder = _metrics.MetricRecorder(meter, Instruments())  # type: ignore[arg-type]
    recorder.put((KEY, 0.25, 0.05, 0.01, 58, 100, 0.0, None))
    assert done.wait(timeout=30)
    worker = "gateway_otel-metrics"
    assert recorded == [
        ("duration", 0.25, ATTRIBUTES, worker),
        ("ttfc", 0.05, ATTRIBUTES, worker),
        ("per_chunk", 0.01, ATTRIBUTES, worker),
        ("tokens", 58, {**ATTRIBUTES, "gen_ai.token.type": "input"}, worker),
        ("tokens", 100, {**ATTRIBUTES, "gen_ai.token.type": "output"}, worker),
    ]  # a cost of 0 adds nothing, as before
    recorder.close()


class _CountingEvent(threading.Event):
    """An event that counts its `set()` calls and can run something when it is cleared."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0
        self.on_clear: list[Any] = []

    def set(self) -> None:
        self.sets += 1
        super().set()

    def clear(self) -> None:
        super().clear()
        while self.on_clear:
            self.on_clear.pop()()


def _scripted_rounds(monkeypatch: pytest.MonkeyPatch, script: dict[int, Any]) -> list[int]:
    """The worker's pauses as numbered rounds (no real sleeping): `script[n]` runs during round n's pause."""
    rounds: list[int] = []

    class Clock:
        @staticmethod
        def sleep(seconds: float) -> None:
            rounds.append(len(rounds) + 1)
            script.get(len(rounds), lambda: None)()

    monkeypatch.setattr(_metrics, "time", Clock)
    monkeypatch.setattr(_metrics, "_IDLE_ROUNDS", 3)
    return rounds


def test_while_calls_keep_coming_the_worker_looks_on_its_own_and_a_call_wakes_nothing(
    monkeypatch: pytest.MonkeyPatch, telemetry: Captured
) -> None:
    recorder = _recorder()
    recorder._thread = threading.current_thread()  # the worker is this test's thread: `put` starts none
    wake = recorder._wake = _CountingEvent()
    recorder.put((KEY, 0.5, None, None, None, None, None, None))  # the first call wakes the worker
    rounds = _scripted_rounds(monkeypatch, {2: lambda: recorder.put((KEY, 1.5, None, None, None, None, None, None))})
    assert _metrics._record_while_busy(weakref.ref(recorder), wake) is True
    # round 1 records the first call, round 2 the second, rounds 3-5 find nothing: back to waiting
    assert (rounds, wake.sets, wake.is_set(), len(recorder._pending)) == ([1, 2, 3, 4, 5], 1, False, 0)
    [duration] = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert (duration.count, duration.sum) == (2, 2.0)


def test_a_call_queued_as_the_worker_goes_idle_is_recorded_before_it_waits(
    monkeypatch: pytest.MonkeyPatch, telemetry: Captured
) -> None:
    recorder = _recorder()
    recorder._thread = threading.current_thread()
    wake = recorder._wake = _CountingEvent()
    recorder.put((KEY, 0.5, None, None, None, None, None, None))
    # the call comes after the worker saw an empty queue and before it stopped looking: it saw the event still set
    wake.on_clear.append(lambda: recorder._pending.append((KEY, 1.5, None, None, None, None, None, None)))
    rounds = _scripted_rounds(monkeypatch, {})
    assert _metrics._record_while_busy(weakref.ref(recorder), wake) is True
    assert (rounds, wake.is_set(), len(recorder._pending)) == ([1, 2, 3, 4, 5, 6, 7, 8], False, 0)
    [duration] = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert (duration.count, duration.sum) == (2, 2.0)


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


def test_exemplars_still_point_at_the_span_current_when_the_call_ended(telemetry: Captured, sim: Any) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request handler") as parent:
        make_client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "one"}])
    [duration] = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert [e.span_id for e in duration.exemplars] == [parent.get_span_context().span_id]


def test_a_forked_child_starts_with_an_empty_queue_and_no_worker(worker_held_back: None, telemetry: Captured) -> None:
    recorder = _recorder()
    recorder.put((KEY, 0.5, None, None, None, None, None, None))
    assert recorder._thread is not None
    _metrics._forked(weakref.ref(recorder))()  # what os.register_at_fork runs in the child
    assert (len(recorder._pending), recorder._thread, recorder._wake.is_set()) == (0, None, False)


def test_where_no_thread_can_start_the_caller_records(monkeypatch: pytest.MonkeyPatch, telemetry: Captured) -> None:
    """At interpreter shutdown `Thread.start()` raises RuntimeError: the measurement is recorded at once instead."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    recorder = _recorder()
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

    _metrics._BATCH_SECONDS = 60.0  # the worker never records here: only the exit does

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
