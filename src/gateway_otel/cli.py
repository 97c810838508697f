"""The `gateway-otel` command: the gateway simulator, the destinations this process exports to, and queries of the
telemetry (traces, trace, metrics, stats, logs, report)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._settings import ConfigurationError
from ._version import __version__


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _destinations(args: argparse.Namespace) -> int:
    from . import destinations

    if args.action == "list":
        found = destinations.list()
        if args.json:
            print(json.dumps([d.to_dict() for d in found], indent=2))
            return 0
        rows = [
            (
                d.id,
                d.name,
                "yes" if d.enabled else "no",
                "on" if d.privacy_mode else "off",
                f"{d.sampling_rate:g}",
                d.endpoint,
                ", ".join(f"{k}: {v}" for k, v in d.masked_headers.items()),
            )
            for d in found
        ]
        print(_table(rows, ("id", "type", "enabled", "privacy", "sampling", "endpoint", "headers")))
        return 0
    if args.action == "get":
        destination = destinations.get(args.id)
        if args.json:
            print(json.dumps(destination.to_dict(), indent=2))
        else:
            for key, value in destination.to_dict().items():
                print(f"{key:20} {value}")
        return 0
    results = destinations.test(args.id)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        rows = [
            (r.id, "ok" if r.ok else "FAILED", r.status or "-", f"{r.latency_ms:.0f} ms", r.message) for r in results
        ]
        print(_table(rows, ("destination", "result", "status", "latency", "detail")))
    return 0 if all(r.ok for r in results) else 1


def _config_text(config: Any, prefix: str = "") -> str:
    """`key=value, ...` of a (masked) destination config, nested keys dotted."""
    parts = []
    for key, value in config.items():
        if isinstance(value, dict):
            parts.append(_config_text(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}={value}")
    return ", ".join(p for p in parts if p)


def _add_openrouter_commands(commands: Any) -> None:
    openrouter = commands.add_parser("openrouter", help="OpenRouter's own settings (needs gateway-otel[openrouter])")
    groups = openrouter.add_subparsers(dest="group", required=True)
    dest = groups.add_parser(
        "destinations",
        help="OpenRouter Broadcast's observability destinations (key: OPENROUTER_MANAGEMENT_KEY or OPENROUTER_API_KEY)",
    )
    actions = dest.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list them, every page")
    listing.add_argument("--limit", type=int, default=100, help="page size, 1 to 100 (default 100)")
    getting = actions.add_parser("get", help="show one")
    getting.add_argument("id")
    for action in (listing, getting):
        action.add_argument("--workspace", metavar="ID", help="workspace id (default: the key's default workspace)")
        _add_openrouter_options(action)
        action.add_argument("--json", action="store_true", help="print JSON")


def _add_openrouter_options(parser: Any) -> None:
    parser.add_argument(
        "--server-url", metavar="URL", help="management API URL (default: $GATEWAY_OTEL_OPENROUTER_URL or OpenRouter)"
    )
    parser.add_argument(
        "--retry-for", metavar="SECONDS", type=float, default=20.0, help="how long to retry 5xx answers (default 20)"
    )


def _openrouter(args: argparse.Namespace) -> int:
    from . import _broadcast as broadcast

    url = broadcast.server_url(args.server_url)
    found = broadcast.management_key()
    if found is None:
        print(
            f"gateway-otel: no OpenRouter management key: set {' or '.join(broadcast.KEY_VARIABLES)}",
            file=sys.stderr,
        )
        return 2
    key = found[0]
    try:
        if args.action == "list":
            destinations = broadcast.list_broadcast_destinations(
                key, workspace_id=args.workspace, page_size=args.limit, url=url, retry_seconds=args.retry_for
            )
        else:
            destinations = [
                broadcast.get_broadcast_destination(
                    args.id, key, workspace_id=args.workspace, url=url, retry_seconds=args.retry_for
                )
            ]
    except broadcast.BroadcastError as error:
        print(f"gateway-otel: {error}", file=sys.stderr)
        return 1
    if args.json:
        data = [d.to_dict() for d in destinations]
        print(json.dumps(data if args.action == "list" else data[0], indent=2))
        return 0
    if args.action == "get":
        for name, value in destinations[0].to_dict().items():
            print(f"{name:14} {_config_text(value) if isinstance(value, dict) else value}")
        return 0
    rows = [
        (
            d.id,
            d.type + ("" if d.typed else "*"),
            d.name or "-",
            "-" if d.enabled is None else "yes" if d.enabled else "no",
            "-" if d.privacy_mode is None else "on" if d.privacy_mode else "off",
            "-" if d.sampling_rate is None else f"{d.sampling_rate:g}",
            _config_text(d.config),
        )
        for d in destinations
    ]
    print(_table(rows, ("id", "type", "name", "enabled", "privacy", "sampling", "config")))
    if any(not d.typed for d in destinations):
        print("* the installed openrouter SDK could not type it (a new type or shape): shown from the raw JSON")
    print(f"{len(destinations)} destination{'' if len(destinations) == 1 else 's'}")
    return 0


def _add_doctor_command(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor", help="this process's destinations, OpenRouter Broadcast's, trace join, and what clashes"
    )
    doctor.add_argument("--workspace", metavar="ID", help="OpenRouter workspace id (default: the key's default)")
    _add_openrouter_options(doctor)
    doctor.add_argument("--json", action="store_true", help="print JSON")


def _doctor(args: argparse.Namespace) -> int:
    from . import _broadcast, _doctor

    report = _doctor.diagnose(
        url=_broadcast.server_url(args.server_url), workspace_id=args.workspace, retry_seconds=args.retry_for
    )
    problems = len(report.findings)
    if args.json:
        data = {
            "destinations": [d.to_dict() for d in report.local],
            "broadcast": None if report.broadcast is None else [d.to_dict() for d in report.broadcast],
            "broadcast_note": report.broadcast_note,
            "trace_join": None if report.settings is None else report.settings.trace_join,
            "propagate_traceparent": None if report.settings is None else report.settings.propagate_traceparent,
            "findings": [f.to_dict() for f in report.findings],
        }
        print(json.dumps(data, indent=2))
        return 1 if problems else 0
    print("This process exports to (GATEWAY_OTEL_DESTINATIONS):")
    rows = [
        (
            d.id,
            "yes" if d.enabled else "no",
            "on" if d.privacy_mode else "off",
            f"{d.sampling_rate:g}",
            " ".join(
                [f"project={p}" for p in [dict(d.resource_attributes).get("openinference.project.name")] if p]
                + [d.endpoint or "-"]
            ),
        )
        for d in report.local
    ]
    print(_indent(_table(rows, ("id", "enabled", "privacy", "sampling", "target")) if rows else "(none)"))
    print(f"OpenRouter Broadcast ({report.broadcast_note}):")
    if report.broadcast is not None:
        remote = [
            (
                d.id,
                d.type,
                d.name or "-",
                "yes" if d.enabled else "no",
                "on" if d.privacy_mode else "off",
                "-" if d.sampling_rate is None else f"{d.sampling_rate:g}",
                d.target or "-",
            )
            for d in report.broadcast
        ]
        headers = ("id", "type", "name", "enabled", "privacy", "sampling", "target")
        print(_indent(_table(remote, headers) if remote else "(none)"))
    if report.settings is not None:
        print(_doctor.trace_join_text(report.settings)[0].upper() + _doctor.trace_join_text(report.settings)[1:])
    for finding in report.findings:
        print(f"{finding.level}: {finding.message}")
    print(f"{problems} problem{'' if problems == 1 else 's'} found" if problems else "No problems found.")
    return 1 if problems else 0


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _add_demo(commands: Any) -> None:
    from ._demo import demo_path

    demo = commands.add_parser(
        "demo",
        help="run a sample workload through the simulator (no keys, no network), store it locally, show the stats",
    )
    demo.add_argument("--live", action="store_true", help="send it to OpenRouter's free models (OPENROUTER_API_KEY)")
    demo.add_argument("--path", help=f"the SQLite file to store into, emptied first (default: {demo_path()})")


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._demo import run_demo

    return run_demo(path=Path(args.path) if args.path else None, live=args.live, out=sys.stdout)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code. A reader that stops early (`gateway-otel traces --json | head`) ends it
    quietly with 0, not with a traceback or a misleading error."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, where it can be handled, rather than at exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return 0


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's own flush at exit does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (a test's capture)
        pass


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="gateway-otel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gateway-otel {__version__}")
    commands = parser.add_subparsers(dest="command")
    sim = commands.add_parser("simulator", help="run the OpenAI-compatible gateway simulator on 127.0.0.1")
    sim.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8000, help="port to bind, 0 for any free port (default: 8000)")
    sim.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback interface")
    dest = commands.add_parser("destinations", help="the destinations this process exports to (from env / .env)")
    actions = dest.add_subparsers(dest="action", required=True)
    for name, help_text in (("list", "list them"), ("get", "show one"), ("test", "send a probe span to each")):
        action = actions.add_parser(name, help=help_text)
        if name == "get":
            action.add_argument("id")
        elif name == "test":
            action.add_argument("id", nargs="?")
        action.add_argument("--json", action="store_true", help="print JSON")
    _add_openrouter_commands(commands)
    _add_doctor_command(commands)
    from ._cli_query import COMMANDS as QUERY_COMMANDS
    from ._cli_query import add_query_commands, run_query_command

    add_query_commands(commands)
    _add_demo(commands)
    args = parser.parse_args(argv)
    if args.command in QUERY_COMMANDS:
        return run_query_command(args)
    try:
        if args.command == "simulator":
            from .simulator._server import main as simulator_main

            remote = ["--allow-remote"] if args.allow_remote else []
            return simulator_main(
                ["--host", args.host, "--port", str(args.port), *remote], prog="gateway-otel simulator"
            )
        if args.command == "destinations":
            return _destinations(args)
        if args.command == "openrouter":
            return _openrouter(args)
        if args.command == "doctor":
            return _doctor(args)
        if args.command == "demo":
            return _demo(args)
    except (ConfigurationError, LookupError) as error:
        print(f"gateway-otel: {error}", file=sys.stderr)
        return 2
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
