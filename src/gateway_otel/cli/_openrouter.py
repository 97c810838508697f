"""`gateway-otel openrouter destinations list|get`: OpenRouter Broadcast's own observability destinations, read
through the official SDK (`gateway-otel[openrouter]`), secrets masked."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._render import config_text, table

COMMANDS = ("openrouter",)


def add_commands(commands: Any) -> None:
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
        add_openrouter_options(action)
        action.add_argument("--json", action="store_true", help="print JSON")


def add_openrouter_options(parser: Any) -> None:
    parser.add_argument(
        "--server-url", metavar="URL", help="management API URL (default: $GATEWAY_OTEL_OPENROUTER_URL or OpenRouter)"
    )
    parser.add_argument(
        "--retry-for", metavar="SECONDS", type=float, default=20.0, help="how long to retry 5xx answers (default 20)"
    )


def run(args: argparse.Namespace) -> int:
    from .. import openrouter as broadcast

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
            print(f"{name:14} {config_text(value) if isinstance(value, dict) else value}")
        return 0
    rows = [
        (
            d.id,
            d.type + ("" if d.typed else "*"),
            d.name or "-",
            "-" if d.enabled is None else "yes" if d.enabled else "no",
            "-" if d.privacy_mode is None else "on" if d.privacy_mode else "off",
            "-" if d.sampling_rate is None else f"{d.sampling_rate:g}",
            config_text(d.config),
        )
        for d in destinations
    ]
    print(table(rows, ("id", "type", "name", "enabled", "privacy", "sampling", "config")))
    if any(not d.typed for d in destinations):
        print("* the installed openrouter SDK could not type it (a new type or shape): shown from the raw JSON")
    print(f"{len(destinations)} destination{'' if len(destinations) == 1 else 's'}")
    return 0
