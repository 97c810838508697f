"""The report's charts: inline SVG line charts on a time axis fitted to the calls, with round ticks and units.

Pure: a `MetricsResult` in, an HTML panel (title, legend, SVG) out; nothing is fetched. The x axis spans the calls
(first to last start time, padded), not the whole requested window: five minutes of calls in a 24 h window fill the
chart instead of making one spike at its right edge, and the default step gives about 24 points over that range.
Ticks fall on round times (5 to 8 of them) and carry the date on the first tick and wherever the day changes; all
times are UTC. A series whose values are all 0 or missing (a model whose calls all failed, in the cost and token
charts) is neither drawn nor given a legend entry. Colours are given per model by the page, so one model keeps its
colour in every chart. Long names are cut with an ellipsis by CSS; the full name is the entry's tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from html import escape

from ._model import MetricSeries, MetricsResult

WIDTH, HEIGHT = 1160, 250  # the drawing's own units; CSS scales it to the panel's width
LEFT, RIGHT, TOP, BOTTOM = 84, 40, 12, 44
POINTS = 24  # about this many points per series by default
MIN_RANGE = 60  # seconds: a single call still gets a minute of axis
DAY = 86_400
# Round steps in seconds: 1 s ... 30 s, 1 min ... 30 min, 1 h ... 12 h, 1 d ... 4 weeks.
STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800,
         3600, 7200, 10800, 14400, 21600, 28800, 43200,
         DAY, 2 * DAY, 3 * DAY, 4 * DAY, 5 * DAY, 7 * DAY, 10 * DAY, 14 * DAY, 28 * DAY)  # fmt: skip
TICKS = range(5, 9)  # how many labelled times the x axis should carry
TimeScale = Callable[[datetime], float]  # a time to its x in the drawing
ValueScale = Callable[[float], float]  # a value to its y
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#db2777", "#ca8a04", "#64748b", "#dc2626",
           "#4f46e5")  # fmt: skip


# --- the time axis ---------------------------------------------------------------------------------------------------


def default_step(start: datetime, end: datetime) -> float:
    """The round step nearest to a 24th of [start, end]: about 24 points whatever the range's length."""
    target = max((end - start).total_seconds() / POINTS, 1.0)
    if target > STEPS[-1]:
        return float(math.ceil(target / DAY) * DAY)
    return float(min(STEPS, key=lambda step: abs(math.log(step / target))))


def _floor(moment: datetime, seconds: float) -> datetime:
    """`moment` rounded down to a whole multiple of `seconds` since the epoch (so 10-minute buckets start at :00)."""
    return datetime.fromtimestamp(math.floor(moment.timestamp() / seconds) * seconds, timezone.utc)


def fit_range(
    times: Sequence[datetime], start: datetime, end: datetime, step_seconds: float | None = None
) -> tuple[datetime, datetime, float]:
    """The charts' x range and step: the calls in [start, end] (a minute at least), widened to whole steps — the
    first call's step from its start, the last call's to its end, which pads each side by up to a step. Without a
    call in the window, the whole window."""
    inside = [t for t in times if start <= t <= end]
    if inside:
        low, high = min(inside), max(inside)
        short = timedelta(seconds=MIN_RANGE) - (high - low)
        if short > timedelta(0):
            low, high = low - short / 2, high + short / 2
    else:
        low, high = start, end
    step = step_seconds or default_step(low, high)
    aligned = _floor(low, step)
    count = max(1, math.ceil((high - aligned).total_seconds() / step - 1e-9))  # the last bucket holds its end
    return aligned, aligned + timedelta(seconds=count * step), step


def time_ticks(low: datetime, high: datetime) -> tuple[list[datetime], int]:
    """Round times in [low, high] and their step: 5 to 8 ticks where a round step gives that (6 preferred)."""
    span = (high - low).total_seconds()

    def ticks(step: int) -> list[datetime]:
        first = math.ceil(low.timestamp() / step) * step
        count = math.floor((high.timestamp() - first) / step + 1e-9) + 1
        return [datetime.fromtimestamp(first + i * step, timezone.utc) for i in range(max(count, 0))]

    candidates = [s for s in STEPS if span / s <= 12]
    options = [(s, ticks(s)) for s in candidates] or [(STEPS[-1], ticks(STEPS[-1]))]
    step, chosen = min(options, key=lambda o: (len(o[1]) not in TICKS, abs(len(o[1]) - 6), len(o[1])))
    return chosen, step


def tick_labels(ticks: Sequence[datetime], step: int) -> list[tuple[str, str]]:
    """(time, date) per tick: the date on the first tick and where the day changes; only the date for day steps."""
    labels, previous = [], None
    for moment in ticks:
        date = moment.strftime("%Y-%m-%d") if previous is None or moment.date() != previous.date() else ""
        if step >= DAY:
            labels.append((moment.strftime("%Y-%m-%d"), ""))
        else:
            labels.append((moment.strftime("%H:%M:%S" if step < 60 else "%H:%M"), date))
        previous = moment
    return labels


def step_text(seconds: float) -> str:
    """A step as a person says it: 15 s, 10 min, 4 h, 1 d."""
    for unit, size in (("d", DAY), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


# --- the value axis and numbers --------------------------------------------------------------------------------------


def value_ticks(largest: float) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 × 10^k) up to the first at or above `largest`: 3 to 5 intervals."""
    if largest <= 0:
        return [0.0, 1.0]
    raw = largest / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    count = max(1, math.ceil(largest / step - 1e-9))
    return [i * step for i in range(count + 1)]


def decimals(step: float) -> int:
    """How many decimals show every multiple of `step` exactly (0.25 → 2, 2.5 → 1, 50 → 0)."""
    places = 0
    while places < 12 and abs(step * 10**places - round(step * 10**places)) > 1e-6:
        places += 1
    return places


def usd(value: float) -> str:
    """Dollars for a person: cents from $1 ($12.35), three significant digits below ($0.0045), never 5e-05."""
    if value >= 1:
        return f"${value:,.2f}"
    if value <= 0:
        return "$0.00"
    places = max(2, 2 - math.floor(math.log10(value)))
    text = f"{value:.{places}f}".rstrip("0")
    return "$" + (text + "0" if len(text.partition(".")[2]) < 2 else text)


def _axis_usd(value: float, step: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:,.{max(decimals(step), 2 if step < 1 else 0)}f}"


def _axis_count(value: float, step: float) -> str:
    if value == 0:
        return "0"
    for size, suffix, least in ((1e9, "G", 5e8), (1e6, "M", 5e5), (1e3, "k", 1e3)):
        if step >= least:  # 0.5M, 1.0M; 2k, 4k; below a step of 1,000 whole numbers (2,500) read better
            return f"{value / size:,.{decimals(step / size)}f}{suffix}"
    return f"{value:,.{decimals(step)}f}"


def _axis_ms(value: float, step: float) -> str:
    return f"{value:,.{decimals(step) if value else 0}f} ms"


AXIS_FORMATS: dict[str, Callable[[float, float], str]] = {"usd": _axis_usd, "count": _axis_count, "ms": _axis_ms}


# --- one chart -------------------------------------------------------------------------------------------------------


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """One colour per model, in the given order (most-called first gets the first colour), repeating after 10."""
    return {model: PALETTE[i % len(PALETTE)] for i, model in enumerate(models)}


def name_html(name: str, css: str = "name") -> str:
    """A name cut by CSS with an ellipsis when long, the full name in its tooltip; escaped."""
    text = escape(name)
    return f'<span class="{css}" title="{text}">{text}</span>'


def _drawn(series: MetricSeries) -> bool:
    return any(value for _, value in series.points)  # not only zeros and gaps


def _rank(order: list[str], model: str) -> int:
    return order.index(model) if model in order else len(order)


def _legend(series: Sequence[MetricSeries], colors: Mapping[str, str]) -> str:
    keys = "".join(
        f'<span class="key"><i style="background:{colors.get(s.labels.get("model", "all"), PALETTE[0])}"></i>'
        f"{name_html(s.labels.get('model', 'all'))}</span>"
        for s in series
    )
    return f'<div class="legend">{keys}</div>'


def _x_axis(low: datetime, high: datetime, x: TimeScale) -> list[str]:
    ticks, step = time_ticks(low, high)
    base = HEIGHT - BOTTOM
    parts = [f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>']
    for moment, (time, date) in zip(ticks, tick_labels(ticks, step), strict=True):
        at = x(moment)
        parts.append(
            f'<line class="tick" x1="{at:.1f}" x2="{at:.1f}" y1="{base}" y2="{base + 5}"/>'
            f'<text class="xtick" x="{at:.1f}" y="{base + 18}" text-anchor="middle">{time}'
            + (f'<tspan class="date" x="{at:.1f}" dy="14">{date}</tspan>' if date else "")
            + "</text>"
        )
    parts.append(f'<text class="unit" x="{WIDTH - 4}" y="{base + 18}" text-anchor="end">UTC</text>')
    return parts


def _y_axis(ticks: Sequence[float], unit: str, y: ValueScale) -> list[str]:
    label = AXIS_FORMATS[unit]
    step = ticks[1] - ticks[0]
    return [
        f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
        f'<text class="ytick" x="{LEFT - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{label(v, step)}</text>'
        for v in ticks
    ]


def _series(series: MetricSeries, color: str, unit: str, step: timedelta, x: TimeScale, y: ValueScale) -> str:
    """A path and a dot per point, each drawn mid-bucket (its value is over the whole step), gaps left open."""
    model = escape(series.labels.get("model", "all"))
    commands, dots, pen_down = [], [], False
    for moment, value in series.points:
        if value is None:
            pen_down = False
            continue
        at, height = x(moment - step / 2), y(value)
        commands.append(f"{'L' if pen_down else 'M'}{at:.1f},{height:.1f}")
        pen_down = True
        shown = usd(value) if unit == "usd" else f"{value:,.0f}" + (" ms" if unit == "ms" else "")
        dots.append(
            f'<circle cx="{at:.1f}" cy="{height:.1f}" r="2.5" fill="{color}"><title>{model} · '
            f"{moment - step:%Y-%m-%d %H:%M:%S} to {moment:%H:%M:%S} UTC · {shown}</title></circle>"
        )
    return (
        f'<g class="series" data-model="{model}" data-points="{len(dots)}">'
        f'<path d="{" ".join(commands)}" fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round"/>'
        f"{''.join(dots)}</g>"
    )


def chart(result: MetricsResult, title: str, unit: str, colors: Mapping[str, str]) -> str:
    """One panel: title, legend (wrapping inside the panel) and a line chart of `result`'s series over its range."""
    low, high = result.start, result.end
    span = max((high - low).total_seconds(), 1e-9)
    order = list(colors)
    shown = sorted((s for s in result.series if _drawn(s)), key=lambda s: _rank(order, s.labels.get("model", "all")))
    step = timedelta(seconds=result.step_seconds or span)
    ticks = value_ticks(max((v for s in shown for _, v in s.points if v is not None), default=0.0))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return LEFT + plot_width * (moment - low).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_height * (1 - value / ticks[-1])

    parts = [*(_y_axis(ticks, unit, y) if shown else []), *_x_axis(low, high, x)]
    parts += [_series(s, colors.get(s.labels.get("model", "all"), PALETTE[0]), unit, step, x, y) for s in shown]
    if not shown:
        parts.append(f'<text class="empty" x="{LEFT + plot_width / 2}" y="{TOP + plot_height / 2}" '
                     'text-anchor="middle">no data</text>')  # fmt: skip
    svg = (
        f'<svg class="chart" data-metric="{escape(result.metric)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">{"".join(parts)}</svg>'
    )
    return f'<section class="panel chart-panel"><h2>{escape(title)}</h2>{_legend(shown, colors)}{svg}</section>'
