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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from .._env import environment, first
from .._errors import ConfigurationError
from ._exporters import log_exporter, metric_exporter, span_exporter
from ._otlp import ENDPOINT_VARIABLES
from ._presets import PRESETS, Destination, resolve
from ._processor import DestinationProcessor, GuardedMetricExporter, private_log_exporter
from ._shaping import SHAPERS

logger = logging.getLogger("gateway_otel")

DESTINATION_NAMES = tuple(PRESETS)


def default_destinations(env: Mapping[str, str]) -> str:
    """`GATEWAY_OTEL_DESTINATIONS`; else `otlp` when an OTLP endpoint is set; else `local`, the SQLite store."""
    named = (env.get("GATEWAY_OTEL_DESTINATIONS") or "").strip()
    if named:
        return named
    return "otlp" if first(env, *ENDPOINT_VARIABLES) else "local"


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
            shaper=SHAPERS.get(destination.type),
        )
        tracer_provider.add_span_processor(processor)
        processors.append(processor)
        metrics_out = metric_exporter(destination)
        if metrics_out is not None:
            guarded = GuardedMetricExporter(processor, metrics_out)
            readers.append(PeriodicExportingMetricReader(guarded, export_timeout_millis=shutdown_timeout * 1000))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    logger_provider = LoggerProvider(resource=resource)
    for destination in enabled:
        logs_out = log_exporter(destination)
        if logs_out is not None and destination.privacy_mode:
            logs_out = private_log_exporter(logs_out)
        if logs_out is not None:
            logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs_out))
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
