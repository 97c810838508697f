"""Where settings come from, and how their text is read: a leaf every other module may import.

- `environment()`: the process environment over the `.env` file of the working directory (the environment wins);
  `load_dotenv()` reads that file.
- The parsers turn one variable's text into a value, or raise `ConfigurationError` naming the variable and what it
  expects: booleans, whole numbers, seconds, URLs and durations (`30s`, `5m`, `1h`, `24h`, `7d`, `2w`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from ._errors import ConfigurationError
from ._secrets import url_without_credentials

__all__ = [
    "DURATION_EXPECTED",
    "environment",
    "first",
    "get",
    "load_dotenv",
    "parse_bool",
    "parse_duration",
    "parse_positive_int",
    "parse_seconds",
    "parse_url",
]

logger = logging.getLogger("gateway_otel")
DOTENV_VARIABLE = "GATEWAY_OTEL_DOTENV"
"""Names another `.env` file to read (default: `.env` in the working directory)."""
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


# --- the environment ----------------------------------------------------------------------------------------------


def load_dotenv(path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """The variables of a `.env` file as python-dotenv reads them; {} when there is none.

    The file is often another tool's: `export` prefixes, dotted keys (`spring.datasource.url`), single- and double-
    quoted values spanning lines (a PEM key), escapes in double quotes, `#` comments after a value, bytes that are
    not UTF-8. What cannot be parsed is skipped with one debug line; only a bad value of one of our own variables
    fails, later, where that setting is read.
    """
    file = Path(path)
    try:
        if not file.is_file():
            return {}
        text = file.read_bytes().decode("utf-8", errors="replace")
    except OSError as error:  # unreadable: not ours to fail on
        logger.debug("gateway_otel: cannot read %s: %s", file, error)
        return {}
    values: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _BINDING.match(text, position)
        if match is None or match.end() == position:  # a statement we cannot read: skip to the next line
            end = text.find("\n", position)
            end = len(text) if end < 0 else end + 1
            line = text.count("\n", 0, position) + 1
            logger.debug("gateway_otel: %s:%d could not be parsed; skipped", file, line)
            position = end
            continue
        position = match.end()
        key = match.group("key") if match.group("key") is not None else match.group("qkey")
        if key is None or match.group("equals") is None:
            continue  # a blank line, a comment, or a key without a value
        values[key] = _value(match)
    return values


_BINDING = re.compile(
    r"""[ \t]*(?:\r?\n|\#[^\n]*(?:\n|$)"""  # a blank line or a comment line
    r"""|(?:export[ \t]+)?(?:(?P<key>[^=\#\s'"]+)|'(?P<qkey>[^']*)')[ \t]*(?P<equals>=)?[ \t]*"""
    r"""(?:'(?P<single>(?:\\'|[^'])*)'|"(?P<double>(?:\\.|[^"\\])*)"|(?P<bare>[^'"\r\n][^\r\n]*|))"""
    r"""[ \t]*(?:\#[^\r\n]*)?(?:\r?\n|$))""",
    re.DOTALL,
)
_COMMENT = re.compile(r"\s+#.*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _value(match: re.Match[str]) -> str:
    if match.group("single") is not None:
        return match.group("single").replace("\\'", "'")
    if match.group("double") is not None:
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), match.group("double"))
    return _COMMENT.sub("", match.group("bare") or "").strip()  # `#` after a space starts a comment, as in dotenv


def environment(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The variables settings are read from: `environ`, else the process environment over the `.env` file."""
    if environ is not None:
        return environ
    return {**load_dotenv(os.environ.get(DOTENV_VARIABLE, ".env")), **os.environ}


def get(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    """The stripped value of `name`, or `default` when it is unset or blank."""
    raw = env.get(name)
    return raw.strip() if raw is not None and raw.strip() else default


def first(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """(name, stripped value) of the first of `names` that is set and not blank."""
    for name in names:
        raw = env.get(name)
        if raw is not None and raw.strip():
            return name, raw.strip()
    return None


# --- parsers ------------------------------------------------------------------------------------------------------


def parse_bool(name: str, raw: str, *, extra: Mapping[str, bool] | None = None) -> bool:
    """`true`/`false` (also 1/0, yes/no, on/off), or one of `extra`'s words."""
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    if extra and value in extra:
        return extra[value]
    expected = "true or false" + (f" (or one of {', '.join(m.upper() for m in extra)})" if extra else "")
    raise ConfigurationError(f"{name}={raw!r} is not valid: expected {expected}")


def parse_positive_int(name: str, raw: str | int) -> int:
    """A whole number above zero, from text or an int (a float such as 2.5 is refused, not rounded)."""
    try:
        if not isinstance(raw, (int, str)):  # int(2.5) would quietly be 2
            raise TypeError
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}={raw!r} is not valid: expected a whole number greater than 0") from None
    if isinstance(raw, bool) or value <= 0:
        raise ConfigurationError(f"{name}={raw!r} is not valid: expected a whole number greater than 0")
    return value


def parse_seconds(name: str, raw: str) -> float:
    """A number of seconds above zero; nan and inf are refused here, where a socket would refuse them only at the
    first export."""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < math.inf:
        raise ConfigurationError(f"{name}={raw!r} is not valid: expected a number of seconds greater than 0")
    return value


def parse_url(name: str, value: str) -> str:
    """An http(s) URL with a host (and a port from 1 to 65535 if any), without its trailing slash. The error
    shows the value without its credentials."""
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # `http://[::1`, port 99999
        valid = False
    if not valid:
        shown = url_without_credentials(value, query="mask") if "@" in value or "?" in value else value
        raise ConfigurationError(
            f"{name}={shown!r} is not valid: expected an http:// or https:// URL with a host, such as "
            "http://localhost:4318 (a port from 1 to 65535)"
        )
    return value.rstrip("/")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
MAX_DURATION = 100 * 365.25 * 86_400
DURATION_EXPECTED = "a positive number followed by s, m, h, d or w, such as 5m, 1h, 24h or 7d"


def parse_duration(name: str, raw: object) -> float:
    """Seconds in `raw`; `ValueError` naming `name` and what is expected when it is not a duration above zero."""
    match = _DURATION.match(raw) if isinstance(raw, str) else None
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()] if match else 0.0
    if seconds <= 0:
        raise ValueError(f"{name}={raw!r} is not valid: expected {DURATION_EXPECTED}")
    if seconds > MAX_DURATION:  # a date before year 1 cannot be computed (`--since 200000w`)
        raise ValueError(f"{name}={raw!r} is not valid: expected at most 100 years ({int(MAX_DURATION)} s)")
    return seconds
