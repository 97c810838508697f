"""How the commands print: plain-text tables, times, numbers, JSON, and a running count on a terminal.

Every command renders through these helpers, so a table or a time looks the same wherever it is printed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

__all__ = ["clock", "command_name", "config_text", "cost", "indent", "milliseconds", "print_json", "progress", "table"]


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Columns padded to their widest cell, under a header line and a rule."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def config_text(config: Mapping[str, Any], prefix: str = "") -> str:
    """`key=value, ...` of a (masked) destination config, nested keys dotted."""
    parts = []
    for key, value in config.items():
        if isinstance(value, dict):
            parts.append(config_text(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}={value}")
    return ", ".join(p for p in parts if p)


def clock(moment: datetime) -> str:
    """A UTC time to the second, as the tables show it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def cost(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}"


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def progress() -> Callable[[int], None] | None:
    """A running count of fetched rows on stderr, only when a person is watching it."""
    if not sys.stderr.isatty():
        return None

    def show(count: int) -> None:
        print(f"\rfetched {count} rows…", end="", file=sys.stderr, flush=True)

    return show


def command_name(argv0: str | None = None) -> str:
    """How to run `gateway-otel` again, as the user just did, for commands printed to paste: `gateway-otel` when
    that is on PATH, else the path they typed (`.venv/bin/gateway-otel`), or `python -m gateway_otel`."""
    argv0 = sys.argv[0] if argv0 is None and sys.argv else (argv0 or "")
    name = os.path.basename(argv0)
    if name.startswith("gateway-otel"):
        found = shutil.which("gateway-otel")
        if found and os.path.realpath(found) == os.path.realpath(argv0):
            return "gateway-otel"
        return shlex.quote(_short(argv0))
    if name == "__main__.py" and os.path.basename(os.path.dirname(argv0)) in ("gateway_otel", "cli"):
        python = sys.executable
        found = shutil.which(os.path.basename(python))
        if found and os.path.realpath(found) == os.path.realpath(python):
            python = os.path.basename(python)
        return f"{shlex.quote(_short(python))} -m gateway_otel"
    return "gateway-otel"


def _short(path: str) -> str:
    """`path` relative to the working directory when it lies below it (`.venv/bin/gateway-otel`), else as given."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return relative if not relative.startswith("..") and os.sep in relative else path
