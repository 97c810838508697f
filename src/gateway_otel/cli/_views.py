"""What the query commands print: the traces table, one trace as a tree, a metric as a pivot, the logs table.

Views are pure functions from query results to text, through `_render`'s tables and units, so `traces`, the demo's
latest traces and `logs` look alike. Tables fit `WIDTH` columns; numbers are right-aligned with their unit. A trace
id is printed as its first `SHORT_ID` digits (more when two listed traces share them): `gateway-otel trace` opens a
trace by any unique prefix of 4 digits or more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from .._prices import PRICE_TABLE
from ..query import LogRow, MetricsResult, SpanRow
from ..query._metrics import is_inference
from ..query._trace_summary import (
    TraceSummary,
    answer_text,
    error_type,
    group,
    prompt_text,
    root_of,
    summary,
)
from ._render import clock, count, duration, ellipsize, money, one_line, percent, table, time_format, utc

__all__ = [
    "STATS_ALIGN",
    "WIDTH",
    "ambiguous_text",
    "logs_table",
    "metrics_text",
    "short_ids",
    "trace_tree",
    "traces_table",
]

WIDTH = 120
STATS_ALIGN = "l" + "r" * 8  # `_stats.STATS_HEADERS`: the model, then numbers
SHORT_ID = 12
EXCERPT = 100  # characters of a prompt, an answer or an error in `trace`
MODEL_HEADER = 20  # the most characters of a model name heading a metric column


def short_ids(trace_ids: Sequence[str], length: int = SHORT_ID) -> int:
    """The fewest leading digits (`length` or more) that tell the listed traces apart."""
    distinct = set(trace_ids)
    while length < 32 and len({t[:length] for t in distinct}) < len(distinct):
        length += 1
    return length


def _status(errors: int, types: Sequence[str]) -> str:
    if not errors:
        return "ok"
    return " ".join(["error" if errors == 1 else f"{errors} errors", ", ".join(types)]).strip()


def traces_table(traces: Sequence[TraceSummary], *, today: date | None = None) -> str:
    """One row per trace, newest first as given; fits `WIDTH` by ellipsizing the root, models and status."""
    if not traces:
        return "no traces in this window"
    digits = short_ids([t.trace_id for t in traces])
    form = time_format([t.start_time for t in traces], today)
    rows = [
        (
            utc(t.start_time, form),
            t.trace_id[:digits],
            t.root,
            t.calls,
            ", ".join(t.models) or "-",
            _status(t.errors, t.error_types),
            duration(t.duration_ms),
            count(t.total_tokens),
            money(t.cost) + _PRICED_MARK.get(t.cost_sources.source, ""),
        )
        for t in traces
    ]
    headers = ("time (UTC)", "trace", "root", "calls", "models", "status", "latency", "tokens", "cost")
    text = table(rows, headers, align="lllrllrrr", max_width=WIDTH, shrink=(2, 4, 5))
    marks = {_PRICED_MARK[t.cost_sources.source] for t in traces if t.cost_sources.source in _PRICED_MARK}
    return text + "".join(f"\n{_MARK_NOTES[mark]}" for mark in sorted(marks))


_PRICED_MARK = {"price_table": " *", "mixed": " +"}
"""The cost column of `traces` marks a trace whose cost the price table priced, all or some of it."""
_MARK_NOTES = {
    " *": "* priced from the price table (genai-prices): the gateway reported no cost",
    " +": "+ part gateway-reported, part priced from the price table (`gateway-otel trace` splits it)",
}


# --- one trace ------------------------------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _excerpt(text: str | None) -> str | None:
    flat = one_line(text) if text else ""
    return ellipsize(flat, EXCERPT) if flat else None


def _details(span: SpanRow) -> list[str]:
    """What a span's line says after its name: status and duration; for an LLM call, its figures too."""
    status = span.status if span.status != "error" else " ".join(filter(None, ["error", error_type(span)]))
    if not is_inference(span):
        return [duration(span.duration_ms)] + ([status] if span.status == "error" else [])
    details = [status, duration(span.duration_ms)]
    if span.time_to_first_token_ms is not None:
        details.append(f"ttft {duration(span.time_to_first_token_ms)}")
    if span.input_tokens is not None or span.output_tokens is not None:
        details.append(f"{count(span.input_tokens or 0)} in / {count(span.output_tokens or 0)} out tokens")
    if span.cost is not None:
        details.append(money(span.cost) + (" (price table)" if span.cost_source == PRICE_TABLE else ""))
    details += [span.provider] if span.provider else []
    if span.model and span.model not in span.name:
        details.append(f"model {span.model}")
    return details


def _excerpts(span: SpanRow) -> list[tuple[str, str]]:
    said = [("prompt", prompt_text(span)), ("answer", answer_text(span))] if is_inference(span) else []
    said.append(("error", span.status_message if span.status == "error" else None))
    return [(label, text) for label, raw in said if (text := _excerpt(raw)) is not None]


def trace_tree(spans: Sequence[SpanRow]) -> str:
    """One trace: a header with its totals, then each span under its parent (children in start order), with the
    start offset in a left gutter; an LLM call shows its figures and a line each of its prompt, answer and error."""
    if not spans:
        return "no such trace in this window"
    ordered = sorted(spans, key=lambda s: s.start_time)
    about = summary(ordered)
    ids = {s.span_id for s in ordered}
    children: dict[str | None, list[SpanRow]] = {}
    for span in ordered:
        children.setdefault(span.parent_span_id if span.parent_span_id in ids else None, []).append(span)
    totals = [f"{clock(about.start_time)} UTC", _plural(about.spans, "span"), _plural(about.calls, "LLM call")]
    totals.append(duration(about.duration_ms))
    totals += [f"{count(about.total_tokens)} tokens"] if about.total_tokens is not None else []
    totals += [about.cost_sources.text(about.cost, money)] if about.cost is not None else []
    totals.append(_status(about.errors, about.error_types))
    body: list[tuple[str, str]] = []  # (gutter, text)

    def walk(parent: str | None, lead: str) -> None:
        kids = children.get(parent, [])
        for i, span in enumerate(kids):
            last = i == len(kids) - 1
            branch, below = ("", "") if parent is None else ("└─ " if last else "├─ ", "   " if last else "│  ")
            offset = (span.start_time - about.start_time).total_seconds() * 1000
            line = " · ".join([one_line(span.name), *_details(span)])
            body.append(("+0 ms" if offset == 0 else f"+{duration(offset)}", f"{lead}{branch}{line}"))
            guide = "│  " if children.get(span.span_id) else "   "
            for label, text in _excerpts(span):
                body.append(("", f"{lead}{below}{guide}{label:<8}{text}"))
            walk(span.span_id, lead + below)

    walk(None, "")
    gutter = max(len(g) for g, _ in body)
    lines = [f"trace {about.trace_id}", " · ".join(totals), ""]
    return "\n".join(lines + [f"{g:>{gutter}}  {text}".rstrip() for g, text in body])


def ambiguous_text(prefix: str, spans: Sequence[SpanRow], window: str, shown: int = 5) -> str:
    """The lines saying that `prefix` starts several traces, listing a few (newest first) with time and root."""
    traces = sorted(group(spans).values(), key=lambda t: root_of(t).start_time, reverse=True)
    lines = [f"trace id {prefix} is ambiguous: {len(traces)} traces in the last {window} start with it"]
    for members in traces[:shown]:
        root = root_of(members)
        lines.append(f"  {root.trace_id}  {clock(root.start_time)}  {one_line(root.name)}")
    if len(traces) > shown:
        lines.append(f"  … and {len(traces) - shown} more; give more digits")
    return "\n".join(lines)


# --- metrics --------------------------------------------------------------------------------------------------------

_FORMATS: dict[str, Callable[[float | None], str]] = {
    "tokens": count,
    "calls": count,
    "models": count,
    "ms": duration,
    "USD": money,
    "ratio": percent,
}
_UNIT_LABELS = {"ratio": "%"}


def _step_text(seconds: float) -> str:
    for size, suffix in ((604800, "w"), (86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{suffix}"
    return f"{seconds:g}s"


def _column_groups(headers: Sequence[str], columns: Sequence[Sequence[str]], first: int) -> list[list[int]]:
    """The value columns in groups that each fit `WIDTH` beside a first column `first` characters wide."""
    groups: list[list[int]] = [[]]
    used = first
    for i, header in enumerate(headers):
        width = 2 + max(len(header), *(len(c) for c in columns[i]))
        if groups[-1] and used + width > WIDTH:
            groups.append([])
            used = first
        groups[-1].append(i)
        used += width
    return groups


def metrics_text(result: MetricsResult, unit: str) -> str:
    """A metric with its unit: one value; one row per model; or, with a step, one row per step and a column per
    series (the models, ellipsized), in as many tables side by side as `WIDTH` needs. A cost not all reported by the
    gateway says where it came from on a last line."""
    text = _metric_body(result, unit)
    sources = result.cost_sources
    total = sum(v or 0.0 for s in result.series for _, v in s.points)
    split = sources.split(total, money) if sources is not None else None
    return text if split is None else f"{text}\n{money(total)} in all: {split}"


def _metric_body(result: MetricsResult, unit: str) -> str:
    show = _FORMATS.get(unit, lambda v: "-" if v is None else f"{v:g}")
    percentile = f", p{result.percentile * 100:g}" if result.percentile is not None else ""
    step = f", per {_step_text(result.step_seconds)}" if result.step_seconds else ""
    title = (
        f"{result.metric} ({_UNIT_LABELS.get(unit, unit)}{percentile}{step}), "
        f"{clock(result.start)} to {clock(result.end)} UTC"
    )
    series = result.series
    if not series:
        return f"{title}\nno data in this window"
    names = [s.labels.get("model", "all") for s in series]
    if result.step_seconds is None and not any(s.labels for s in series):
        return f"{title}\n{show(series[0].points[0][1])}"
    if result.step_seconds is None:
        rows = [(name, show(s.points[0][1])) for name, s in zip(names, series, strict=True)]
        return f"{title}\n{table(rows, ('model', result.metric), align='lr', max_width=WIDTH, shrink=(0,))}"
    stamps = [t for t, _ in series[0].points]
    form = time_format([result.start, result.end])
    labels = [utc(t, form) for t in stamps]
    columns = [[show(v) for _, v in s.points] for s in series]
    first = max(len("until (UTC)"), *(len(label) for label in labels))
    groups = _column_groups(names, columns, first)
    headers = names if len(groups) == 1 else [ellipsize(name, MODEL_HEADER, middle=True) for name in names]
    tables = []
    for chosen in groups if len(groups) == 1 else _column_groups(headers, columns, first):
        rows = [(label, *(columns[i][r] for i in chosen)) for r, label in enumerate(labels)]
        tables.append(table(rows, ("until (UTC)", *(headers[i] for i in chosen)), align="l" + "r" * len(chosen)))
    return title + "\n" + "\n\n".join(tables)


# --- logs -----------------------------------------------------------------------------------------------------------


def logs_table(records: Sequence[LogRow], *, today: date | None = None) -> str:
    if not records:
        return "no log records in this window"
    digits = short_ids([r.trace_id for r in records if r.trace_id])
    form = time_format([r.time for r in records], today)
    rows = [(utc(r.time, form), r.severity, (r.trace_id or "-")[:digits], r.body) for r in records]
    return table(rows, ("time (UTC)", "severity", "trace", "message"), max_width=WIDTH, shrink=(3,))
