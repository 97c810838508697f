"""Failed calls, and OpenRouter's final record of a generation, as OpenTelemetry log records in the trace of their
span.

Failures: one ERROR record per failed call (a successful call costs nothing here), with the span's trace id and span
id, the error, and — when content capture is on — the prompt that failed (and what a broken stream had delivered).
Generations (`openrouter_generation=True`): one INFO record per OpenRouter call, emitted later by the worker that
fetched it (`openrouter/_generation_worker.py`), in the call's span. They go to the logger provider given to
`instrument()`, else the global one, which `configure()` points at every destination that takes logs.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, set_span_in_context

from .._internal import internal_error
from .._semconv import FAILURE_LOG_CONTENT, GENERATION_EVENT
from ._attributes import exception_type

EVENT_NAME = "gateway.call.failed"
_KEPT = (
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.provider.name",
    "gateway.name",
    "gateway.upstream.provider",
    "server.address",
    "session.id",
    "user.id",
    "error.type",
    "gateway.error.code",
    "gateway.error.message",
    "gateway.stream.outcome",
    "exception.type",
    "exception.message",
)


def _record_factory(event_name: str = EVENT_NAME) -> Callable[..., Any]:
    """How this API release builds a record in a span's context (`context=` since 1.35; trace ids before)."""
    from opentelemetry._logs import LogRecord

    if "context" in inspect.signature(LogRecord.__init__).parameters:
        return lambda context, span_context, **kw: LogRecord(context=context, event_name=event_name, **kw)
    return lambda context, span_context, **kw: LogRecord(
        trace_id=span_context.trace_id, span_id=span_context.span_id, trace_flags=span_context.trace_flags, **kw
    )


def failure_record(name: str, attrs: Mapping[str, Any], message: str | None) -> tuple[str, dict[str, Any]]:
    """The body and attributes of a failed call's record, from the span's attributes."""
    kept = {key: attrs[key] for key in _KEPT if key in attrs}
    kept.update({key: attrs[key] for key in FAILURE_LOG_CONTENT if key in attrs})
    if message:
        kept["exception.message"] = message
    error = kept.get("error.type", "error")
    detail = kept.get("gateway.error.message") or message
    return f"{name} failed: {error}{f': {detail}' if detail else ''}", kept


class _RecordEmitter:
    """One OpenTelemetry logger, and the records it emits in a span's context: the part both kinds share."""

    __slots__ = ("_event", "_logger", "_make_record")

    def __init__(self, event: str, logger_provider: Any = None) -> None:
        """Log through `logger_provider`, else the global provider (also one set later)."""
        from opentelemetry._logs import get_logger

        from .._version import __version__

        self._event = event
        self._logger = get_logger("gateway_otel", __version__, logger_provider)
        self._make_record: Callable[..., Any] | None = None

    def _emit(self, context: Context, span_context: SpanContext, error: bool, body: str, attributes: dict) -> None:
        from opentelemetry._logs import SeverityNumber

        if self._make_record is None:
            self._make_record = _record_factory(self._event)
        now = time.time_ns()
        record = self._make_record(
            context,
            span_context,
            timestamp=now,
            observed_timestamp=now,
            severity_number=SeverityNumber.ERROR if error else SeverityNumber.INFO,
            severity_text="ERROR" if error else "INFO",
            body=body,
            attributes={"event.name": self._event, **attributes},
        )
        self._logger.emit(record)


class FailureLog(_RecordEmitter):
    """Emits the failed calls' log records (the handler owns one)."""

    __slots__ = ()

    def __init__(self, logger_provider: Any = None) -> None:
        super().__init__(EVENT_NAME, logger_provider)

    def emit(
        self,
        context: Context,
        span_context: SpanContext,
        start_attrs: Mapping[str, Any],
        attrs: Mapping[str, Any],
        message: str | None,
        exc: BaseException | None,
    ) -> None:
        """One ERROR record for a failed call, in its span's trace; `message` is the error's text, already scrubbed
        of credentials. Never raises."""
        try:
            model = start_attrs.get("gen_ai.request.model")
            operation = start_attrs.get("gen_ai.operation.name", "call")
            name = f"{operation} {model}" if model else str(operation)
            body, attributes = failure_record(name, {**start_attrs, **attrs}, message)
            if exc is not None:
                attributes.setdefault("exception.type", exception_type(exc))
            self._emit(context, span_context, True, body, attributes)
        except Exception:
            internal_error("log record")


class GenerationLog(_RecordEmitter):
    """Emits OpenRouter's generation records (the handler owns one)."""

    __slots__ = ()

    def __init__(self, logger_provider: Any = None) -> None:
        super().__init__(GENERATION_EVENT, logger_provider)

    def emit(self, span_context: SpanContext, attributes: Mapping[str, Any]) -> None:
        """One INFO record `gateway.openrouter.generation` in the call's span (ended by now). Never raises."""
        try:
            context = set_span_in_context(NonRecordingSpan(span_context))
            self._emit(context, span_context, False, GENERATION_EVENT, dict(attributes))
        except Exception:
            internal_error("generation log record")
