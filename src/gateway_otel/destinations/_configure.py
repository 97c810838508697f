"""`configure()`: tracer and meter providers that export to the chosen destinations.

`instrument()` calls it only when the application has set no providers of its own. Destinations are named in the
`destinations` argument or in `GATEWAY_OTEL_DESTINATIONS` (comma-separated); the default is `otlp` when the
standard `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set, else `local` (the SQLite store, announced once).
Variables come from the environment and from a `.env` file in the working directory (the environment wins). Each
destination gets its own `DestinationProcessor`, so a slow or dead backend never delays the application or another
destination. Every variable is read and checked here, once: a bad value fails now, with its name, instead of at
the first export.

Shutting down — `Providers.shutdown()`, or the `atexit` handler registered here in place of the SDK providers' own —
stops traces, metrics and log records of every destination at once, within one deadline: `shutdown_timeout`, else
`GATEWAY_OTEL_SHUTDOWN_TIMEOUT`, else 5 s (`_shutdown`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from .._env import environment, first, parse_seconds
from .._errors import ConfigurationError
from . import _shutdown
from ._exporters import log_exporter, metric_exporter, span_exporter
from ._guard import GuardedLogExporter
from ._otlp import ENDPOINT_VARIABLES, defaulted_signals, otlp_default_endpoint
from ._presets import PRESETS, Destination, resolve
from ._processor import DestinationProcessor, GuardedMetricExporter, OnceLogProcessor, OnceMetricReader
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
_announced_otlp = False


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


def _announce_otlp_default(destination: Destination, env: Mapping[str, str]) -> None:
    """`otlp` with no endpoint set for some signal sends it to the SDK's default: say so, once per process."""
    global _announced_otlp
    signals = defaulted_signals(env)
    if not signals or _announced_otlp:
        return
    _announced_otlp = True
    logger.warning(
        "gateway_otel: destination 'otlp': no endpoint set for %s, so they go to the default %s "
        "(set OTEL_EXPORTER_OTLP_ENDPOINT to choose)",
        ", ".join(signals[:-1]) + " and " + signals[-1] if len(signals) > 1 else signals[0],
        otlp_default_endpoint(destination.protocol),
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
    """The providers `configure()` built; `shutdown()` flushes and stops them within `shutdown_timeout` in all."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    destinations: tuple[Destination, ...]
    processors: tuple[DestinationProcessor, ...] = ()
    logger_provider: Any = None
    """The SDK `LoggerProvider` for the destinations that take logs (OpenTelemetry log records)."""
    shutdown_timeout: float = _shutdown.DEFAULT_SHUTDOWN_TIMEOUT
    """Seconds `shutdown()` (and the exit) may take in all: every signal of every destination, at once."""
    _stopped: threading.Event = field(default_factory=threading.Event, init=False, repr=False, compare=False)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per destination: spans exported, failed, dropped at the queue, and left out by sampling."""
        return {p.name: p.stats() for p in self.processors}

    def shutdown(self) -> None:
        """Flush and stop traces, metrics and log records of every destination, returning within
        `shutdown_timeout` seconds whatever the backends do; what is not sent by then is dropped. Once."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        _shutdown.forget(self)
        providers = [self.tracer_provider, self.meter_provider, self.logger_provider]
        _shutdown.shut_down(self.processors, [p for p in providers if p is not None], self.shutdown_timeout)


_active: Providers | None = None


QUEUE_SIZE = 2048
"""Spans a destination's queue holds by default."""
LOCAL_QUEUE_SIZE = 8192
"""The local store's default queue: its writer may wait up to `store.BUSY_TIMEOUT` (10 s) for another process's
write lock, or lose the GIL to a busy application for a while; 8192 spans cover 10 s of ~800 calls/s, about what one
process makes through the in-process simulator, at ~5 KB of memory per queued span."""


def queue_size_of(explicit: int | None, destination_type: str) -> int:
    return explicit if explicit is not None else LOCAL_QUEUE_SIZE if destination_type == "local" else QUEUE_SIZE


def _check_limits(max_queue_size: Any, shutdown_timeout: Any) -> None:
    """`configure()`'s queue size and shutdown timeout, checked before anything starts (not at the first span);
    `shutdown_timeout=None` means `GATEWAY_OTEL_SHUTDOWN_TIMEOUT`, else 5 s."""
    if max_queue_size is not None and (
        isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int) or max_queue_size <= 0
    ):
        raise ConfigurationError(
            f"max_queue_size={max_queue_size!r} is not valid: expected a whole number greater than 0"
        )
    if shutdown_timeout is not None and (
        isinstance(shutdown_timeout, bool)
        or not isinstance(shutdown_timeout, (int, float))
        or not 0 < shutdown_timeout < math.inf
    ):
        raise ConfigurationError(
            f"shutdown_timeout={shutdown_timeout!r} is not valid: expected a number of seconds greater than 0"
        )


def shutdown_timeout_of(explicit: float | None, env: Mapping[str, str]) -> float:
    """The one place the shutdown bound is decided: the argument, else `GATEWAY_OTEL_SHUTDOWN_TIMEOUT`, else 5 s."""
    if explicit is not None:
        return float(explicit)
    raw = (env.get("GATEWAY_OTEL_SHUTDOWN_TIMEOUT") or "").strip()
    return parse_seconds("GATEWAY_OTEL_SHUTDOWN_TIMEOUT", raw) if raw else _shutdown.DEFAULT_SHUTDOWN_TIMEOUT


def active() -> Providers | None:
    """The providers the last `configure(set_global=True)` call set, if any."""
    return _active


def configure(
    destinations: str | Sequence[str | Destination] | None = None,
    *,
    resource: Resource | None = None,
    set_global: bool = True,
    environ: Mapping[str, str] | None = None,
    max_queue_size: int | None = None,
    shutdown_timeout: float | None = None,
) -> Providers:
    """Build SDK tracer and meter providers exporting to `destinations` (default: `GATEWAY_OTEL_DESTINATIONS`,
    else `otlp` when `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set, else `local`, which says so once), and make
    them the global providers unless `set_global=False`.

    Each destination has its own queue of `max_queue_size` spans (default: 8192 for the local store, whose writer
    may wait for another process's write lock, 2048 for the others). `Providers.shutdown()`, also run at exit, takes
    at most `shutdown_timeout` seconds in all (default: `GATEWAY_OTEL_SHUTDOWN_TIMEOUT`, else 5).
    """
    global _active
    _check_limits(max_queue_size, shutdown_timeout)
    env = environment(environ)
    timeout = shutdown_timeout_of(shutdown_timeout, env)
    chosen = resolve_destinations(destinations, env)  # every setting checked before anything starts
    enabled = [d for d in chosen if d.enabled]
    resource = resource or Resource.create()
    from opentelemetry.sdk._logs import LoggerProvider

    # The exit is ours (`_shutdown.register`): one deadline for all, instead of three SDK handlers one after another.
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    processors = []
    for destination in enabled:
        processor = DestinationProcessor(
            destination.id,
            span_exporter(destination),
            max_queue_size=queue_size_of(max_queue_size, destination.type),
            shutdown_timeout=timeout,
            privacy_mode=destination.privacy_mode,
            sampling_rate=destination.sampling_rate,
            resource_attributes=destination.resource_attributes,
            shaper=SHAPERS.get(destination.type),
            endpoint=destination.endpoint,
            destination_type=destination.type,
            timeout=destination.timeout,
        )
        tracer_provider.add_span_processor(processor)
        processors.append(processor)
        metrics_out = metric_exporter(destination)
        if metrics_out is not None and destination.metrics_endpoint is not None:
            guarded = GuardedMetricExporter(processor.health, metrics_out, destination.metrics_endpoint)
            processor.metric_reader = OnceMetricReader(guarded, export_timeout_millis=timeout * 1000)
        logs_out = log_exporter(destination)
        if logs_out is not None and destination.logs_endpoint is not None:
            logs = GuardedLogExporter(
                processor.health, logs_out, destination.logs_endpoint, privacy_mode=destination.privacy_mode
            )
            processor.log_processor = OnceLogProcessor(logs, sampling_rate=destination.sampling_rate)
            logger_provider.add_log_record_processor(processor.log_processor)
    readers = [p.metric_reader for p in processors if p.metric_reader is not None]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    providers = Providers(tracer_provider, meter_provider, chosen, tuple(processors), logger_provider, timeout)
    _shutdown.register(providers)
    if destinations is None and not (env.get("GATEWAY_OTEL_DESTINATIONS") or "").strip():
        for destination in enabled:
            if destination.id == "local":
                _announce_local(destination)
    for destination in enabled:
        if destination.id == "otlp":
            _announce_otlp_default(destination, env)
    if set_global:
        from opentelemetry._logs import set_logger_provider

        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        set_logger_provider(logger_provider)
        _active = providers
    logger.info("gateway_otel: exporting to %s", ", ".join(d.id for d in enabled) or "no enabled destination")
    return providers
