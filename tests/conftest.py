"""Shared fixtures: in-memory span/metric exporters, an instrumented openai client over the gateway simulator."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from hypothesis import settings
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

import gateway_otel

# The real servers' session fixtures, registered here once: imported into several test modules, each module would
# get its own "session" instance (Phoenix started four times, the LiteLLM proxy twice).
from e2e_support import litellm_proxy  # noqa: F401
from gateway_otel import _internal
from gateway_otel._secrets import is_credential_name
from gateway_otel.simulator import GatewaySimulator, http_client
from phoenix_server import phoenix  # noqa: F401

API_KEY = "sk-or-v1-SENTINEL-0123456789abcdef"
OPENROUTER_URL = "https://openrouter.ai/api/v1"
OPENAI_MAJOR = int(openai.__version__.split(".")[0])

# Property tests: reproducible in CI (derandomized, with the failing example's blob printed), exploring locally.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")

# Instrumentation bugs must fail the tests instead of being logged and swallowed.
_internal.STRICT = True
# A test that falls back to the default destination (the local store) never writes into the user's data directory.
os.environ["GATEWAY_OTEL_LOCAL_PATH"] = os.path.join(tempfile.mkdtemp(prefix="gateway-otel-tests-"), "telemetry.db")


@dataclass
class Captured:
    """What a test reads back: the exported spans and metrics."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name → its data points."""
        return metric_points(self.reader.get_metrics_data())


def metric_points(data: Any) -> dict[str, list[Any]]:
    """Metric name → its data points, in metrics data as a reader returns it (None: nothing)."""
    out: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics if data else ():
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


@pytest.fixture(autouse=True)
def _credential_names_afresh() -> None:
    """Each test asks the credential-name rule itself, not the cache an earlier test filled: mutation testing
    (bench/mutate.py) runs a changed rule against the tests it saw reach the rule."""
    is_credential_name.cache_clear()


@pytest.fixture
def make_telemetry() -> Iterator[Any]:
    """Instrument with in-memory exporters and the given options; always uninstrumented afterwards."""

    def make(**options: Any) -> Captured:
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader])
        gateway_otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **options)
        return Captured(exporter, reader, tracer_provider)

    yield make
    gateway_otel.uninstrument()


@pytest.fixture
def telemetry(make_telemetry: Any) -> Captured:
    return make_telemetry()


@pytest.fixture
def sim() -> GatewaySimulator:
    return GatewaySimulator()


def chat_span(number: int, start_ns: int) -> ReadableSpan:
    """A finished chat span (ids `number`, 1 ms long) as an exporter or the store's writer receives it."""
    return ReadableSpan(
        name=f"chat m {number}",
        context=SpanContext(number, number, False, TraceFlags(1)),
        kind=SpanKind.CLIENT,
        attributes={"gen_ai.request.model": "m", "gen_ai.operation.name": "chat"},
        start_time=start_ns,
        end_time=start_ns + 1_000_000,
        resource=Resource.create({"service.name": "tests"}),
    )


def instrument_into(providers: Any) -> None:
    """`gateway_otel.instrument()` onto every provider `configure(set_global=False)` returned."""
    gateway_otel.instrument(
        tracer_provider=providers.tracer_provider,
        meter_provider=providers.meter_provider,
        logger_provider=providers.logger_provider,
    )


def make_client(
    sim: GatewaySimulator, *, asynchronous: bool = False, base_url: str = OPENROUTER_URL, **kwargs: Any
) -> Any:
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    kwargs.setdefault("max_retries", 0)
    return cls(base_url=base_url, api_key=API_KEY, http_client=http_client(sim, asynchronous=asynchronous), **kwargs)


def run(value: Any) -> Any:
    """Await `value` when a test drives the async client; the same test body serves both."""
    return asyncio.run(value) if asyncio.iscoroutine(value) else value
