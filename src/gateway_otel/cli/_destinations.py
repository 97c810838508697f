"""`gateway-otel destinations list|get|test`: the destinations this process exports to (from env / .env)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._render import table

COMMANDS = ("destinations",)


def add_commands(commands: Any) -> None:
    dest = commands.add_parser("destinations", help="the destinations this process exports to (from env / .env)")
    actions = dest.add_subparsers(dest="action", required=True)
    for name, help_text in (("list", "list them"), ("get", "show one"), ("test", "send a probe span to each")):
        action = actions.add_parser(name, help=help_text)
        if name == "get":
            action.add_argument("id")
        elif name == "test":
            action.add_argument("id", nargs="?")
        action.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from .. import destinations  # here, not at the top: every other command would pay for the exporters

    if args.action == "list":
        found = destinations.list_destinations()
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
                d.shown_endpoint,
                ", ".join(f"{k}: {v}" for k, v in d.masked_headers.items()),
            )
            for d in found
        ]
        print(table(rows, ("id", "type", "enabled", "privacy", "sampling", "endpoint", "headers")))
        return 0
    if args.action == "get":
        destination = destinations.get_destination(args.id)
        if args.json:
            print(json.dumps(destination.to_dict(), indent=2))
        else:
            for key, value in destination.to_dict().items():
                print(f"{key:20} {value}")
        return 0
    results = destinations.test_destinations(args.id)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        rows = [
            (r.id, "ok" if r.ok else "FAILED", r.status or "-", f"{r.latency_ms:.0f} ms", r.message) for r in results
        ]
        print(table(rows, ("destination", "result", "status", "latency", "detail")))
    return 0 if all(r.ok for r in results) else 1
