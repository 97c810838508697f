"""Summaries: what every number of `metrics`, `stats` and the report is finished from, one definition for all backends.

A summary cell holds one group's inference calls in one time bucket of a window: counts, token and cost sums (and the
part of the cost priced from the price table rather than reported by the gateway), the distinct models, and the
latency and time-to-first-token percentiles asked for. `summarize_rows` computes cells from span rows (OpenObserve,
Phoenix, any `Backend`); a backend may compute the same cells itself (`Summarizer`: the local store does it in SQL,
`_local_summary.py`), and `tests/test_query_summary.py` checks both agree on the same spans.

Definitions (`_metrics` documents them for people):
- a row counts when it is an inference call (`is_inference`) and its start time, to the microsecond, lies in
  [start, end]; with a step of `s` (whole microseconds), its bucket is ⌊(row − start) / s⌋, the last holding `end`;
- groups: `ALL` (every call), or one per model label (`row.model or "unknown"`), or both;
- percentiles interpolate linearly between the closest ranks (`interpolate`, numpy's default).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

from .._prices import PRICE_TABLE
from ._model import SpanRow

UNKNOWN_MODEL = "unknown"
ALL = ""
"""The group of every call (a model label is never empty: an empty model is `unknown`)."""
MAX_BUCKETS = 10_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
LATENCY, TTFT = "latency", "ttft"
"""The fields a percentile is asked of: `duration_ms` and `time_to_first_token_ms`."""


def is_inference(row: SpanRow) -> bool:
    """A row is an inference call when it names a model or a GenAI operation."""
    return row.model is not None or row.operation is not None


def micros(moment: datetime) -> int:
    """Whole microseconds since the epoch, exactly (no float on the way)."""
    return (moment - EPOCH) // _MICROSECOND


def interpolate(count: int, p: float, value_at: Callable[[int], float]) -> float | None:
    """The p-th quantile of `count` sorted values, `value_at(i)` giving the i-th: linear interpolation between the
    closest ranks (Hyndman & Fan type 7); None for no values."""
    if not count:
        return None
    h = (count - 1) * p
    low = math.floor(h)
    high = min(low + 1, count - 1)
    x_low = value_at(low)
    return x_low + (h - low) * (value_at(high) - x_low)


def percentile_of(values: Sequence[float], p: float) -> float | None:
    """The p-th quantile (0 ≤ p ≤ 1) by linear interpolation between closest ranks; None for no values."""
    ordered = sorted(values)
    return interpolate(len(ordered), p, ordered.__getitem__)


@dataclass(frozen=True)
class SummaryQuery:
    """What to summarize: the calls of [start, end] matching the filters, per `step_seconds` bucket (one bucket
    without), for each group of `groups` (`"all"`, `"model"` or `"both"`), with the `percentiles` asked for as
    (field, p) pairs, field `LATENCY` or `TTFT`."""

    start: datetime
    end: datetime
    step_seconds: float | None = None
    groups: str = "all"
    percentiles: tuple[tuple[str, float], ...] = ()
    project_name: str | None = None
    model: str | None = None  # the requested or the served model
    status: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class Cell:
    """One group's calls in one bucket. `percentiles` maps each asked (field, p) to its value (None: no value)."""

    group: str  # ALL or a model label
    bucket: int
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    streamed: int = 0  # calls with a time to first token
    costed_calls: int = 0  # calls with a cost
    priced_calls: int = 0  # of them, calls whose cost came from the price table (`gateway.cost.source`)
    priced_cost: float = 0.0  # the sum of those costs; the rest of `cost` the gateway reported
    models: frozenset[str] = frozenset()
    first_us: int | None = None  # the first and the last call's start, in microseconds since the epoch
    last_us: int | None = None
    percentiles: Mapping[tuple[str, float], float | None] = field(default_factory=dict)


class Summarizer(Protocol):
    """The optional capability of a `Backend` that computes the cells itself (the local store, in SQL)."""

    def summarize(self, query: SummaryQuery) -> list[Cell]: ...


def step_micros(step_seconds: float | None) -> int | None:
    """The step in whole microseconds (what a `timedelta` of it holds), checked."""
    if step_seconds is None:
        return None
    if not step_seconds > 0 or math.isinf(step_seconds) or timedelta(seconds=step_seconds) < _MICROSECOND:
        raise ValueError(f"step_seconds={step_seconds!r} is not valid: expected a number of seconds greater than 0")
    return timedelta(seconds=step_seconds) // _MICROSECOND


def bucket_count(start: datetime, end: datetime, step_seconds: float | None) -> int:
    """How many buckets cut [start, end]: at least 1, at most `MAX_BUCKETS` (else `ValueError`)."""
    step = step_micros(step_seconds)
    if step is None:
        return 1
    count = max(1, -(-(micros(end) - micros(start)) // step))
    if count > MAX_BUCKETS:
        raise ValueError(
            f"step_seconds={step_seconds!r} is too small for the window: it makes {count} buckets, "
            f"expected at most {MAX_BUCKETS}"
        )
    return count


def bucket_of(moment_us: int, start_us: int, step_us: int | None, buckets: int) -> int:
    return 0 if step_us is None else min((moment_us - start_us) // step_us, buckets - 1)


def _wanted(row: SpanRow, query: SummaryQuery) -> bool:
    return (
        is_inference(row)
        and query.project_name in (None, row.project_name)
        and query.model in (None, row.model, row.request_model)
        and query.status in (None, row.status)
        and query.session_id in (None, row.session_id)
    )


def group_names(label: str, groups: str) -> tuple[str, ...]:
    """The groups a call of model `label` counts in."""
    return {"all": (ALL,), "model": (label,), "both": (ALL, label)}[groups]


def cell_of(group: str, bucket: int, rows: Sequence[SpanRow], percentiles: Iterable[tuple[str, float]]) -> Cell:
    """The cell of `rows` (the calls of one group and bucket)."""
    latencies = [row.duration_ms for row in rows]
    ttfts = [row.time_to_first_token_ms for row in rows if row.time_to_first_token_ms is not None]
    values = {LATENCY: sorted(latencies), TTFT: sorted(ttfts)}
    costs = [row for row in rows if row.cost is not None]
    priced = [row.cost for row in costs if row.cost_source == PRICE_TABLE]
    return Cell(
        group=group,
        bucket=bucket,
        calls=len(rows),
        errors=sum(row.status == "error" for row in rows),
        input_tokens=sum(row.input_tokens or 0 for row in rows),
        output_tokens=sum(row.output_tokens or 0 for row in rows),
        cost=float(sum(row.cost or 0.0 for row in rows)),
        streamed=len(ttfts),
        costed_calls=len(costs),
        priced_calls=len(priced),
        priced_cost=float(sum(priced)),  # type: ignore[arg-type]
        models=frozenset(row.model or UNKNOWN_MODEL for row in rows),
        first_us=min(micros(row.start_time) for row in rows),
        last_us=max(micros(row.start_time) for row in rows),
        percentiles={(f, p): interpolate(len(values[f]), p, values[f].__getitem__) for f, p in percentiles},
    )


def summarize_rows(rows: Iterable[SpanRow], query: SummaryQuery) -> list[Cell]:
    """The cells of `query` from span rows (any backend's), sorted by group and bucket; only non-empty cells."""
    start_us, end_us = micros(query.start), micros(query.end)
    step_us = step_micros(query.step_seconds)
    buckets = bucket_count(query.start, query.end, query.step_seconds)
    members: dict[tuple[str, int], list[SpanRow]] = {}
    for row in rows:
        at = micros(row.start_time)
        if not (start_us <= at <= end_us and _wanted(row, query)):
            continue
        bucket = bucket_of(at, start_us, step_us, buckets)
        for group in group_names(row.model or UNKNOWN_MODEL, query.groups):
            members.setdefault((group, bucket), []).append(row)
    return [cell_of(g, b, members[(g, b)], query.percentiles) for g, b in sorted(members)]
