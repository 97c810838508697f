"""`configure()`: tracer and meter providers that export to the chosen destinations.

`instrument()` calls it only when the application has set no providers of its own. Destinations are named in the
`destinations` argument or in `GATEWAY_OTEL_DESTINATIONS` (comma-separated); the default is `otlp` when the
standard `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set, else `local` (the SQLite store, announced once).
Variables come from the environment and from a `.env` file in the working directory (the environment wins). Each
destination gets its own `DestinationProcessor`, so a slow or dead backend never delays the application or another
destination. Every variable is read and checked here, once: a bad value fails now, with its name, instead of at
the first export.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from .._settings import ConfigurationError
from ._presets import PRESETS, Destination, resolve
from ._processor import DestinationProcessor, GuardedMetricExporter, private_log_exporter

logger = logging.getLogger("gateway_otel")

_PROTOCOLS = ("http/protobuf", "grpc")
_HTTP_PATHS = {"TRACES": "v1/traces", "METRICS": "v1/metrics", "LOGS": "v1/logs"}
DESTINATION_NAMES = tuple(PRESETS)


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
        if not 0 < timeout < math.inf:  # also refuses nan, which a socket timeout rejects only at the first export
            raise ConfigurationError(
                f"{timeout_source[0]}={timeout_source[1]!r} is not valid: expected a number of seconds greater than 0"
            )
    return OtlpTarget(protocol, endpoint, headers, timeout)


def _local_store(destination: Destination) -> Any:
    from .._store import StoreConfig

    return StoreConfig.from_options(destination.options)


def _open_local(build: Any, destination: Destination) -> Any:
    """A local exporter; a store that cannot be opened fails at set-up, naming the path and the variable."""
    import sqlite3

    try:
        return build(_local_store(destination))
    except (sqlite3.Error, OSError) as error:
        raise ConfigurationError(
            f"GATEWAY_OTEL_LOCAL_PATH: cannot open the local store {destination.endpoint}: {error}; "
            "expected a writable file path"
        ) from None


def span_exporter(destination: Destination) -> SpanExporter:
    """The span exporter for `destination`, by its protocol."""
    if destination.protocol == "sqlite":
        from ._local import LocalSpanExporter

        return _open_local(LocalSpanExporter, destination)  # type: ignore[no-any-return]
    if destination.protocol == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if destination.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

        return GrpcSpans(
            endpoint=destination.endpoint, headers=dict(destination.headers) or None, timeout=destination.timeout
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans

    return HttpSpans(endpoint=destination.endpoint, headers=dict(destination.headers), timeout=destination.timeout)


def _metric_exporter(destination: Destination) -> MetricExporter | None:
    endpoint = destination.metrics_endpoint
    if endpoint is None:
        return None
    if destination.protocol == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    # A metrics stream name does not apply to metrics (OpenObserve files them by metric name).
    headers = {k: v for k, v in destination.headers.items() if k != "stream-name"}
    if destination.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics

        return GrpcMetrics(endpoint=endpoint, headers=headers or None, timeout=destination.timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics

    return HttpMetrics(endpoint=endpoint, headers=headers, timeout=destination.timeout)


def _log_exporter(destination: Destination) -> Any:
    endpoint = destination.logs_endpoint
    if endpoint is None:
        return None
    if destination.protocol == "sqlite":
        from ._local import log_exporter

        return _open_local(log_exporter, destination)
    if destination.protocol == "console":
        try:
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter as ConsoleLogs
        except ImportError:  # SDK < 1.39
            from opentelemetry.sdk._logs.export import ConsoleLogExporter as ConsoleLogs  # type: ignore[attr-defined,no-redef]
        return ConsoleLogs()
    headers = dict(destination.logs_headers if destination.logs_headers is not None else destination.headers)
    if destination.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs

        return GrpcLogs(endpoint=endpoint, headers=headers or None, timeout=destination.timeout)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs

    return HttpLogs(endpoint=endpoint, headers=headers, timeout=destination.timeout)


def load_dotenv(path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """`KEY=value` lines of a `.env` file (`export`, quotes and `#` comments allowed); {} when there is none."""
    file = Path(path)
    if not file.is_file():
        return {}
    values: dict[str, str] = {}
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().replace("_", "").isalnum():
            raise ConfigurationError(f"{file}:{number} is not valid: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def environment(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The variables settings are read from: `environ`, else the process environment over the `.env` file."""
    if environ is not None:
        return environ
    return {**load_dotenv(os.environ.get("GATEWAY_OTEL_DOTENV", ".env")), **os.environ}


_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def default_destinations(env: Mapping[str, str]) -> str:
    """`GATEWAY_OTEL_DESTINATIONS`; else `otlp` when an OTLP endpoint is set; else `local`, the SQLite store."""
    named = (env.get("GATEWAY_OTEL_DESTINATIONS") or "").strip()
    if named:
        return named
    return "otlp" if _first(env, *_OTLP_ENDPOINTS) else "local"


_announced = False


def _announce_local(destination: Destination) -> None:
    """Say once per process where telemetry goes when nobody chose, and how to choose."""
    global _announced
    if _announced:
        return
    _announced = True
    logger.warning(
        "gateway_otel: no destination configured, so telemetry is stored locally in %s "
        "(query it with gateway_otel.Telemetry(); choose another destination with "
        "GATEWAY_OTEL_DESTINATIONS=otlp|openobserve|arize|phoenix|console, or set OTEL_EXPORTER_OTLP_ENDPOINT)",
        destination.endpoint,
    )


def resolve_destinations(
    destinations: str | Sequence[str | Destination] | None, env: Mapping[str, str]
) -> tuple[Destination, ...]:
    """The destinations named by the argument or `GATEWAY_OTEL_DESTINATIONS` (default: `default_destinations`),
    all checked."""
    source = "destinations"
    if destinations is None:
        source, destinations = "GATEWAY_OTEL_DESTINATIONS", default_destinations(env)
    if not isinstance(destinations, (str, Sequence)):
        raise ConfigurationError(
            f"destinations={destinations!r} is not valid: expected a comma-separated string or a list of "
            f"{', '.join(PRESETS)} (or Destination objects)"
        )
    items = destinations.split(",") if isinstance(destinations, str) else list(destinations)
    resolved: dict[str, Destination] = {}
    for item in items:
        if isinstance(item, Destination):
            resolved[item.id] = item
            continue
        name = str(item).strip().lower()
        if not name:
            continue
        if name not in PRESETS:
            raise ConfigurationError(
                f"{source}={destinations!r} is not valid: expected a comma-separated list of {', '.join(PRESETS)}"
            )
        resolved[name] = resolve(name, env)
    if not resolved:
        raise ConfigurationError(f"{source}={destinations!r} is not valid: expected at least one destination")
    return tuple(resolved.values())


@dataclass(frozen=True)
class Providers:
    """The providers `configure()` built; `shutdown()` flushes and stops them within their timeouts."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    destinations: tuple[Destination, ...]
    processors: tuple[DestinationProcessor, ...] = ()
    logger_provider: Any = None
    """The SDK `LoggerProvider` for the destinations that take logs (OpenTelemetry log records)."""

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per destination: spans exported, failed, dropped at the queue, and left out by sampling."""
        return {p.name: p.stats() for p in self.processors}

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        timeout = max((p.shutdown_timeout for p in self.processors), default=5.0)
        self.meter_provider.shutdown(timeout_millis=timeout * 1000)
        if self.logger_provider is not None:
            self.logger_provider.shutdown()


_active: Providers | None = None


def _check_limits(max_queue_size: Any, shutdown_timeout: Any) -> None:
    """`configure()`'s queue size and shutdown timeout, checked before anything starts (not at the first span)."""
    if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int) or max_queue_size <= 0:
        raise ConfigurationError(
            f"max_queue_size={max_queue_size!r} is not valid: expected a whole number greater than 0"
        )
    if (
        isinstance(shutdown_timeout, bool)
        or not isinstance(shutdown_timeout, (int, float))
        or not 0 < shutdown_timeout < math.inf
    ):
        raise ConfigurationError(
            f"shutdown_timeout={shutdown_timeout!r} is not valid: expected a number of seconds greater than 0"
        )


def active() -> Providers | None:
    """The providers the last `configure(set_global=True)` call set, if any."""
    return _active


def configure(
    destinations: str | Sequence[str | Destination] | None = None,
    *,
    resource: Resource | None = None,
    set_global: bool = True,
    environ: Mapping[str, str] | None = None,
    max_queue_size: int = 2048,
    shutdown_timeout: float = 5.0,
) -> Providers:
    """Build SDK tracer and meter providers exporting to `destinations` (default: `GATEWAY_OTEL_DESTINATIONS`,
    else `otlp` when `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set, else `local`, which says so once), and make
    them the global providers unless `set_global=False`.

    Each destination has its own queue of `max_queue_size` spans; shutting down waits at most `shutdown_timeout`
    seconds per destination.
    """
    global _active
    _check_limits(max_queue_size, shutdown_timeout)
    env = environment(environ)
    chosen = resolve_destinations(destinations, env)  # every setting checked before anything starts
    enabled = [d for d in chosen if d.enabled]
    resource = resource or Resource.create()
    tracer_provider = TracerProvider(resource=resource)
    processors = []
    readers = []
    for destination in enabled:
        processor = DestinationProcessor(
            destination.id,
            span_exporter(destination),
            max_queue_size=max_queue_size,
            shutdown_timeout=shutdown_timeout,
            privacy_mode=destination.privacy_mode,
            sampling_rate=destination.sampling_rate,
            resource_attributes=destination.resource_attributes,
        )
        tracer_provider.add_span_processor(processor)
        processors.append(processor)
        metric_exporter = _metric_exporter(destination)
        if metric_exporter is not None:
            guarded = GuardedMetricExporter(processor, metric_exporter)
            readers.append(PeriodicExportingMetricReader(guarded, export_timeout_millis=shutdown_timeout * 1000))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    logger_provider = LoggerProvider(resource=resource)
    for destination in enabled:
        log_exporter = _log_exporter(destination)
        if log_exporter is not None and destination.privacy_mode:
            log_exporter = private_log_exporter(log_exporter)
        if log_exporter is not None:
            logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    providers = Providers(tracer_provider, meter_provider, chosen, tuple(processors), logger_provider)
    if destinations is None and not (env.get("GATEWAY_OTEL_DESTINATIONS") or "").strip():
        for destination in enabled:
            if destination.id == "local":
                _announce_local(destination)
    if set_global:
        from opentelemetry._logs import set_logger_provider

        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        set_logger_provider(logger_provider)
        _active = providers
    logger.info("gateway_otel: exporting to %s", ", ".join(d.id for d in enabled) or "no enabled destination")
    return providers
