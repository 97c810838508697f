"""`Telemetry` and `AsyncTelemetry`: ask a backend what the instrumented calls did.

The shape follows AI Refinery's Observability API — three sub-clients, `traces`, `metrics` and `logs`, each with one
`query()` — over any backend (`"local"`, `"openobserve"`, `"phoenix"` or a `Backend` object). Parameters are
checked before anything is fetched: a bad one raises `ValueError` naming it and what it expects. Metrics are finished
here from summary cells (`_metrics.metric_from_cells`), the same way for every backend: a backend that computes the
cells itself (`summarize`, the local store in SQL) is asked for them, any other for its rows (`summarize`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from .._env import parse_duration
from ..store import SEVERITIES
from ._backends import make_backend
from ._metrics import METRIC_PRESETS, metric_from_cells, metric_summary
from ._model import TRACE_ID_DIGITS, Backend, LogQuery, LogsResult, MetricsResult, SpanQuery, TracesResult
from ._summary import Cell, SummaryQuery, summarize_rows

STATUSES = ("ok", "error")
"""The span statuses a query can ask for."""
MIN_TRACE_ID_PREFIX = 4
"""The fewest leading hex digits of a trace id a query takes (as `git` takes a commit's first digits)."""
_HEX = re.compile(r"^[0-9a-f]+$")


def trace_id_or_prefix(name: str, raw: Any) -> str:
    """A trace id as the queries take it, lower-cased: 32 hex digits, or its first 4 or more (any case, `0x`
    allowed); `ValueError` naming `name` and what it expects otherwise."""
    value = raw.strip().lower().removeprefix("0x") if isinstance(raw, str) else ""
    if _HEX.match(value) and len(value) < MIN_TRACE_ID_PREFIX:
        raise ValueError(f"{name}={raw!r} is too short: give at least {MIN_TRACE_ID_PREFIX} hex digits of the trace id")
    if not _HEX.match(value) or len(value) > TRACE_ID_DIGITS:
        raise ValueError(
            f"{name}={raw!r} is not valid: expected a trace id of {TRACE_ID_DIGITS} hex digits, "
            f"or its first {MIN_TRACE_ID_PREFIX} or more"
        )
    return value


def _now() -> datetime:
    return datetime.now(timezone.utc)


def window(name: str, raw: Any, now: datetime) -> tuple[datetime, datetime]:
    """(start, end) of the `raw` window (`5m`, `1h`, `24h`, `7d`...) ending `now`."""
    return now - timedelta(seconds=parse_duration(name, raw)), now


def _choice(name: str, raw: Any, allowed: tuple[str, ...]) -> str | None:
    if raw is None:
        return None
    value = raw.strip().lower() if isinstance(raw, str) else raw
    if value not in allowed:
        raise ValueError(f"{name}={raw!r} is not valid: expected one of {', '.join(allowed)}")
    return str(value)


MAX_LIMIT = 1_000_000_000
"""The largest `limit` a query takes (a backend's integers end somewhere; `None` means all)."""


def _limit(name: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_LIMIT:
        raise ValueError(f"{name}={raw!r} is not valid: expected a whole number from 1 to {MAX_LIMIT:,}")
    return raw


def _text(name: str, raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{name}={raw!r} is not valid: expected a non-empty string")
    return raw.strip()


def _percentile(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 1:
        raise ValueError(f"percentile={raw!r} is not valid: expected a number from 0 to 1 (e.g. 0.95)")
    return float(raw)


def summarize(backend: Backend, query: SummaryQuery) -> list[Cell]:
    """The cells of `query`: computed by the backend when it can (`_summary.Summarizer`), else from its rows."""
    own = getattr(backend, "summarize", None)
    if callable(own):
        return list(own(query))
    rows = SpanQuery(
        start=query.start,
        end=query.end,
        project_name=query.project_name,
        model=query.model,
        status=query.status,
        session_id=query.session_id,
        detail=False,
        limit=None,
    )
    return summarize_rows(backend.spans(rows), query)


class Traces:
    """`telemetry.traces.query(...)`: the spans of the calls, newest first."""

    def __init__(self, backend: Backend, clock: Callable[[], datetime]) -> None:
        self._backend = backend
        self._clock = clock

    def query(
        self,
        trace_id: str | None = None,
        project_name: str | None = None,
        model: str | None = None,
        status: str | None = None,
        time_window: str = "1h",
        detail: bool = True,
        limit: int | None = 100,
    ) -> TracesResult:
        """Spans started within `time_window` (of one trace, project, model or status when given), at most `limit`
        (`None`: all of them); `detail=False` leaves out the full attributes and events.

        `trace_id` is a whole trace id, or its first 4 or more hex digits: then the spans of every trace whose id
        starts so (`TracesResult.trace_ids()` tells whether that was one trace or several)."""
        start, end = window("time_window", time_window, self._clock())
        query = SpanQuery(
            start=start,
            end=end,
            trace_id=None if trace_id is None else trace_id_or_prefix("trace_id", trace_id),
            project_name=_text("project_name", project_name),
            model=_text("model", model),
            status=_choice("status", status, STATUSES),
            detail=bool(detail),
            limit=None if limit is None else _limit("limit", limit),
        )
        return TracesResult(spans=tuple(self._backend.spans(query)))


class Metrics:
    """`telemetry.metrics.query(metric, ...)`: a preset computed over the calls in a window."""

    def __init__(self, backend: Backend, clock: Callable[[], datetime]) -> None:
        self._backend = backend
        self._clock = clock

    def query(
        self,
        metric: str,
        time_window: str = "1h",
        step: str | None = None,
        percentile: float = 0.95,
        model_key: str | None = None,
        project_name: str | None = None,
        session_id: str | None = None,
        status: str | None = None,
        group_by_model: bool = False,
    ) -> MetricsResult:
        """`metric` (one of `METRIC_PRESETS`) over `time_window`: one value, or a series with `step` (`5m`, `1h`...);
        one series per model with `group_by_model`; `percentile` (0 to 1) for the latency metrics."""
        if metric not in METRIC_PRESETS:
            raise ValueError(f"metric={metric!r} is not a known metric: expected one of {', '.join(METRIC_PRESETS)}")
        start, end = window("time_window", time_window, self._clock())
        step_seconds = None if step is None else parse_duration("step", step)
        p = _percentile(percentile)
        query = metric_summary(
            metric,
            start=start,
            end=end,
            step_seconds=step_seconds,
            percentile=p,
            group_by_model=bool(group_by_model),
            project_name=_text("project_name", project_name),
            model=_text("model_key", model_key),
            status=_choice("status", status, STATUSES),
            session_id=_text("session_id", session_id),
        )
        return metric_from_cells(metric, query, summarize(self._backend, query))


class Logs:
    """`telemetry.logs.query(...)`: log records (failed calls, with their trace), newest first."""

    def __init__(self, backend: Backend, clock: Callable[[], datetime]) -> None:
        self._backend = backend
        self._clock = clock

    def query(
        self,
        severity: str | None = None,
        project_name: str | None = None,
        time_window: str = "24h",
        limit: int = 500,
    ) -> LogsResult:
        """Records within `time_window` at `severity` (debug, info, warning, error) or above, at most `limit`."""
        start, end = window("time_window", time_window, self._clock())
        query = LogQuery(
            start=start,
            end=end,
            severity=_choice("severity", severity, SEVERITIES),
            project_name=_text("project_name", project_name),
            limit=_limit("limit", limit),
        )
        return LogsResult(records=tuple(self._backend.logs(query)))


class Telemetry:
    """Query what the instrumented calls did: `.traces`, `.metrics` and `.logs`, each with `query()`.

    `backend` is a name (`"local"`, the SQLite store; `"openobserve"`; `"phoenix"`) with its `options` (e.g.
    `path=` for local), or any object implementing `gateway_otel.query.Backend`.
    """

    def __init__(self, backend: str | Backend = "local", **options: Any) -> None:
        if not isinstance(backend, str) and options:
            raise ValueError(f"options {', '.join(sorted(options))} only apply to a backend given by name")
        self.backend: Backend = make_backend(backend, **options) if isinstance(backend, str) else backend
        self._clock: Callable[[], datetime] = _now
        self.traces = Traces(self.backend, self._now)
        self.metrics = Metrics(self.backend, self._now)
        self.logs = Logs(self.backend, self._now)

    def _now(self) -> datetime:
        return self._clock()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


class _AsyncSub:
    def __init__(self, sync: Any) -> None:
        self._sync = sync

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        import asyncio  # here: ~50 ms to import, and only the async client needs it

        return await asyncio.to_thread(self._sync.query, *args, **kwargs)


class AsyncTelemetry:
    """`Telemetry` for asyncio: the same sub-clients and parameters, `await telemetry.traces.query(...)`; the
    backend's blocking reads run in a worker thread, so the event loop never waits on them."""

    def __init__(self, backend: str | Backend = "local", **options: Any) -> None:
        self._sync = Telemetry(backend, **options)
        self.backend = self._sync.backend
        self.traces = _AsyncSub(self._sync.traces)
        self.metrics = _AsyncSub(self._sync.metrics)
        self.logs = _AsyncSub(self._sync.logs)

    async def close(self) -> None:
        import asyncio

        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> AsyncTelemetry:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()
