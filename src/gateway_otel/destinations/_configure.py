"""`configure()`: tracer and meter providers that export to the chosen destinations.

`instrument()` calls it only when the application has set no providers of its own. Destinations are named in the
`destinations` argument or in `GATEWAY_OTEL_DESTINATIONS` (comma-separated); the default is `otlp`, which takes
its endpoint, headers and protocol from the standard `OTEL_EXPORTER_OTLP_*` variables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from .._settings import ConfigurationError

logger = logging.getLogger("gateway_otel")

_PROTOCOLS = ("http/protobuf", "grpc")


def _otlp_protocol(env: Mapping[str, str], signal: str) -> str:
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        raw = env.get(name)
        if raw is not None and raw.strip():
            value = raw.strip().lower()
            if value not in _PROTOCOLS:
                raise ConfigurationError(f"{name}={raw!r} is not valid: expected one of {', '.join(_PROTOCOLS)}")
            return value
    return "http/protobuf"


def _otlp(env: Mapping[str, str]) -> tuple[SpanExporter, MetricExporter]:
    if _otlp_protocol(env, "TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

        spans: SpanExporter = GrpcSpans()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans

        spans = HttpSpans()
    if _otlp_protocol(env, "METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics

        metric_exporter: MetricExporter = GrpcMetrics()
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics

        metric_exporter = HttpMetrics()
    return spans, metric_exporter


def _console(env: Mapping[str, str]) -> tuple[SpanExporter, MetricExporter]:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter(), ConsoleMetricExporter()


_PRESETS: dict[str, Callable[[Mapping[str, str]], tuple[SpanExporter, MetricExporter]]] = {
    "otlp": _otlp,
    "console": _console,
}
DESTINATION_NAMES = tuple(_PRESETS)


@dataclass(frozen=True)
class Providers:
    """The providers `configure()` built; `shutdown()` flushes and stops them."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    destinations: tuple[str, ...]

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _destination_names(destinations: str | Sequence[str] | None, env: Mapping[str, str]) -> tuple[str, ...]:
    source = "destinations"
    if destinations is None:
        source, destinations = "GATEWAY_OTEL_DESTINATIONS", env.get("GATEWAY_OTEL_DESTINATIONS") or "otlp"
    names = destinations.split(",") if isinstance(destinations, str) else list(destinations)
    cleaned = tuple(dict.fromkeys(str(n).strip().lower() for n in names if str(n).strip()))
    unknown = [n for n in cleaned if n not in _PRESETS]
    if unknown or not cleaned:
        raise ConfigurationError(
            f"{source}={destinations!r} is not valid: expected a comma-separated list of {', '.join(_PRESETS)}"
        )
    return cleaned


def configure(
    destinations: str | Sequence[str] | None = None,
    *,
    resource: Resource | None = None,
    set_global: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Providers:
    """Build SDK tracer and meter providers exporting to `destinations` (default: `GATEWAY_OTEL_DESTINATIONS`,
    else `otlp`), and make them the global providers unless `set_global=False`."""
    env = os.environ if environ is None else environ
    names = _destination_names(destinations, env)
    resource = resource or Resource.create()
    tracer_provider = TracerProvider(resource=resource)
    readers = []
    for name in names:
        span_exporter, metric_exporter = _PRESETS[name](env)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        readers.append(PeriodicExportingMetricReader(metric_exporter))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    logger.info("gateway_otel: exporting traces and metrics to %s", ", ".join(names))
    return Providers(tracer_provider, meter_provider, names)
