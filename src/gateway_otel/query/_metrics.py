"""Metric presets computed from span rows, the same way for every backend.

Backends only fetch rows; a metric is a pure function of the rows, the window and the step, so the local store,
OpenObserve and Phoenix give the same number for the same spans.

Definitions:
- Only inference calls count: rows with a model or a `gen_ai.operation.name` (an application's own spans in the same
  trace are not calls). A row belongs to the window or bucket that contains its start time.
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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ._model import MetricSeries, MetricsResult, SpanRow

UNKNOWN_MODEL = "unknown"
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class _Preset:
    description: str
    compute: Callable[[Sequence[SpanRow], float], float | None]
    unit: str  # what a value counts: tokens, calls, models, ms, USD, or a ratio from 0 to 1
    uses_percentile: bool = False
    always_by_model: bool = False


def is_inference(row: SpanRow) -> bool:
    """A row is an inference call when it names a model or a GenAI operation."""
    return row.model is not None or row.operation is not None


def percentile_of(values: Sequence[float], p: float) -> float | None:
    """The p-th quantile (0 ≤ p ≤ 1) by linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    h = (len(ordered) - 1) * p
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def _tokens(rows: Sequence[SpanRow], _: float) -> float:
    return float(sum(row.total_tokens or 0 for row in rows))


def _requests(rows: Sequence[SpanRow], _: float) -> float:
    return float(len(rows))


def _latency(rows: Sequence[SpanRow], p: float) -> float | None:
    return percentile_of([row.duration_ms for row in rows], p)


def _ttft(rows: Sequence[SpanRow], p: float) -> float | None:
    return percentile_of([row.time_to_first_token_ms for row in rows if row.time_to_first_token_ms is not None], p)


def _error_rate(rows: Sequence[SpanRow], _: float) -> float | None:
    return sum(row.status == "error" for row in rows) / len(rows) if rows else None


def _cost(rows: Sequence[SpanRow], _: float) -> float:
    return float(sum(row.cost or 0.0 for row in rows))


def _active_models(rows: Sequence[SpanRow], _: float) -> float:
    return float(len({row.model or UNKNOWN_MODEL for row in rows}))


_PRESETS: dict[str, _Preset] = {
    "token_consumption": _Preset("tokens used (input + output) by inference calls", _tokens, "tokens"),
    "inference_requests_total": _Preset("number of inference calls", _requests, "calls"),
    "inference_latency": _Preset("call duration in ms at the given percentile", _latency, "ms", uses_percentile=True),
    "time_to_first_token": _Preset(
        "time to the first streamed chunk in ms at the given percentile (streamed calls only)",
        _ttft,
        "ms",
        uses_percentile=True,
    ),
    "error_rate": _Preset("share of calls that failed, 0 to 1", _error_rate, "ratio"),
    "cost": _Preset("cost in USD reported by the gateway (calls without a cost count as 0)", _cost, "USD"),
    "model_usage": _Preset(
        "number of calls per model (always grouped by model)", _requests, "calls", always_by_model=True
    ),
    "active_model_count": _Preset("number of distinct models called", _active_models, "models"),
}

METRIC_PRESETS: dict[str, str] = {name: preset.description for name, preset in _PRESETS.items()}
"""Every metric name `metrics.query()` accepts, with a one-line description."""

METRIC_UNITS: dict[str, str] = {name: preset.unit for name, preset in _PRESETS.items()}
"""What each metric's values count: `tokens`, `calls`, `models`, `ms`, `USD`, or `ratio` (0 to 1)."""

PERCENTILE_METRICS = frozenset(name for name, preset in _PRESETS.items() if preset.uses_percentile)


def _bucket_edges(start: datetime, end: datetime, step_seconds: float | None) -> list[tuple[datetime, datetime]]:
    if step_seconds is None:
        return [(start, end)]
    if not step_seconds > 0 or math.isinf(step_seconds):
        raise ValueError(f"step_seconds={step_seconds!r} is not valid: expected a number of seconds greater than 0")
    count = max(1, math.ceil((end - start).total_seconds() / step_seconds))
    if count > MAX_BUCKETS:
        raise ValueError(
            f"step_seconds={step_seconds!r} is too small for the window: it makes {count} buckets, "
            f"expected at most {MAX_BUCKETS}"
        )
    step = timedelta(seconds=step_seconds)
    return [(start + i * step, min(start + (i + 1) * step, end)) for i in range(count)]


def _bucket_rows(
    rows: Sequence[SpanRow], start: datetime, end: datetime, step_seconds: float | None, buckets: int
) -> list[list[SpanRow]]:
    out: list[list[SpanRow]] = [[] for _ in range(buckets)]
    for row in rows:
        if not start <= row.start_time <= end:
            continue
        index = 0 if step_seconds is None else int((row.start_time - start).total_seconds() // step_seconds)
        out[min(index, buckets - 1)].append(row)
    return out


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
    preset = _PRESETS.get(metric)
    if preset is None:
        raise ValueError(f"metric={metric!r} is not a known metric: expected one of {', '.join(METRIC_PRESETS)}")
    if end < start:
        raise ValueError(f"the window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    p = 0.95 if percentile is None else percentile
    if preset.uses_percentile and not (isinstance(p, (int, float)) and 0 <= p <= 1):
        raise ValueError(f"percentile={percentile!r} is not valid: expected a number from 0 to 1")
    edges = _bucket_edges(start, end, step_seconds)
    calls = [row for row in rows if is_inference(row)]
    by_model = group_by_model or preset.always_by_model
    groups: dict[tuple[tuple[str, str], ...], list[SpanRow]] = {}
    if by_model:
        for row in sorted(calls, key=lambda r: r.model or UNKNOWN_MODEL):
            groups.setdefault((("model", row.model or UNKNOWN_MODEL),), []).append(row)
    else:
        groups[()] = calls
    series = []
    for labels, members in groups.items():
        buckets = _bucket_rows(members, start, end, step_seconds, len(edges))
        if by_model and not any(buckets):
            continue  # a model with calls only outside the window is not in it
        points = tuple((hi, preset.compute(bucket, p)) for (_, hi), bucket in zip(edges, buckets, strict=True))
        series.append(MetricSeries(labels=dict(labels), points=points))
    return MetricsResult(
        metric=metric,
        start=start,
        end=end,
        step_seconds=step_seconds,
        percentile=p if preset.uses_percentile else None,
        series=tuple(series),
    )
