"""How the commands print: plain-text tables, times, numbers, JSON, and a running count on a terminal.

Every command renders through these helpers, so a table or a time looks the same wherever it is printed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any

__all__ = [
    "clock",
    "command_name",
    "config_text",
    "count",
    "duration",
    "ellipsize",
    "indent",
    "money",
    "one_line",
    "percent",
    "print_json",
    "progress",
    "table",
    "time_format",
    "utc",
]


def table(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    *,
    align: str = "",
    max_width: int | None = None,
    shrink: Sequence[int] = (),
) -> str:
    """Columns padded to their widest cell, under a header line and a rule; cells on one line, control characters
    removed. `align` has a letter per column, `l` (the default) or `r` (numbers). A table wider than `max_width`
    ellipsizes the cells of its `shrink` columns, the widest first, down to their header's width (at least 8)."""
    cells = [[one_line(str(c)) for c in headers], *[[one_line(str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if max_width is not None:
        widths = _fit(widths, [max(len(h), 8) for h in cells[0]], max_width, shrink)
    aligns = align.ljust(len(headers), "l")

    def cell(text: str, width: int, how: str) -> str:
        text = ellipsize(text, width)
        return text.rjust(width) if how == "r" else text.ljust(width)

    lines = ["  ".join(cell(*column) for column in zip(row, widths, aligns, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fit(widths: list[int], floors: list[int], max_width: int, shrink: Sequence[int]) -> list[int]:
    """`widths` with the `shrink` columns narrowed, widest first, until the line fits `max_width` (or cannot)."""
    widths = list(widths)
    excess = sum(widths) + 2 * (len(widths) - 1) - max_width
    while excess > 0:
        room = [i for i in shrink if widths[i] > floors[i]]
        if not room:
            break
        widest = max(room, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


_ESCAPE = re.compile("\x1b\\[[0-?]*[ -/]*[@-~]")  # a terminal's colour or cursor sequence
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]+")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """`text` as one line for a terminal: control characters (newlines, escape sequences) and runs of spaces become
    one space, bidirectional overrides go."""
    return " ".join(_BIDI.sub("", _CONTROL.sub(" ", _ESCAPE.sub("", text))).split())


def ellipsize(text: str, width: int, *, middle: bool = False) -> str:
    """`text` cut to `width` characters with `…` where it was cut: at the end, or in the `middle` (a model name's
    provider and version both stay visible)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    if middle:
        head = width // 2
        tail = width - 1 - head
        return text[:head] + "…" + (text[-tail:] if tail else "")
    return text[: width - 1] + "…"


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


def time_format(moments: Sequence[datetime], today: date | None = None) -> str:
    """The `strftime` format for a column of UTC times: the time of day when they all fall on one day (`today`,
    when given), else month and day too."""
    days = {m.astimezone(timezone.utc).date() for m in moments}
    return "%H:%M:%S" if len(days) <= 1 and (today is None or days <= {today}) else "%m-%d %H:%M:%S"


def utc(moment: datetime, form: str) -> str:
    return moment.astimezone(timezone.utc).strftime(form)


def duration(ms: float | None) -> str:
    """A duration with its unit, to about three significant digits: `3.4 ms`, `110 ms`, `1.25 s`, `12.5 s`."""
    if ms is None:
        return "-"
    if ms < 9.95:
        return f"{ms:.1f} ms"
    if ms < 999.5:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 9.995:
        return f"{seconds:.2f} s"
    return f"{seconds:.1f} s" if seconds < 99.95 else f"{seconds:,.0f} s"


def money(usd: float | None) -> str:
    """US dollars to three significant digits below $1 (`$0.000178`, `$0.0442`), to the cent above (`$12.35`);
    nothing spent is `$0`."""
    if usd is None:
        return "-"
    if usd == 0:
        return "$0"
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    decimals = 2 - math.floor(math.log10(abs(usd)))
    whole, _, fraction = f"{usd:.{decimals}f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def count(value: float | None) -> str:
    """A whole number with thousands separators (`12,345`)."""
    return "-" if value is None else f"{round(value):,}"


def percent(ratio: float | None) -> str:
    """A ratio from 0 to 1 as a percentage to one decimal (`23.1 %`)."""
    return "-" if ratio is None else f"{ratio * 100:.1f} %"


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
