"""How the commands print: plain-text tables, times, numbers, JSON, and a running count on a terminal.

Every command renders through these helpers, so a table or a time looks the same wherever it is printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

__all__ = ["clock", "config_text", "cost", "indent", "milliseconds", "print_json", "progress", "table"]


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
