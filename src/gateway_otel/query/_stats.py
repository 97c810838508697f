"""The per-model stats table (`gateway-otel stats`, `gateway-otel demo`): a pure function of span rows.

Percentiles follow `_metrics.percentile_of` (linear interpolation); only inference calls count (`is_inference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ._metrics import UNKNOWN_MODEL, is_inference, percentile_of
from ._model import SpanRow

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

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}

    def cells(self) -> tuple[str, ...]:
        """The row as `STATS_HEADERS` shows it."""
        return (
            self.model,
            str(self.calls),
            str(self.errors),
            str(self.input_tokens),
            str(self.output_tokens),
            f"${self.cost:.6f}",
            _ms(self.p50_latency_ms),
            _ms(self.p95_latency_ms),
            _ms(self.p50_ttft_ms),
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _one(model: str, rows: Sequence[SpanRow]) -> ModelStats:
    latencies = [row.duration_ms for row in rows]
    ttfts = [row.time_to_first_token_ms for row in rows if row.time_to_first_token_ms is not None]
    return ModelStats(
        model=model,
        calls=len(rows),
        errors=sum(row.status == "error" for row in rows),
        input_tokens=sum(row.input_tokens or 0 for row in rows),
        output_tokens=sum(row.output_tokens or 0 for row in rows),
        cost=sum(row.cost or 0.0 for row in rows),
        p50_latency_ms=percentile_of(latencies, 0.5),
        p95_latency_ms=percentile_of(latencies, 0.95),
        p50_ttft_ms=percentile_of(ttfts, 0.5),
    )


def model_stats(rows: Sequence[SpanRow]) -> list[ModelStats]:
    """One entry per model among the inference calls in `rows`, most-called first (ties by name)."""
    groups: dict[str, list[SpanRow]] = {}
    for row in rows:
        if is_inference(row):
            groups.setdefault(row.model or UNKNOWN_MODEL, []).append(row)
    stats = [_one(model, members) for model, members in groups.items()]
    return sorted(stats, key=lambda s: (-s.calls, s.model))


def total_stats(rows: Sequence[SpanRow]) -> ModelStats:
    """All inference calls together, as one row named `all`."""
    return _one("all", [row for row in rows if is_inference(row)])
