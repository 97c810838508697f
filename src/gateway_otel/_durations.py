"""Durations written the way people write them: `30s`, `5m`, `1h`, `24h`, `7d`, `2w`."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
EXPECTED = "a positive number followed by s, m, h, d or w, such as 5m, 1h, 24h or 7d"


def parse_duration(name: str, raw: object) -> float:
    """Seconds in `raw`; `ValueError` naming `name` and what is expected when it is not a duration above zero."""
    match = _PATTERN.match(raw) if isinstance(raw, str) else None
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()] if match else 0.0
    if seconds <= 0:
        raise ValueError(f"{name}={raw!r} is not valid: expected {EXPECTED}")
    return seconds
