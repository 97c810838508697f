"""The `gateway-otel` command."""

from __future__ import annotations

import argparse
import sys

from ._version import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway-otel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gateway-otel {__version__}")
    commands = parser.add_subparsers(dest="command")
    sim = commands.add_parser("simulator", help="run the OpenAI-compatible gateway simulator on 127.0.0.1")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.command == "simulator":
        from .simulator._server import main as simulator_main

        return simulator_main(["--host", args.host, "--port", str(args.port)])
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
