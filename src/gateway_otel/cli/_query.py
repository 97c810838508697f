"""The query commands of `gateway-otel`: traces, trace, metrics, stats, logs and report.

Each asks the `Telemetry` client a program would use, over one backend (`--backend local|openobserve|phoenix`,
configured by the same variables as the destination of that name) and prints a view (`_views`) or, with `--json`,
the result's plain JSON. `trace` opens a trace by its id or any unique prefix of 4 hex digits or more. Paging
through a remote backend shows a running count on stderr when stderr is a terminal. Tables show times in UTC.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .._env import parse_duration
from .._errors import QueryError
from ..query import METRIC_PRESETS, SpanRow, Telemetry, TracesResult
from ..query._backends import BACKEND_NAMES
from ..query._client import MAX_LIMIT, STATUSES, trace_id_or_prefix
from ..query._metrics import METRIC_UNITS
from ..query._model import TRACE_ID_DIGITS
from ..query._trace_summary import TraceSummary, matches, summary
from ..store import SEVERITIES
from ._render import print_json, progress, table
from ._views import ambiguous_text, logs_table, metrics_text, trace_tree, traces_table

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

    traces = command("traces", "the latest traces, newest first: one row each", "1h", "--since")
    traces.add_argument("--model", help="only traces with a call of this model")
    traces.add_argument("--status", choices=STATUSES, help="only traces with an ok (or a failed) call")
    traces.add_argument("--limit", type=int, default=50, help="most traces to show (50)")
    trace = command("trace", "one trace as a tree of spans", "7d", "--since")
    trace.add_argument("trace_id", metavar="ID", help="a trace id, or its first 4 or more hex digits")
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
    if not 0 < getattr(args, "limit", 1) <= MAX_LIMIT:
        raise ValueError(f"--limit={args.limit} is not valid: expected a whole number from 1 to {MAX_LIMIT:,}")
    if args.command == "trace":
        trace_id_or_prefix("ID", args.trace_id)


def read_traces(
    telemetry: Telemetry,
    window: str,
    limit: int,
    *,
    project_name: str | None = None,
    model: str | None = None,
    status: str | None = None,
) -> tuple[list[TraceSummary], list[SpanRow]]:
    """The `limit` traces of the window with the latest LLM calls of `model` and `status` (each when given; any
    span when neither is), newest first: their summaries, and the spans that matched (every span of them when
    nothing is asked), with their attributes.

    The newest matching spans are read (filtered by the backend, four per trace to begin with, more while that is
    not enough), then each chosen trace by its id, so the work grows with `limit`, not with the window."""
    wanted = 4 * limit
    while True:
        newest = telemetry.traces.query(
            project_name=project_name, model=model, status=status, time_window=window, limit=wanted, detail=False
        ).spans
        ids = list(dict.fromkeys(s.trace_id for s in newest if matches([s], model, status)))
        if len(ids) >= limit or len(newest) < wanted:
            break
        wanted *= 4
    chosen = [
        telemetry.traces.query(trace_id=trace_id, project_name=project_name, time_window=window, limit=None).spans
        for trace_id in ids[:limit]
    ]
    chosen = sorted((t for t in chosen if t), key=lambda t: (min(s.start_time for s in t), t[0].trace_id), reverse=True)
    listed = [s for members in chosen for s in members if matches([s], model, status)]
    return [summary(members) for members in chosen], sorted(listed, key=lambda s: s.start_time, reverse=True)


def _traces(telemetry: Telemetry, args: argparse.Namespace) -> int:
    traces, spans = read_traces(
        telemetry, args.window, args.limit, project_name=args.project_name, model=args.model, status=args.status
    )
    if args.json:  # the spans as before (scripts read them), and the traces they make
        print_json({**TracesResult(tuple(spans)).to_dict(), "traces": [t.to_dict() for t in traces]})
    else:
        print(traces_table(traces, today=datetime.now(timezone.utc).date()))
    return 0


def _trace(telemetry: Telemetry, args: argparse.Namespace) -> int:
    wanted = trace_id_or_prefix("ID", args.trace_id)
    result = telemetry.traces.query(
        trace_id=wanted, project_name=args.project_name, time_window=args.window, limit=TRACE_LIMIT
    )
    found = result.trace_ids()
    if len(found) > 1:
        print(f"gateway-otel: {ambiguous_text(wanted, result.spans, args.window)}", file=sys.stderr)
        return 2
    if not found:
        which = wanted if len(wanted) == TRACE_ID_DIGITS else f"whose id starts with {wanted}"
        print(f"gateway-otel: no trace {which} in the last {args.window}", file=sys.stderr)
        return 1
    spans = sorted(result.spans, key=lambda s: s.start_time)
    print_json(TracesResult(tuple(spans)).to_dict()) if args.json else print(trace_tree(spans))
    return 0


def _metrics(telemetry: Telemetry, args: argparse.Namespace) -> int:
    result = telemetry.metrics.query(
        args.metric, time_window=args.window, step=args.step, percentile=args.percentile, model_key=args.model_key,
        project_name=args.project_name, group_by_model=args.by_model,
    )  # fmt: skip
    print_json(result.to_dict()) if args.json else print(metrics_text(result, METRIC_UNITS[args.metric]))
    return 0


def _stats(telemetry: Telemetry, args: argparse.Namespace) -> int:
    from ..query._client import summarize
    from ..query._stats import STATS_HEADERS, stats_from_cells, stats_summary
    from ._views import STATS_ALIGN

    end = datetime.now(timezone.utc)
    start = end - timedelta(seconds=parse_duration(_flag(args), args.window))
    query = stats_summary(start, end, project_name=args.project_name)
    stats, total = stats_from_cells(summarize(telemetry.backend, query))  # in SQL for the local store
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
        print(table([s.cells() for s in (*stats, total)], STATS_HEADERS, align=STATS_ALIGN))
    else:
        print(f"no calls in the last {args.window}")
    return 0


def _logs(telemetry: Telemetry, args: argparse.Namespace) -> int:
    result = telemetry.logs.query(
        severity=args.severity, project_name=args.project_name, time_window=args.window, limit=args.limit
    )
    today = datetime.now(timezone.utc).date()
    print_json(result.to_dict()) if args.json else print(logs_table(result.records, today=today))
    return 0


def _newest_failures(telemetry: Telemetry, args: argparse.Namespace, shown: int) -> list[SpanRow]:
    """The newest `shown` failed calls of the window: failed spans read newest first until enough are calls."""
    from ..query._report import failures

    wanted = 4 * shown
    while True:
        spans = telemetry.traces.query(
            project_name=args.project_name, status="error", time_window=args.window, limit=wanted, detail=False
        ).spans
        if len(failures(spans)) >= shown or len(spans) < wanted:
            return failures(spans)[:shown]
        wanted *= 4


def _report(telemetry: Telemetry, args: argparse.Namespace) -> int:
    from ..query._client import summarize
    from ..query._report import FAILURES_SHOWN, failures, report_page
    from ..query._summary import Cell, SummaryQuery, summarize_rows

    step = parse_duration("--step", args.step) if args.step else None
    end = datetime.now(timezone.utc)
    start = end - timedelta(seconds=parse_duration(_flag(args), args.window))
    local = callable(getattr(telemetry.backend, "summarize", None))  # the local store computes in SQL
    rows = (
        ()
        if local
        else telemetry.traces.query(  # a remote backend: the window's rows, fetched once
            project_name=args.project_name, time_window=args.window, limit=None, detail=False
        ).spans
    )
    failed = _newest_failures(telemetry, args, FAILURES_SHOWN) if local else failures(rows)[:FAILURES_SHOWN]

    def summaries(query: SummaryQuery) -> list[Cell]:
        if local:
            return summarize(telemetry.backend, replace(query, project_name=args.project_name))
        return summarize_rows(rows, query)

    page, total = report_page(summaries, failed, start=start, end=end, step_seconds=step, source=args.backend)
    path = Path(args.html)
    path.write_text(page, encoding="utf-8")
    summary = {"file": str(path.resolve()), "calls": total.calls, "start": start.isoformat(), "end": end.isoformat()}
    print_json(summary) if args.json else print(f"wrote {path} ({total.calls} calls, last {args.window})")
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
