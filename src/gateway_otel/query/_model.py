"""The query API's contract: typed results every backend returns, and the one interface a backend implements.

The shapes follow AI Refinery's Observability API (`traces`, `metrics`, `logs`, each with `query()`), typed and
frozen, with `.to_dict()` for plain JSON. Backends (local SQLite, OpenObserve, Phoenix) fetch rows; what is
computed from rows (metric presets, percentiles, steps, grouping) is computed once, the same way for all of them,
from summary cells (`_summary`) that a backend may compute itself (the local store does, in SQL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

TRACE_ID_DIGITS = 32
"""A whole trace id's length in hex digits; a query's `trace_id` with fewer is a prefix."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def total_tokens(input_tokens: int | None, output_tokens: int | None) -> int | None:
    """Input plus output tokens; None when neither is known (not 0: "no usage reported" is not "no tokens")."""
    if input_tokens is None and output_tokens is None:
        return None
    return (input_tokens or 0) + (output_tokens or 0)


@dataclass(frozen=True)
class CostSources:
    """Where a cost total came from (`gateway.cost.source`): of the calls with a cost, how many, and how much, the
    price table priced; the gateway reported the rest."""

    costed_calls: int = 0
    priced_calls: int = 0
    priced_cost: float = 0.0

    @property
    def source(self) -> str | None:
        """`gateway`, `price_table`, `mixed` (some of each), or None (no call had a cost)."""
        if not self.costed_calls:
            return None
        if not self.priced_calls:
            return "gateway"
        return "price_table" if self.priced_calls == self.costed_calls else "mixed"

    def split(self, total: float, money: Callable[[float], str]) -> str | None:
        """Where `total` came from unless all from the gateway: `price table`, or `gateway $0.0100 + price table
        $0.0023` (amounts as `money` writes them); None when the gateway reported it all."""
        source = self.source
        if source == "price_table":
            return "price table"
        if source == "mixed":
            return f"gateway {money(total - self.priced_cost)} + price table {money(self.priced_cost)}"
        return None

    def text(self, total: float, money: Callable[[float], str]) -> str:
        """`total` as `money` writes it, and `split` in brackets: `$0.0123 (price table)`."""
        split = self.split(total, money)
        return money(total) if split is None else f"{money(total)} ({split})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "source": self.source}


@dataclass(frozen=True)
class SpanRow:
    """One span as read back from a backend; the LLM fields are lifted out of the attributes."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str | None
    name: str
    start_time: datetime  # timezone-aware, UTC
    end_time: datetime
    duration_ms: float
    status: str  # "ok" | "error" | "unset"
    status_message: str | None = None
    operation: str | None = None  # gen_ai.operation.name
    model: str | None = None  # gen_ai.response.model, else gen_ai.request.model
    request_model: str | None = None
    provider: str | None = None  # gateway.upstream.provider, else gen_ai.provider.name
    gateway: str | None = None  # gateway.name
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None  # gen_ai.usage.cost
    cost_source: str | None = None  # gateway.cost.source: gateway or price_table (None: not said, or no cost)
    time_to_first_token_ms: float | None = None  # gen_ai.response.time_to_first_chunk (s) x 1000
    project_name: str | None = None
    session_id: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)  # all attributes when detail=True, else empty
    events: tuple[Mapping[str, Any], ...] = ()

    @property
    def total_tokens(self) -> int | None:
        return total_tokens(self.input_tokens, self.output_tokens)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({**asdict(self), "total_tokens": self.total_tokens})


@dataclass(frozen=True)
class TracesResult:
    spans: tuple[SpanRow, ...]

    def trace_ids(self) -> list[str]:
        """Trace ids in the order their first span appears."""
        return list(dict.fromkeys(s.trace_id for s in self.spans))

    def to_dict(self) -> dict[str, Any]:
        return {"spans": [s.to_dict() for s in self.spans]}


@dataclass(frozen=True)
class MetricSeries:
    """One series: labels (e.g. {"model": "openai/gpt-4o"}, or {} when not grouped) and (time, value) points.
    Without `step` a series has exactly one point, stamped with the window's end."""

    labels: Mapping[str, str]
    points: tuple[tuple[datetime, float | None], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"labels": dict(self.labels), "points": [[t.isoformat(), v] for t, v in self.points]}


@dataclass(frozen=True)
class MetricsResult:
    metric: str
    start: datetime
    end: datetime
    step_seconds: float | None
    percentile: float | None
    series: tuple[MetricSeries, ...]
    cost_sources: CostSources | None = None
    """For `cost`: where the window's total came from (the gateway, the price table, or both)."""

    @property
    def value(self) -> float | None:
        """The single value of an ungrouped, stepless query (None when there is no data)."""
        if len(self.series) != 1 or len(self.series[0].points) != 1:
            raise ValueError("value is only defined for a single series with a single point")
        return self.series[0].points[0][1]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(
            {
                "metric": self.metric,
                "start": self.start,
                "end": self.end,
                "step_seconds": self.step_seconds,
                "percentile": self.percentile,
                "series": [s.to_dict() for s in self.series],
                **({"cost_sources": self.cost_sources.to_dict()} if self.cost_sources is not None else {}),
            }
        )


@dataclass(frozen=True)
class LogRow:
    time: datetime
    severity: str  # "debug" | "info" | "warning" | "error"
    body: str
    trace_id: str | None = None
    span_id: str | None = None
    project_name: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class LogsResult:
    records: tuple[LogRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"records": [r.to_dict() for r in self.records]}


@dataclass(frozen=True)
class SpanQuery:
    """What a backend is asked for. Times are timezone-aware UTC; `limit` is the most rows to return, newest first.

    `trace_id` is hex (the client lower-cases it): a whole id (32 digits), or a prefix of 4 to 31 digits asking for
    the spans of every trace whose id starts so. A backend that only matches whole ids finds nothing for a prefix,
    never a wrong trace.
    """

    start: datetime
    end: datetime
    trace_id: str | None = None
    project_name: str | None = None
    model: str | None = None
    status: str | None = None  # "ok" | "error"
    session_id: str | None = None
    detail: bool = True
    limit: int | None = 100  # None: every matching row (metrics need them all)


@dataclass(frozen=True)
class LogQuery:
    start: datetime
    end: datetime
    severity: str | None = None  # the minimum severity
    project_name: str | None = None
    limit: int = 500


class Backend(Protocol):
    """What a query backend implements: fetching rows. Errors are `QueryError` with one clear line.

    Optionally, `summarize(SummaryQuery) -> list[Cell]` (`_summary.Summarizer`): the summary cells metrics and stats
    are finished from, computed by the backend itself (the local store, in SQL); without it they come from `spans`."""

    name: str

    def spans(self, query: SpanQuery) -> list[SpanRow]: ...

    def logs(self, query: LogQuery) -> list[LogRow]: ...

    def close(self) -> None: ...
