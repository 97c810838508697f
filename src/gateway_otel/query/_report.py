"""`gateway-otel report --html FILE`: one self-contained HTML page with cost, tokens and latency per model over time.

Pure: span rows in, a string out. The charts are inline SVG drawn here (no script, stylesheet, font or image is
fetched from anywhere); the numbers come from the same metric presets as `metrics.query()`. A few lines of inline
script only record, once the browser has laid the page out, each chart's drawn size on the chart
(`data-drawn-width`), so a headless browser can prove the page really renders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape

from ._metrics import compute_metric
from ._model import MetricsResult, SpanRow
from ._stats import STATS_HEADERS, model_stats, total_stats

CHARTS = (
    ("cost", "Cost per model (USD)", None),
    ("token_consumption", "Tokens per model (input + output)", None),
    ("inference_latency", "Latency per model, p95 (ms)", 0.95),
)
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 40

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 820px; color: #111; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
svg.chart { display: block; background: #fafafa; border: 1px solid #eee; }
svg text { font-size: 11px; fill: #555; }
.legend span { display: inline-block; margin-right: 1.2em; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.muted { color: #777; }
"""

_SCRIPT = """
document.querySelectorAll("svg.chart").forEach(function (svg) {
  var box = svg.getBBox();
  svg.setAttribute("data-drawn-width", Math.round(box.width));
  svg.setAttribute("data-drawn-height", Math.round(box.height));
});
document.body.setAttribute("data-rendered", "yes");
"""


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above `value` (an axis that ends on a round number)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= value)


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.4g}"
    return f"{value:.8f}".rstrip("0").rstrip(".")  # 0.00005, never 5e-05


def _time_label(moment: datetime, span_seconds: float) -> str:
    return moment.strftime("%H:%M" if span_seconds <= 86_400 else "%m-%d %H:%M")


def _chart(result: MetricsResult, title: str) -> str:
    """One line chart: a path and points per series, y from 0 to a round maximum, time along x."""
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span_seconds = max((result.end - result.start).total_seconds(), 1e-9)
    values = [v for s in result.series for _, v in s.points if v is not None]
    top = _nice_max(max(values, default=0.0))

    def x(moment: datetime) -> float:
        return LEFT + width * (moment - result.start).total_seconds() / span_seconds

    def y(value: float) -> float:
        return TOP + height * (1 - value / top)

    parts = [
        f'<svg class="chart" data-metric="{escape(result.metric)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
    ]
    for i in range(5):
        value = top * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + width}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{_number(value)}</text>'
        )
    for moment in (result.start, result.start + (result.end - result.start) / 2, result.end):
        parts.append(
            f'<text x="{x(moment):.1f}" y="{TOP + height + 18}" text-anchor="middle">'
            f"{_time_label(moment, span_seconds)}</text>"
        )
    for index, series in enumerate(result.series):
        color = PALETTE[index % len(PALETTE)]
        model = escape(series.labels.get("model", "all"))
        commands, pen_down, dots = [], False, []
        for moment, value in series.points:
            if value is None:
                pen_down = False
                continue
            commands.append(f"{'L' if pen_down else 'M'}{x(moment):.1f},{y(value):.1f}")
            pen_down = True
            dots.append(
                f'<circle cx="{x(moment):.1f}" cy="{y(value):.1f}" r="3" fill="{color}">'
                f"<title>{model} · {moment.isoformat(timespec='minutes')} · {_number(value)}</title></circle>"
            )
        parts.append(
            f'<g class="series" data-model="{model}" data-points="{len(dots)}">'
            f'<path d="{" ".join(commands)}" fill="none" stroke="{color}" stroke-width="2"/>{"".join(dots)}</g>'
        )
    if not values:
        parts.append(f'<text x="{LEFT + width / 2}" y="{TOP + height / 2}" text-anchor="middle">no data</text>')
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(s.labels.get("model", "all"))}</span>'
        for i, s in enumerate(result.series)
    )
    return f'<h2>{escape(title)}</h2><div class="legend">{legend}</div>{"".join(parts)}'


def _stats_table(rows: Sequence[SpanRow]) -> str:
    stats = model_stats(rows)
    if not stats:
        return '<p class="muted">No calls in this window.</p>'
    body = [*stats, total_stats(rows)] if len(stats) > 1 else stats
    head = "".join(f"<th>{escape(h)}</th>" for h in STATS_HEADERS)
    lines = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in s.cells()) + "</tr>" for s in body)
    return f'<table class="stats"><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>'


def default_step(start: datetime, end: datetime) -> float:
    """About 24 points across the window, in whole minutes."""
    return max(60.0, math.ceil((end - start).total_seconds() / 24 / 60) * 60)


def render_report(
    rows: Sequence[SpanRow],
    *,
    start: datetime,
    end: datetime,
    step_seconds: float | None = None,
    source: str = "local",
) -> str:
    """The whole page for the calls among `rows` in [start, end], one point per `step_seconds` (default ~24)."""
    step = step_seconds or default_step(start, end)
    charts = [
        _chart(compute_metric(m, rows, start=start, end=end, step_seconds=step, percentile=p, group_by_model=True), t)
        for m, t, p in CHARTS
    ]
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    window = f"{start.isoformat(timespec='minutes')} to {end.isoformat(timespec='minutes')}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>gateway-otel report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>gateway-otel report</h1>"
        f'<p class="muted">Backend {escape(source)} · {escape(window)} · one point per {step / 60:g} min · '
        f"generated {generated}</p>"
        f"<h2>Per model</h2>{_stats_table(rows)}"
        f"{''.join(charts)}"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
