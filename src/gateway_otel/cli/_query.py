"""The query commands of `gateway-otel`: traces, trace, metrics, stats, logs and report.

Each asks the `Telemetry` client a program would use, over one backend (`--backend local|openobserve|phoenix`,
configured by the same variables as the destination of that name) and prints a table or, with `--json`, the
result's plain JSON. Paging through a remote backend shows a running count on stderr when stderr is a terminal.
Tables show times in UTC.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .._env import parse_duration
from .._errors import QueryError
from ..query import METRIC_PRESETS, LogRow, MetricsResult, SpanRow, Telemetry, TracesResult
from ..query._backends import BACKEND_NAMES
from ..query._client import STATUSES, is_trace_id
from ..store import SEVERITIES
from ._render import clock, cost, milliseconds, print_json, progress, table

TRACE_LIMIT = 100_000  # the most spans `trace` shows
COMMANDS = ("traces", "trace", "metrics", "stats", "logs", "report")


def add_commands(commands: Any) -> None:
    """Add the query subcommands to `gateway-otel`'s subparsers."""

    def command(name: str, help_text: str, window: str, window_flag: str = "--window") -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--backend", choices=BACKEND_NAMES, default="local", help="where to read (default: local)")
        parser.add_argument(
            "--path",
            metavar="FILE",
            help="the local store to read (default: GATEWAY_OTEL_LOCAL_PATH, else the default store, else the demo's)",
        )
        parser.add_argument("--project", dest="project_name", help="project (Phoenix) or service (OpenObserve)")
        parser.add_argument(
            window_flag, dest="window", default=window, help=f"how far back, e.g. 5m, 1h, 7d ({window})"
        )
        parser.add_argument("--json", action="store_true", help="print JSON")
        return parser

    traces = command("traces", "the latest calls, newest first", "1h", "--since")
    traces.add_argument("--model", help="only this model")
    traces.add_argument("--status", choices=STATUSES, help="only ok or failed calls")
    traces.add_argument("--limit", type=int, default=50, help="most spans to show (50)")
    trace = command("trace", "one trace as a tree of spans", "7d", "--since")
    trace.add_argument("trace_id", metavar="ID")
    metrics = command("metrics", "a metric preset: one value, or a series with --step", "24h")
    metrics.add_argument("metric", metavar="NAME", help=", ".join(METRIC_PRESETS))
    metrics.add_argument("--step", help="one point per step, e.g. 1h")
    metrics.add_argument("--percentile", type=float, default=0.95, help="for latency and time to first token (0.95)")
    metrics.add_argument("--model", dest="model_key", help="only this model")
    metrics.add_argument("--by-model", action="store_true", help="one series per model")
    command("stats", "per model: calls, errors, tokens, cost, latency, time to first token", "24h")
    logs = command("logs", "log records (failed calls, and content when captured)", "24h")
    logs.add_argument("--severity", choices=SEVERITIES, help="minimum severity")
    logs.add_argument("--limit", type=int, default=100, help="most records to show (100)")
    report = command("report", "an HTML page with charts of cost, tokens and latency per model", "24h")
    report.add_argument("--html", required=True, metavar="FILE", help="where to write the page")
    report.add_argument("--step", help="one point per step (default: about 24 points)")


# --- rendering: results to text --------------------------------------------------------------------------------------


def _tokens(row: SpanRow) -> str:
    if row.input_tokens is None and row.output_tokens is None:
        return "-"
    return f"{row.input_tokens or 0}/{row.output_tokens or 0}"


def tracestable(spans: Sequence[SpanRow]) -> str:
    rows = [
        (
            clock(s.start_time),
            s.trace_id,
            s.model or s.name,
            s.status,
            milliseconds(s.duration_ms),
            milliseconds(s.time_to_first_token_ms),
            _tokens(s),
            cost(s.cost),
            s.provider or "-",
        )
        for s in spans
    ]
    headers = ("time (UTC)", "trace id", "model / span", "status", "ms", "ttft ms", "tokens in/out", "cost", "provider")
    return table(rows, headers) if rows else "no spans in this window"


def trace_tree(spans: Sequence[SpanRow]) -> str:
    """The spans of one trace, each under its parent, indented; children in start order."""
    if not spans:
        return "no such trace in this window"
    ordered = sorted(spans, key=lambda s: s.start_time)
    ids = {s.span_id for s in ordered}
    children: dict[str | None, list[SpanRow]] = {}
    for span in ordered:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    origin = ordered[0].start_time
    lines = [f"trace {ordered[0].trace_id}  ({len(ordered)} spans)"]

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            offset = (span.start_time - origin).total_seconds() * 1000
            details = [f"+{offset:.0f} ms", f"{span.duration_ms:.0f} ms", span.status]
            if span.model:
                details.append(span.model)
            if span.total_tokens is not None:
                details.append(f"{_tokens(span)} tokens")
            if span.cost is not None:
                details.append(cost(span.cost))
            if span.status_message:
                details.append(span.status_message)
            lines.append(f"{'  ' * depth}{span.name}  [{', '.join(details)}]")
            walk(span.span_id, depth + 1)

    walk(None, 1)
    return "\n".join(lines)


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def metricstable(result: MetricsResult) -> str:
    label = "model" if any(s.labels for s in result.series) else "series"
    rows = [(s.labels.get("model", "all"), clock(t), _value(v)) for s in result.series for t, v in s.points]
    title = result.metric + (f" (p{result.percentile * 100:g})" if result.percentile is not None else "")
    body = table(rows, (label, "until (UTC)", "value")) if rows else "no data in this window"
    return f"{title}, {clock(result.start)} to {clock(result.end)}\n{body}"


def logstable(records: Sequence[LogRow]) -> str:
    rows = [(clock(r.time), r.severity, r.trace_id or "-", r.body.replace("\n", " ")[:160]) for r in records]
    return table(rows, ("time (UTC)", "severity", "trace id", "message")) if rows else "no log records in this window"


# --- reading ---------------------------------------------------------------------------------------------------------


def _open(args: argparse.Namespace, watcher: Callable[[int], None] | None) -> Telemetry:
    """The same client a program would use; the remote backends report their paging to `watcher`. Reading the
    demo's store in place of the default one is said in one line."""
    if args.backend != "local":
        return Telemetry(args.backend, **({"progress": watcher} if watcher is not None else {}))
    telemetry = Telemetry("local", path=args.path)
    stands_in_for = getattr(telemetry.backend, "stands_in_for", None)
    if stands_in_for is not None:
        path = getattr(telemetry.backend, "path", "")
        print(f"gateway-otel: no store at {stands_in_for} yet; reading the demo's, {path}", file=sys.stderr)
    return telemetry


def _flag(args: argparse.Namespace) -> str:
    return "--since" if args.command in ("traces", "trace") else "--window"


def _check(args: argparse.Namespace) -> None:
    """Name the command-line flags in what is wrong, before anything is opened or fetched."""
    parse_duration(_flag(args), args.window)
    if args.path is not None and args.backend != "local":
        raise ValueError(f"--path only applies to --backend local (not {args.backend})")
    if getattr(args, "step", None) is not None:
        parse_duration("--step", args.step)
    if getattr(args, "limit", 1) <= 0:
        raise ValueError(f"--limit={args.limit} is not valid: expected a whole number greater than 0")
    if args.command == "trace" and not is_trace_id(args.trace_id):
        raise ValueError(f"ID={args.trace_id!r} is not valid: expected a trace id of 32 hex digits")


def _all_spans(telemetry: Telemetry, args: argparse.Namespace) -> tuple[datetime, datetime, list[SpanRow]]:
    """Every span in the window: stats and the report need them all, not the newest `limit`."""
    end = datetime.now(timezone.utc)
    start = end - timedelta(seconds=parse_duration(_flag(args), args.window))
    result = telemetry.traces.query(project_name=args.project_name, time_window=args.window, limit=None, detail=False)
    return start, end, list(result.spans)


def _traces(telemetry: Telemetry, args: argparse.Namespace) -> int:
    result = telemetry.traces.query(
        model=args.model, status=args.status, project_name=args.project_name, time_window=args.window,
        limit=args.limit, detail=args.json,
    )  # fmt: skip
    print_json(result.to_dict()) if args.json else print(tracestable(result.spans))
    return 0


def _trace(telemetry: Telemetry, args: argparse.Namespace) -> int:
    result = telemetry.traces.query(
        trace_id=args.trace_id, project_name=args.project_name, time_window=args.window, limit=TRACE_LIMIT
    )
    spans = sorted(result.spans, key=lambda s: s.start_time)
    if args.json:
        print_json(TracesResult(tuple(spans)).to_dict())
    elif spans:
        print(trace_tree(spans))
    if not spans:
        print(f"gateway-otel: no trace {args.trace_id.lower()} in the last {args.window}", file=sys.stderr)
        return 1
    return 0


def _metrics(telemetry: Telemetry, args: argparse.Namespace) -> int:
    result = telemetry.metrics.query(
        args.metric, time_window=args.window, step=args.step, percentile=args.percentile, model_key=args.model_key,
        project_name=args.project_name, group_by_model=args.by_model,
    )  # fmt: skip
    print_json(result.to_dict()) if args.json else print(metricstable(result))
    return 0


def _stats(telemetry: Telemetry, args: argparse.Namespace) -> int:
    from ..query._stats import STATS_HEADERS, model_stats, total_stats

    start, end, spans = _all_spans(telemetry, args)
    stats, total = model_stats(spans), total_stats(spans)
    if args.json:
        print_json(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "models": [s.to_dict() for s in stats],
                "total": total.to_dict(),
            }
        )
    elif stats:
        print(table([s.cells() for s in (*stats, total)], STATS_HEADERS))
    else:
        print(f"no calls in the last {args.window}")
    return 0


def _logs(telemetry: Telemetry, args: argparse.Namespace) -> int:
    result = telemetry.logs.query(
        severity=args.severity, project_name=args.project_name, time_window=args.window, limit=args.limit
    )
    print_json(result.to_dict()) if args.json else print(logstable(result.records))
    return 0


def _report(telemetry: Telemetry, args: argparse.Namespace) -> int:
    from ..query._report import render_report

    step = parse_duration("--step", args.step) if args.step else None
    start, end, spans = _all_spans(telemetry, args)
    page = render_report(spans, start=start, end=end, step_seconds=step, source=args.backend)
    path = Path(args.html)
    path.write_text(page, encoding="utf-8")
    calls = sum(1 for s in spans if s.model or s.operation)
    summary = {"file": str(path.resolve()), "calls": calls, "start": start.isoformat(), "end": end.isoformat()}
    print_json(summary) if args.json else print(f"wrote {path} ({calls} calls, last {args.window})")
    return 0


_RUN = {"traces": _traces, "trace": _trace, "metrics": _metrics, "stats": _stats, "logs": _logs, "report": _report}


def run(args: argparse.Namespace) -> int:
    """Run one query command; a bad parameter exits 2, a backend that cannot answer exits 1, each with one line."""
    watcher = progress()
    try:
        _check(args)
        telemetry = _open(args, watcher)
    except (ValueError, QueryError) as error:
        print(f"gateway-otel: {error}", file=sys.stderr)
        return 2
    try:
        return _RUN[args.command](telemetry, args)
    except QueryError as error:
        print(f"{chr(10) if watcher else ''}gateway-otel: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away: `main` ends quietly
        raise
    except (ValueError, OSError) as error:
        print(f"{chr(10) if watcher else ''}gateway-otel: {error}", file=sys.stderr)
        return 2
    finally:
        telemetry.close()
        if watcher is not None:
            print(file=sys.stderr)
