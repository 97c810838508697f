"""The per-model stats table (`gateway-otel stats`, `gateway-otel demo`): a pure function of summary cells.

The cells come from span rows (`_summary.summarize_rows`) or from a backend that computes them (the local store, in
SQL), so the table is the same either way. Percentiles follow `_summary.interpolate` (linear interpolation); only
inference calls count (`is_inference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ._model import CostSources, SpanRow
from ._summary import ALL, LATENCY, TTFT, Cell, SummaryQuery, summarize_rows

STATS_PERCENTILES = ((LATENCY, 0.5), (LATENCY, 0.95), (TTFT, 0.5))

STATS_HEADERS = ("model", "calls", "errors", "input tok", "output tok", "cost", "p50 ms", "p95 ms", "p50 ttft ms")


@dataclass(frozen=True)
class ModelStats:
    """One model's calls in a window. Latencies in ms; None where no call measured it."""

    model: str
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p50_ttft_ms: float | None
    cost_sources: CostSources = field(default_factory=CostSources)
    """Where `cost` came from: the gateway, the price table, or both."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cost_sources": self.cost_sources.to_dict(), "total_tokens": self.total_tokens}

    def cells(self) -> tuple[str, ...]:
        """The row as `STATS_HEADERS` shows it."""
        return (
            self.model,
            str(self.calls),
            str(self.errors),
            str(self.input_tokens),
            str(self.output_tokens),
            self.cost_sources.text(self.cost, _usd) if self.cost_sources.costed_calls else "-",  # no cost: no guess
            _ms(self.p50_latency_ms),
            _ms(self.p95_latency_ms),
            _ms(self.p50_ttft_ms),
        )


def _usd(value: float) -> str:
    return f"${value:.6f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _one(cell: Cell) -> ModelStats:
    return ModelStats(
        model="all" if cell.group == ALL else cell.group,
        calls=cell.calls,
        errors=cell.errors,
        input_tokens=cell.input_tokens,
        output_tokens=cell.output_tokens,
        cost=cell.cost,
        p50_latency_ms=cell.percentiles.get((LATENCY, 0.5)),
        p95_latency_ms=cell.percentiles.get((LATENCY, 0.95)),
        p50_ttft_ms=cell.percentiles.get((TTFT, 0.5)),
        cost_sources=CostSources(cell.costed_calls, cell.priced_calls, cell.priced_cost),
    )


def stats_summary(start: datetime, end: datetime, **filters: str | None) -> SummaryQuery:
    """The summary the stats table is finished from: per model and in all, one bucket, its three percentiles."""
    return SummaryQuery(start=start, end=end, groups="both", percentiles=STATS_PERCENTILES, **filters)


def stats_from_cells(cells: Sequence[Cell]) -> tuple[list[ModelStats], ModelStats]:
    """One entry per model, most-called first (ties by name), and the `all` row, from `stats_summary`'s cells."""
    stats = sorted((_one(c) for c in cells if c.group != ALL and c.calls), key=lambda s: (-s.calls, s.model))
    total = next((_one(c) for c in cells if c.group == ALL), None) or _one(Cell(ALL, 0))
    return stats, total


def _all_time(rows: Sequence[SpanRow]) -> SummaryQuery:
    times = [row.start_time for row in rows] or [datetime.now().astimezone()]
    return stats_summary(min(times), max(times))


def model_stats(rows: Sequence[SpanRow]) -> list[ModelStats]:
    """One entry per model among the inference calls in `rows`, most-called first (ties by name)."""
    return stats_from_cells(summarize_rows(rows, _all_time(rows)))[0]


def total_stats(rows: Sequence[SpanRow]) -> ModelStats:
    """All inference calls together, as one row named `all`."""
    return stats_from_cells(summarize_rows(rows, _all_time(rows)))[1]
