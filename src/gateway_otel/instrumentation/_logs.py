"""Failed calls as OpenTelemetry log records, in the trace of their span.

Only failures are logged (a successful call costs nothing here): one ERROR record per failed call, with the span's
trace id and span id, the error, and — when content capture is on — the prompt that failed (and what a broken
stream had delivered). They go to the logger provider given to `instrument()`, else the global one, which
`configure()` points at every destination that takes logs.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from typing import Any

from .._internal import internal_error

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
_CONTENT = ("gen_ai.input.messages", "gen_ai.system_instructions", "gen_ai.output.messages")

_logger: Any = None


def use(logger_provider: Any = None) -> None:
    """Log through `logger_provider`, else the global provider (also one set later)."""
    global _logger
    from opentelemetry._logs import get_logger

    from .._version import __version__

    _logger = get_logger("gateway_otel", __version__, logger_provider)


def stop() -> None:
    global _logger
    _logger = None


def _record_factory() -> Any:
    """How this API release builds a record in a span's context (`context=` since 1.35; trace ids before)."""
    from opentelemetry._logs import LogRecord

    if "context" in inspect.signature(LogRecord.__init__).parameters:
        return lambda context, span_context, **kw: LogRecord(context=context, event_name=EVENT_NAME, **kw)
    return lambda context, span_context, **kw: LogRecord(
        trace_id=span_context.trace_id, span_id=span_context.span_id, trace_flags=span_context.trace_flags, **kw
    )


_make_record: Any = None


def failure_record(name: str, attrs: Mapping[str, Any], message: str | None) -> tuple[str, dict[str, Any]]:
    """The body and attributes of a failed call's record, from the span's attributes."""
    kept = {key: attrs[key] for key in _KEPT if key in attrs}
    kept.update({key: attrs[key] for key in _CONTENT if key in attrs})
    if message:
        kept["exception.message"] = message
    error = kept.get("error.type", "error")
    detail = kept.get("gateway.error.message") or message
    return f"{name} failed: {error}{f': {detail}' if detail else ''}", kept


def emit_failure(invocation: Any, attrs: Mapping[str, Any], exc: BaseException | None) -> None:
    """One ERROR log record for a failed call, in its span's trace. Never raises."""
    global _make_record
    logger = _logger
    if logger is None:
        return
    try:
        from opentelemetry._logs import SeverityNumber

        if _make_record is None:
            _make_record = _record_factory()
        start = invocation.start_attrs
        model = start.get("gen_ai.request.model")
        operation = start.get("gen_ai.operation.name", "call")
        name = f"{operation} {model}" if model else str(operation)
        message = invocation._scrub(str(exc)) if exc is not None else None
        body, attributes = failure_record(name, {**start, **attrs}, message)
        if exc is not None:
            cls = type(exc)
            qualified = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
            attributes.setdefault("exception.type", qualified)
        now = time.time_ns()
        record = _make_record(
            invocation.context,
            invocation.span.get_span_context(),
            timestamp=now,
            observed_timestamp=now,
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body=body,
            attributes={"event.name": EVENT_NAME, **attributes},
        )
        logger.emit(record)
    except Exception:
        internal_error("log record")
