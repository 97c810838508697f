"""`configure()`: tracer and meter providers that export to the chosen destinations.

`instrument()` calls it only when the application has set no providers of its own. Destinations are named in the
`destinations` argument or in `GATEWAY_OTEL_DESTINATIONS` (comma-separated); the default is `otlp`, configured by
the standard `OTEL_EXPORTER_OTLP_*` variables. Each destination gets its own `DestinationProcessor`, so a slow or
dead backend never delays the application or another destination. Every variable is read and checked here, once:
a bad value fails now, with its name, instead of at the first export.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from .._settings import ConfigurationError
from ._processor import DestinationProcessor, GuardedMetricExporter

logger = logging.getLogger("gateway_otel")

_PROTOCOLS = ("http/protobuf", "grpc")
_HTTP_PATHS = {"TRACES": "v1/traces", "METRICS": "v1/metrics"}


@dataclass(frozen=True)
class OtlpTarget:
    """Where and how one OTLP signal is sent, as read from the environment."""

    protocol: str
    endpoint: str
    headers: dict[str, str]
    timeout: float


def _first(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        raw = env.get(name)
        if raw is not None and raw.strip():
            return name, raw.strip()
    return None


def _parse_headers(name: str, raw: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(
                f"{name} is not valid: expected comma-separated key=value pairs (e.g. 'key1=value1,key2=value2')"
            )
        headers[unquote(key.strip()).lower()] = unquote(value.strip())
    return headers


def otlp_target(env: Mapping[str, str], signal: str) -> OtlpTarget:
    """The OTLP settings for `signal` (`TRACES` or `METRICS`): signal-specific variable first, then the general one."""
    found = _first(env, f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = found[1].lower() if found else "http/protobuf"
    if found and protocol not in _PROTOCOLS:
        raise ConfigurationError(f"{found[0]}={found[1]!r} is not valid: expected one of {', '.join(_PROTOCOLS)}")
    specific = _first(env, f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    general = _first(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    source, endpoint = specific or general or ("", "http://localhost:4317" if protocol == "grpc" else "")
    if protocol != "grpc" and endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"{source}={endpoint!r} is not valid: expected an http:// or https:// URL such as http://localhost:4318"
        )
    if protocol != "grpc" and not specific:
        endpoint = f"{(endpoint or 'http://localhost:4318').rstrip('/')}/{_HTTP_PATHS[signal]}"
    header_source = _first(env, f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    headers = _parse_headers(*header_source) if header_source else {}
    timeout_source = _first(env, f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    timeout = 10.0
    if timeout_source:
        try:
            timeout = float(timeout_source[1])
        except ValueError:
            timeout = -1.0
        if timeout <= 0:
            raise ConfigurationError(
                f"{timeout_source[0]}={timeout_source[1]!r} is not valid: expected a number of seconds greater than 0"
            )
    return OtlpTarget(protocol, endpoint, headers, timeout)


def _otlp_span_exporter(target: OtlpTarget) -> SpanExporter:
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

        return GrpcSpans(endpoint=target.endpoint, headers=target.headers or None, timeout=target.timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans

    return HttpSpans(endpoint=target.endpoint, headers=target.headers, timeout=target.timeout)


def _otlp_metric_exporter(target: OtlpTarget) -> MetricExporter:
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics

        return GrpcMetrics(endpoint=target.endpoint, headers=target.headers or None, timeout=target.timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics

    return HttpMetrics(endpoint=target.endpoint, headers=target.headers, timeout=target.timeout)


def _otlp(env: Mapping[str, str]) -> tuple[SpanExporter, MetricExporter]:
    return _otlp_span_exporter(otlp_target(env, "TRACES")), _otlp_metric_exporter(otlp_target(env, "METRICS"))


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
    """The providers `configure()` built; `shutdown()` flushes and stops them within their timeouts."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    destinations: tuple[str, ...]
    processors: tuple[DestinationProcessor, ...] = ()

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per destination: spans exported, failed and dropped so far."""
        return {p.name: p.stats() for p in self.processors}

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown(
            timeout_millis=max((p.shutdown_timeout for p in self.processors), default=5) * 1000
        )


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
    max_queue_size: int = 2048,
    shutdown_timeout: float = 5.0,
) -> Providers:
    """Build SDK tracer and meter providers exporting to `destinations` (default: `GATEWAY_OTEL_DESTINATIONS`,
    else `otlp`), and make them the global providers unless `set_global=False`.

    Each destination has its own queue of `max_queue_size` spans; shutting down waits at most `shutdown_timeout`
    seconds per destination.
    """
    env = os.environ if environ is None else environ
    names = _destination_names(destinations, env)
    exporters = [(name, *_PRESETS[name](env)) for name in names]  # every setting checked before anything starts
    resource = resource or Resource.create()
    tracer_provider = TracerProvider(resource=resource)
    processors = []
    readers = []
    for name, span_exporter, metric_exporter in exporters:
        processor = DestinationProcessor(
            name, span_exporter, max_queue_size=max_queue_size, shutdown_timeout=shutdown_timeout
        )
        tracer_provider.add_span_processor(processor)
        processors.append(processor)
        guarded = GuardedMetricExporter(processor, metric_exporter)
        readers.append(PeriodicExportingMetricReader(guarded, export_timeout_millis=shutdown_timeout * 1000))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    logger.info("gateway_otel: exporting traces and metrics to %s", ", ".join(names))
    return Providers(tracer_provider, meter_provider, names, tuple(processors))
