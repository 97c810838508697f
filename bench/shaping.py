"""What a backend's shaping costs next to gateway-otel's own per-call overhead, in one process.

`python bench/shaping.py` (in a venv with gateway-otel installed, e.g. `.venvs/openai3/bin/python`): times, for
a chat call and a stream through the simulator's in-process transport, (a) the call uninstrumented and instrumented
at default settings (content and metrics on, an SDK pipeline like run.py's), interleaved in rounds, giving
gateway-otel's overhead; (b) `openobserve_attributes` over the exported
span, which the `openobserve` destination runs once per span on its exporting thread (never on the request path).
Prints the shaping's cost as a share of the overhead, per workload.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import gateway_otel
from gateway_otel.destinations._shaping import openobserve_attributes
from gateway_otel.simulator import GatewaySimulator, http_client

ROUNDS, CALLS = 15, 40
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is OpenTelemetry? " * 8}]


def _client() -> Any:
    sim = GatewaySimulator()
    return openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="sk-or-bench", http_client=http_client(sim))


def _workloads(client: Any) -> dict[str, Any]:
    def chat() -> None:
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES, temperature=0.2)

    def stream() -> None:
        for _ in client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES, stream=True):
            pass

    return {"chat": chat, "stream": stream}


def _per_call(work: Any) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        work()
    return (time.perf_counter() - started) / CALLS * 1e6


def main() -> None:
    client = _client()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])  # default settings: metrics on, as in run.py
    results = {}
    for name, work in _workloads(client).items():
        overheads = []
        for _ in range(ROUNDS):  # interleaved: the machine's swings hit both sides of a round alike
            bare = _per_call(work)
            gateway_otel.instrument(tracer_provider=provider, meter_provider=meters)
            traced = _per_call(work)
            gateway_otel.uninstrument()
            overheads.append(traced - bare)
        span = exporter.get_finished_spans()[-1]
        attributes, start = dict(span.attributes), span.start_time
        shaped = openobserve_attributes(attributes, start)
        assert "gen_ai.usage.cost.input" in shaped and '"content"' in shaped["gen_ai.output.messages"]
        runs = 2000
        started = time.perf_counter()
        for _ in range(runs):
            openobserve_attributes(attributes, start)
        shaping = (time.perf_counter() - started) / runs * 1e6
        exporter.clear()
        results[name] = (statistics.median(overheads), shaping)
    print("| workload | gateway-otel overhead, µs (median of rounds) | OpenObserve shaping per span, µs | share |")
    print("| --- | --- | --- | --- |")
    for name, (overhead, shaping) in results.items():
        print(f"| {name} | {overhead:,.0f} | {shaping:,.1f} | {shaping / overhead:.1%} |")


if __name__ == "__main__":
    main()
