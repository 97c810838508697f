"""`gateway-otel simulator`: the OpenAI-compatible gateway simulator on 127.0.0.1 (see `gateway_otel.simulator`)."""

from __future__ import annotations

import argparse
from typing import Any

COMMANDS = ("simulator",)


def add_commands(commands: Any) -> None:
    sim = commands.add_parser("simulator", help="run the OpenAI-compatible gateway simulator on 127.0.0.1")
    sim.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8000, help="port to bind, 0 for any free port (default: 8000)")
    sim.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback interface")


def run(args: argparse.Namespace) -> int:
    from ..simulator._server import main as simulator_main

    remote = ["--allow-remote"] if args.allow_remote else []
    return simulator_main(["--host", args.host, "--port", str(args.port), *remote], prog="gateway-otel simulator")
