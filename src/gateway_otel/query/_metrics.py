"""Metric presets computed from span rows, the same way for every backend.

A metric is a pure function of summary cells (`_summary.Cell`: counts, sums, percentiles per group and bucket), which
are computed from span rows (`_summary.summarize_rows`, for OpenObserve and Phoenix) or by a backend that can
(the local store, in SQL): the same numbers for the same spans either way.

Definitions:
- Only inference calls count: rows with a model or a `gen_ai.operation.name` (an application's own spans in the same
  trace are not calls). A row belongs to the window or bucket that contains its start time (to the microsecond).
- Sums (`token_consumption`, `cost`) and counts are 0 over an empty window; ratios and percentiles are None there.
- Percentiles use linear interpolation between the two nearest ranks (numpy's default, Hyndman & Fan type 7):
  for sorted values x[0..n-1], h = (n - 1) * p, result = x[⌊h⌋] + (h - ⌊h⌋) * (x[⌊h⌋ + 1] - x[⌊h⌋]).
  So p=0 is the minimum, p=1 the maximum and p=0.5 the usual median.
- With `step_seconds`, [start, end] is cut into buckets of that length starting at `start` (the last one may be
  shorter and includes `end`); each point is stamped with its bucket's end. Without a step there is one bucket,
  stamped with `end`.
- Grouped by model, there is one series per model seen in the window (label `model`, `unknown` when a call has no
  model), sorted by name, each with a point for every bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ._model import CostSources, MetricSeries, MetricsResult, SpanRow
from ._summary import (
    ALL,
    LATENCY,
    MAX_BUCKETS,
    TTFT,
    UNKNOWN_MODEL,
    Cell,
    SummaryQuery,
    bucket_count,
    is_inference,
    percentile_of,
    summarize_rows,
)

__all__ = [
    "MAX_BUCKETS",
    "UNKNOWN_MODEL",
    "compute_metric",
    "is_inference",
    "metric_from_cells",
    "metric_summary",
    "percentile_of",
]


@dataclass(frozen=True)
class _Preset:
    description: str
    compute: Callable[[Cell, float], float | None]
    unit: str  # what a value counts: tokens, calls, models, ms, USD, or a ratio from 0 to 1
    percentile_of: str | None = None  # the field (`LATENCY`, `TTFT`) whose percentile this metric is
    always_by_model: bool = False


def _tokens(cell: Cell, _: float) -> float:
    return float(cell.input_tokens + cell.output_tokens)


def _requests(cell: Cell, _: float) -> float:
    return float(cell.calls)


def _latency(cell: Cell, p: float) -> float | None:
    return cell.percentiles.get((LATENCY, p))


def _ttft(cell: Cell, p: float) -> float | None:
    return cell.percentiles.get((TTFT, p))


def _error_rate(cell: Cell, _: float) -> float | None:
    return cell.errors / cell.calls if cell.calls else None


def _cost(cell: Cell, _: float) -> float:
    return float(cell.cost)


def _active_models(cell: Cell, _: float) -> float:
    return float(len(cell.models))


_PRESETS: dict[str, _Preset] = {
    "token_consumption": _Preset("tokens used (input + output) by inference calls", _tokens, "tokens"),
    "inference_requests_total": _Preset("number of inference calls", _requests, "calls"),
    "inference_latency": _Preset("call duration in ms at the given percentile", _latency, "ms", percentile_of=LATENCY),
    "time_to_first_token": _Preset(
        "time to the first streamed chunk in ms at the given percentile (streamed calls only)",
        _ttft,
        "ms",
        percentile_of=TTFT,
    ),
    "error_rate": _Preset("share of calls that failed, 0 to 1", _error_rate, "ratio"),
    "cost": _Preset(
        "cost in USD reported by the gateway, else priced from the price table (calls without a cost count as 0)",
        _cost,
        "USD",
    ),
    "model_usage": _Preset(
        "number of calls per model (always grouped by model)", _requests, "calls", always_by_model=True
    ),
    "active_model_count": _Preset("number of distinct models called", _active_models, "models"),
}

METRIC_PRESETS: dict[str, str] = {name: preset.description for name, preset in _PRESETS.items()}
"""Every metric name `metrics.query()` accepts, with a one-line description."""

METRIC_UNITS: dict[str, str] = {name: preset.unit for name, preset in _PRESETS.items()}
"""What each metric's values count: `tokens`, `calls`, `models`, `ms`, `USD`, or `ratio` (0 to 1)."""

PERCENTILE_METRICS = frozenset(name for name, preset in _PRESETS.items() if preset.percentile_of)


def _preset(metric: str) -> _Preset:
    preset = _PRESETS.get(metric)
    if preset is None:
        raise ValueError(f"metric={metric!r} is not a known metric: expected one of {', '.join(METRIC_PRESETS)}")
    return preset


def metric_summary(
    metric: str,
    *,
    start: datetime,
    end: datetime,
    step_seconds: float | None = None,
    percentile: float | None = None,
    group_by_model: bool = False,
    **filters: str | None,
) -> SummaryQuery:
    """The summary `metric` is finished from (checked: `ValueError` naming a bad parameter)."""
    preset = _preset(metric)
    if end < start:
        raise ValueError(f"the window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    p = 0.95 if percentile is None else percentile
    if preset.percentile_of and not (isinstance(p, (int, float)) and 0 <= p <= 1):
        raise ValueError(f"percentile={percentile!r} is not valid: expected a number from 0 to 1")
    bucket_count(start, end, step_seconds)  # checks the step
    return SummaryQuery(
        start=start,
        end=end,
        step_seconds=step_seconds,
        groups="model" if group_by_model or preset.always_by_model else "all",
        percentiles=((preset.percentile_of, p),) if preset.percentile_of else (),
        **filters,
    )


def metric_from_cells(metric: str, query: SummaryQuery, cells: Sequence[Cell]) -> MetricsResult:
    """The preset `metric` from the cells of `query` (its `metric_summary`)."""
    preset = _preset(metric)
    p = query.percentiles[0][1] if query.percentiles else 0.95
    count = bucket_count(query.start, query.end, query.step_seconds)
    step = None if query.step_seconds is None else timedelta(seconds=query.step_seconds)
    stamps = [query.end] if step is None else [min(query.start + (i + 1) * step, query.end) for i in range(count)]
    by_cell = {(c.group, c.bucket): c for c in cells}
    groups = sorted({c.group for c in cells if c.calls}) if query.groups == "model" else [ALL]
    series = tuple(
        MetricSeries(
            labels={"model": group} if query.groups == "model" else {},
            points=tuple(
                (stamp, preset.compute(by_cell.get((group, i)) or Cell(group, i), p)) for i, stamp in enumerate(stamps)
            ),
        )
        for group in groups
    )  # a model is in the result when it has a call in the window; empty buckets are empty cells
    return MetricsResult(
        metric=metric,
        start=query.start,
        end=query.end,
        step_seconds=query.step_seconds,
        percentile=p if preset.percentile_of else None,
        series=series,
        cost_sources=cost_sources(cells) if metric == "cost" else None,
    )


def cost_sources(cells: Sequence[Cell]) -> CostSources:
    """Where the cost of `cells` (one grouping: each call in one cell) came from."""
    return CostSources(
        costed_calls=sum(c.costed_calls for c in cells),
        priced_calls=sum(c.priced_calls for c in cells),
        priced_cost=sum(c.priced_cost for c in cells),
    )


def compute_metric(
    metric: str,
    rows: Sequence[SpanRow],
    *,
    start: datetime,
    end: datetime,
    step_seconds: float | None = None,
    percentile: float | None = None,
    group_by_model: bool = False,
) -> MetricsResult:
    """The preset `metric` over the inference calls among `rows` whose start lies in [start, end]."""
    query = metric_summary(
        metric, start=start, end=end, step_seconds=step_seconds, percentile=percentile, group_by_model=group_by_model
    )
    return metric_from_cells(metric, query, summarize_rows(rows, query))
