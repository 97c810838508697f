"""The OpenTelemetry instrumentor for the openai client: one span per call through a gateway, plus metrics."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import fields
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from .._settings import Settings
from .._version import __version__
from ._handler import InstrumentationHandler
from ._logs import FailureLog, GenerationLog
from ._metrics import Instruments, MetricRecorder
from ._patch import patch, unpatch

__all__ = ["GatewayInstrumentor"]

logger = logging.getLogger("gateway_otel")
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
_NOT_SETTINGS = frozenset(
    {"tracer_provider", "meter_provider", "logger_provider", "skip_dep_check", "raise_exception_on_conflict"}
)


def _providers_unset() -> bool:
    """True when the application has set neither a tracer nor a meter provider of its own."""
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider) and type(
        metrics.get_meter_provider()
    ).__name__ in ("_ProxyMeterProvider", "ProxyMeterProvider", "NoOpMeterProvider")


class GatewayInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments `openai` (1.x, 2.x, 3.x): chat, completions, embeddings and Responses calls, sync and async.

    `instrument(tracer_provider=None, meter_provider=None, logger_provider=None, **options)`; the options are the
    fields of `gateway_otel.Settings`; failed calls become log records through `logger_provider` (else the global
    one). When the application has set no providers, `gateway_otel.configure()` sets them.
    Registered under the `opentelemetry_instrumentor` entry point as `gateway_otel`, so `opentelemetry-instrument`
    loads it.
    """

    _restore: list[tuple[type, Any]] | None = None
    _settings: Settings | None = None
    _recorder: MetricRecorder | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.40.0",)

    def instrument(self, **kwargs: Any) -> Any:
        if self._is_instrumented_by_opentelemetry:
            self._settings_unchanged(kwargs)
            return None
        return super().instrument(**kwargs)

    def _settings_unchanged(self, kwargs: dict[str, Any]) -> None:
        """Instrumenting again changes nothing: a bad option still fails, a different one is said to be ignored."""
        requested = Settings.load(**{key: value for key, value in kwargs.items() if key not in _NOT_SETTINGS})
        active = self._settings
        if active is None or requested == active:
            logger.debug("gateway_otel: already instrumented")
            return
        ignored = ", ".join(
            f"{f.name}={getattr(requested, f.name)!r}"
            for f in fields(Settings)
            if getattr(requested, f.name) != getattr(active, f.name)
        )
        logger.warning(
            "gateway_otel is already instrumented, so %s is ignored: call gateway_otel.uninstrument() first to "
            "change it",
            ignored,
        )

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider = kwargs.pop("tracer_provider", None)
        meter_provider = kwargs.pop("meter_provider", None)
        logger_provider = kwargs.pop("logger_provider", None)
        settings = Settings.load(**kwargs)
        if tracer_provider is None and meter_provider is None and _providers_unset():
            from ..destinations import configure

            configure()
        tracer = trace.get_tracer("gateway_otel", __version__, tracer_provider, schema_url=_SCHEMA_URL)
        meter = metrics.get_meter("gateway_otel", __version__, meter_provider, schema_url=_SCHEMA_URL)
        recorder = MetricRecorder(meter, Instruments(meter)) if settings.metrics else None
        generations = GenerationLog(logger_provider) if settings.openrouter_generation else None
        handler = InstrumentationHandler(tracer, recorder, FailureLog(logger_provider), settings, generations)
        self._restore = patch(handler)
        self._settings = settings
        self._recorder = recorder

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._restore:
            unpatch(self._restore)
        self._restore = None
        self._settings = None
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
