"""The `gateway-otel` command: the gateway simulator and the destinations this process exports to."""

from __future__ import annotations

import argparse
import json
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway-otel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gateway-otel {__version__}")
    commands = parser.add_subparsers(dest="command")
    sim = commands.add_parser("simulator", help="run the OpenAI-compatible gateway simulator on 127.0.0.1")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8000)
    dest = commands.add_parser("destinations", help="the destinations this process exports to (from env / .env)")
    actions = dest.add_subparsers(dest="action", required=True)
    for name, help_text in (("list", "list them"), ("get", "show one"), ("test", "send a probe span to each")):
        action = actions.add_parser(name, help=help_text)
        if name == "get":
            action.add_argument("id")
        elif name == "test":
            action.add_argument("id", nargs="?")
        action.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        if args.command == "simulator":
            from .simulator._server import main as simulator_main

            return simulator_main(["--host", args.host, "--port", str(args.port)])
        if args.command == "destinations":
            return _destinations(args)
    except (ConfigurationError, LookupError) as error:
        print(f"gateway-otel: {error}", file=sys.stderr)
        return 2
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
