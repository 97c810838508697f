"""`gateway-otel report --html FILE`: one self-contained HTML page about the calls in a window.

Pure: summary cells (`_summary.Cell`, from rows or computed by the backend: the local store's SQL) and the newest
failed calls in, a string out (`render_report` does it from span rows). Top to bottom: the headline totals (the
`all` row of `_stats.stats_from_cells`, the code behind `gateway-otel stats`, so the page and the CLI agree),
charts of cost, tokens and p95 latency per model (`_charts.py`, from the same metric presets as `metrics.query()`),
the per-model table and the failures, newest first, each with its full trace id for `gateway-otel trace ID`.
Nothing is fetched: no script, stylesheet, font or image comes from anywhere, and every name and message is escaped
(model names and error messages come from outside). A few lines of inline script only record, once the browser has
laid the page out, what a headless browser test needs to prove the page renders well: each chart's drawn size, the
page's width, which names were cut with an ellipsis, how many wrapped and how many legend entries left their panel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from html import escape

from ._charts import chart, fit_range, model_colors, name_html, step_text, usd
from ._metrics import is_inference, metric_from_cells, metric_summary
from ._model import SpanRow
from ._stats import STATS_HEADERS, ModelStats, stats_from_cells, stats_summary
from ._summary import ALL, EPOCH, Cell, SummaryQuery, summarize_rows

Summaries = Callable[[SummaryQuery], list[Cell]]
"""How the page asks for summary cells: `summarize_rows` over rows, or a backend's own (`_client.summarize`)."""

CHART_PERCENTILE = 0.95
CHARTS = (  # metric, title ({step}: one point's step), axis unit
    ("cost", "Cost per model (USD per {step})", "usd"),
    ("token_consumption", "Tokens per model (input + output, per {step})", "count"),
    ("inference_latency", "Latency per model (p95 over each {step}, ms)", "ms"),
)
FAILURES_SHOWN = 50  # the newest failures listed; `gateway-otel traces --status error` lists more
MESSAGE_CHARS = 160  # an error message is cut here on the page; its tooltip holds the whole (≤ 1024) text

_STYLE = """
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328;
  background: #f4f5f7; }
main { max-width: 1340px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; font-weight: 650; }
h2 { font-size: 15px; margin: 0 0 10px; font-weight: 600; }
.meta { color: #636c76; margin: 0 0 20px; }
.meta b { color: #1f2328; font-weight: 600; }
.headline { display: grid; grid-template-columns: repeat(auto-fit, minmax(128px, 1fr)); gap: 12px;
  margin-bottom: 20px; }
.card, .panel { background: #fff; border: 1px solid #dfe3e8; border-radius: 8px; }
.card { padding: 12px 14px; min-width: 0; }
.card .label { color: #636c76; font-size: 13px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.card .value { font-size: 22px; font-weight: 650; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  font-variant-numeric: tabular-nums;
  margin: 2px 0; }
.card .sub { color: #636c76; font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.card .value.long { font-size: 18px; line-height: 28px; }  /* $0.000442 fits a card at 1400 px */
.card.bad .value { color: #c2261d; }
.panel { padding: 16px 18px; margin-bottom: 16px; min-width: 0; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 0 0 6px; font-size: 12.5px; }
.legend .key { display: inline-flex; align-items: center; min-width: 0; max-width: 100%; }
.legend .name { max-width: 36ch; }
i.swatch, .legend i { display: inline-block; flex: none; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; }
.name { display: inline-block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  vertical-align: bottom; max-width: 32ch; }
svg.chart { display: block; width: 100%; height: auto; }
svg text { font-size: 12px; fill: #636c76; font-variant-numeric: tabular-nums; }
svg text .date { fill: #1f2328; font-weight: 600; }
svg .grid { stroke: #eceef1; } svg .axis { stroke: #b8bfc7; } svg .tick { stroke: #b8bfc7; }
svg text.empty { font-size: 14px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid #eceef1; text-align: right; white-space: nowrap; }
th { color: #636c76; font-weight: 600; font-size: 12px; border-bottom-color: #dfe3e8; }
th.left, td.left { text-align: left; }
tr.total td { font-weight: 650; border-top: 1px solid #dfe3e8; }
td.message { overflow: hidden; text-overflow: ellipsis; max-width: 0; width: 100%; color: #3d444d; }
td.message b { color: #c2261d; font-weight: 600; margin-right: 8px; }
table.failures .name { max-width: 28ch; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; user-select: all; }
.muted { color: #636c76; }
.count { color: #636c76; font-weight: 400; }
footer { color: #8c959f; font-size: 12px; margin-top: 8px; }
"""

_SCRIPT = """
(function () {
  var body = document.body, wrapped = 0, cut = 0, outside = 0;
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var drawn = svg.getBoundingClientRect();
    svg.setAttribute("data-drawn-width", Math.round(drawn.width));
    svg.setAttribute("data-drawn-height", Math.round(drawn.height));
    svg.setAttribute("data-content-width", Math.round(svg.getBBox().width));
  });
  document.querySelectorAll(".name").forEach(function (name) {
    var short = name.scrollWidth > name.clientWidth;
    name.setAttribute("data-cut", short ? "yes" : "no");
    if (short) cut++;
    if (name.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(name).fontSize)) wrapped++;
  });
  document.querySelectorAll(".legend .key").forEach(function (key) {
    var panel = key.closest(".panel").getBoundingClientRect(), box = key.getBoundingClientRect();
    if (box.left < panel.left || box.right > panel.right || box.bottom > panel.bottom) outside++;
  });
  var numbers = 0;
  document.querySelectorAll(".card .value").forEach(function (value) {
    if (value.scrollWidth > value.clientWidth) numbers++;
  });
  body.setAttribute("data-cut-numbers", numbers);
  body.setAttribute("data-page-width", document.documentElement.scrollWidth);
  body.setAttribute("data-wrapped-names", wrapped);
  body.setAttribute("data-cut-names", cut);
  body.setAttribute("data-legend-outside", outside);
  body.setAttribute("data-rendered", "yes");
})();
"""


# --- the headline ----------------------------------------------------------------------------------------------------


def percent(part: int, whole: int) -> str:
    """A share for a person: 25%, 2.5%, 0.97%; 0% of nothing."""
    share = 100 * part / whole if whole else 0.0
    return (f"{share:.2g}" if 0 < share < 1 else f"{share:.1f}".removesuffix(".0")) + "%"


def _count(value: int) -> str:
    return f"{value / 1e6:,.1f}M" if value >= 10_000_000 else f"{value:,}"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def _card(key: str, label: str, value: float | None, text: str, sub: str, css: str = "card") -> str:
    """One headline number: shown rounded, its exact value in `data-value` (and the tooltip) for tests and people."""
    data = "" if value is None else repr(value)
    return (
        f'<div class="{css}" data-key="{key}" data-value="{data}"><div class="label">{label}</div>'
        f'<div class="value{" long" * (len(text) > 7)}" title="{data}">{text}</div><div class="sub">{sub}</div></div>'
    )


def _cost_sub(total: ModelStats, per_call: str) -> str:
    """Under the cost: per call when the gateway reported it all; else where it came from (the split in full in the
    tooltip: the card is narrow)."""
    split = total.cost_sources.split(total.cost, usd)
    if split is None:
        return per_call
    short = "price table" if total.cost_sources.source == "price_table" else "incl. price table"
    return f'<span data-key="cost_sources" title="{escape(split)}">{short}</span>'


def headline(total: ModelStats, models: int, streamed: int) -> str:
    """The totals over every call in the window, the numbers `gateway-otel stats` prints in its `all` row."""
    calls = total.calls or 1

    def per_call(text: str) -> str:
        return f"{text} / call" if total.calls else "no calls"

    rate = f'<span data-key="error_rate" data-value="{total.errors / calls!r}">{percent(total.errors, total.calls)}'
    cards = (
        _card("calls", "Calls", total.calls, f"{total.calls:,}", f"{models} model{'s' * (models != 1)}"),
        _card("errors", "Errors", total.errors, f"{total.errors:,}", f"{rate}</span> error rate",
              "card bad" if total.errors else "card"),
        _card("input_tokens", "Input tokens", total.input_tokens, _count(total.input_tokens),
              per_call(_count(round(total.input_tokens / calls)))),
        _card("output_tokens", "Output tokens", total.output_tokens, _count(total.output_tokens),
              per_call(_count(round(total.output_tokens / calls)))),
        _card("cost", "Cost", total.cost, usd(total.cost), _cost_sub(total, per_call(usd(total.cost / calls)))),
        _card("p50_latency_ms", "p50 latency", total.p50_latency_ms, _ms(total.p50_latency_ms), "all calls"),
        _card("p95_latency_ms", "p95 latency", total.p95_latency_ms, _ms(total.p95_latency_ms), "all calls"),
        _card("p50_ttft_ms", "p50 first token", total.p50_ttft_ms, _ms(total.p50_ttft_ms),
              f"{streamed:,} streamed call{'s' * (streamed != 1)}"),
    )  # fmt: skip
    return f'<section class="headline" aria-label="Totals">{"".join(cards)}</section>'


# --- the tables ------------------------------------------------------------------------------------------------------


def _stats_table(stats: Sequence[ModelStats], total: ModelStats, colors: dict[str, str]) -> str:
    if not stats:
        return '<p class="muted">No calls in this window.</p>'
    head = "".join(f'<th class="{"left" if i == 0 else ""}">{escape(h)}</th>' for i, h in enumerate(STATS_HEADERS))

    def line(s: ModelStats, css: str = "") -> str:
        swatch = f'<i class="swatch" style="background:{colors[s.model]}"></i>' if s.model in colors else ""
        cells = "".join(f"<td>{escape(c)}</td>" for c in s.cells()[1:])
        return f'<tr class="{css}"><td class="left">{swatch}{name_html(s.model)}</td>{cells}</tr>'

    lines = "".join(line(s) for s in stats) + (line(total, "total") if len(stats) > 1 else "")
    return f'<table class="stats"><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>'


def failures(rows: Sequence[SpanRow]) -> list[SpanRow]:
    """The failed calls (the `errors` of the stats), newest first."""
    failed = [row for row in rows if is_inference(row) and row.status == "error"]
    return sorted(failed, key=lambda row: row.start_time, reverse=True)


def error_parts(message: str | None) -> tuple[str, str]:
    """(type, message) of a span's status message, which our instrumentation writes as `type: message`."""
    if not message:
        return "error", ""
    kind, colon, rest = message.partition(": ")
    if colon and kind and len(kind) <= 48 and " " not in kind:
        return kind, rest
    return "error", message


def _failures_table(failed: Sequence[SpanRow], count: int) -> str:
    if not failed:
        return '<p class="muted">No failed calls in this window.</p>'
    lines = []
    for row in failed[:FAILURES_SHOWN]:
        kind, message = error_parts(row.status_message)
        short = message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"
        lines.append(
            f'<tr class="failure"><td class="left">{row.start_time.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S}</td>'
            f'<td class="left">{name_html(row.model or row.name)}</td>'
            f'<td class="left message" title="{escape(message)}"><b class="error">{escape(kind)}</b>'
            f"{escape(short)}</td>"
            f"<td>{row.duration_ms:,.0f}</td>"
            f'<td class="left"><code class="trace-id">{escape(row.trace_id)}</code></td></tr>'
        )
    more = count - min(len(failed), FAILURES_SHOWN)
    note = (
        f'<p class="muted more">… and {more:,} more: <code>gateway-otel traces --status error</code> lists them.</p>'
        if more > 0
        else ""
    )
    head = "".join(
        f'<th class="{css}">{h}</th>'
        for h, css in (("time (UTC)", "left"), ("model", "left"), ("error", "left"), ("ms", ""),
                       ("trace id", "left"))
    )  # fmt: skip
    return f'<table class="failures"><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table>{note}'


# --- the page --------------------------------------------------------------------------------------------------------


def _minute(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M}"


def render_report(
    rows: Sequence[SpanRow],
    *,
    start: datetime,
    end: datetime,
    step_seconds: float | None = None,
    source: str = "local",
) -> str:
    """The whole page for the calls among `rows`; the charts span the calls in [start, end], one point per
    `step_seconds` (default: about 24 points over that span)."""
    return report_page(
        lambda query: summarize_rows(rows, query),
        failures(rows)[:FAILURES_SHOWN],
        start=start,
        end=end,
        step_seconds=step_seconds,
        source=source,
    )[0]


def report_page(
    summaries: Summaries,
    failed: Sequence[SpanRow],
    *,
    start: datetime,
    end: datetime,
    step_seconds: float | None = None,
    source: str = "local",
) -> tuple[str, ModelStats]:
    """The whole page, and its totals, from `summaries` of the calls in [start, end] and the newest failed calls
    (`failed`, at least `FAILURES_SHOWN` of them when there are that many)."""
    cells = summaries(stats_summary(start, end))
    stats, total = stats_from_cells(cells)
    everything = next((c for c in cells if c.group == ALL), Cell(ALL, 0))
    times = [EPOCH + timedelta(microseconds=us) for us in (everything.first_us, everything.last_us) if us is not None]
    low, high, step = fit_range(times, start, end, step_seconds)
    colors = model_colors([s.model for s in stats])
    # One summary serves the three charts: sums per model and step, and the p95 latency (CHARTS' percentile).
    query = metric_summary(
        "inference_latency", start=low, end=high, step_seconds=step, percentile=CHART_PERCENTILE, group_by_model=True
    )
    by_step = summaries(query)
    charts = [
        chart(metric_from_cells(metric, query, by_step), title.format(step=step_text(step)), unit, colors)
        for metric, title, unit in CHARTS
    ]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    meta = (
        f"Backend <b>{escape(source)}</b> · window <b>{_minute(start)}</b> to <b>{_minute(end)}</b> UTC · "
        + (f"charts <b>{_minute(low)}</b> to <b>{_minute(high)}</b> · " if total.calls else "")
        + f"one point per <b>{step_text(step)}</b>"
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>gateway-otel report, {_minute(start)} to {_minute(end)} UTC</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        f'<h1>gateway-otel report</h1><p class="meta">{meta}</p>'
        f"{headline(total, len(stats), everything.streamed)}{''.join(charts)}"
        f'<section class="panel"><h2>Per model</h2>{_stats_table(stats, total, colors)}</section>'
        f'<section class="panel" id="failures"><h2>Failures <span class="count">{total.errors:,}</span></h2>'
        f"{_failures_table(failed, total.errors)}</section>"
        f"<footer>Generated {generated} UTC by gateway-otel. Times are UTC.</footer>"
        f"</main><script>{_SCRIPT}</script></body></html>\n"
    )
    return page, total
