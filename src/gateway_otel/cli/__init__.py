"""The `gateway-otel` command: the gateway simulator, the destinations this process exports to, OpenRouter
Broadcast's, `doctor`, queries of the telemetry (traces, trace, metrics, stats, logs, report) and the demo.

One module per command group, each with `COMMANDS`, `add_commands(subparsers)` and `run(args)`; `_render` prints
for all of them. A bad parameter or setting exits 2 with one line naming it; a backend that cannot answer exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._errors import ConfigurationError
from .._version import __version__
from . import _demo, _destinations, _doctor, _openrouter, _query, _simulator

__all__ = ["main"]

_DESCRIPTION = (
    "The gateway simulator, the destinations this process exports to, OpenRouter Broadcast's, doctor, queries of "
    "the telemetry (traces, trace, metrics, stats, logs, report) and the demo."
)
_GROUPS = (_simulator, _destinations, _openrouter, _doctor, _query, _demo)
"""The command groups, in the order `--help` lists them."""


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
    parser = argparse.ArgumentParser(prog="gateway-otel", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"gateway-otel {__version__}")
    commands = parser.add_subparsers(dest="command")
    for group in _GROUPS:
        group.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command in _query.COMMANDS:
        return _query.run(args)  # its own errors: exit 2 for a bad parameter, 1 for a backend that cannot answer
    for group in _GROUPS:
        if args.command in group.COMMANDS:
            try:
                return group.run(args)
            except (ConfigurationError, LookupError) as error:
                print(f"gateway-otel: {error}", file=sys.stderr)
                return 2
    parser.print_help()
    return 0
