"""Where the local store lives and how long it keeps data, parsed once from the environment.

`GATEWAY_OTEL_LOCAL_PATH` (default `$XDG_DATA_HOME/gateway-otel/telemetry.db`, i.e.
`~/.local/share/gateway-otel/telemetry.db`), `GATEWAY_OTEL_LOCAL_MAX_AGE` (30d) and `GATEWAY_OTEL_LOCAL_MAX_SIZE_MB`
(500); `off` turns either bound off. A bad value fails at set-up with the variable's name.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._env import parse_duration
from .._errors import ConfigurationError


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the store lives when `GATEWAY_OTEL_LOCAL_PATH` does not say: the per-user data directory."""
    env = os.environ if env is None else env
    if sys.platform == "win32" and env.get("LOCALAPPDATA"):
        base = Path(env["LOCALAPPDATA"])
    elif env.get("XDG_DATA_HOME", "").strip():
        base = Path(env["XDG_DATA_HOME"].strip())
    else:
        base = Path(env.get("HOME") or Path.home()) / ".local" / "share"
    return base / "gateway-otel" / "telemetry.db"


def demo_path(env: Mapping[str, str] | None = None) -> Path:
    """Where `gateway-otel demo` stores by default: `demo.db` beside the default store, so that simulated calls
    never mix with an application's own."""
    return default_path(env).with_name("demo.db")


def read_path(env: Mapping[str, str]) -> tuple[Path, Path | None]:
    """(the store to read, the store it stands in for): `GATEWAY_OTEL_LOCAL_PATH` or the default store, except that
    before any application has stored there the demo's store is read instead, so the query commands show the demo's
    calls right after `gateway-otel demo`; the second item is then the default path it stands in for."""
    config = store_config(env)
    if (env.get("GATEWAY_OTEL_LOCAL_PATH") or "").strip() or config.path.exists():
        return config.path, None
    demo = demo_path(env)
    return (demo, config.path) if demo.is_file() else (config.path, None)


@dataclass(frozen=True)
class StoreConfig:
    """The store's file and retention, parsed once."""

    path: Path
    max_age_seconds: float | None = 30 * 86_400.0
    max_bytes: int | None = 500 * 1024 * 1024

    def to_options(self) -> dict[str, Any]:
        return {"path": str(self.path), "max_age_seconds": self.max_age_seconds, "max_bytes": self.max_bytes}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> StoreConfig:
        return cls(Path(options["path"]), options.get("max_age_seconds"), options.get("max_bytes"))


_OFF = frozenset({"off", "none", "0"})


def store_config(env: Mapping[str, str]) -> StoreConfig:
    """`GATEWAY_OTEL_LOCAL_PATH`, `GATEWAY_OTEL_LOCAL_MAX_AGE` (30d) and `GATEWAY_OTEL_LOCAL_MAX_SIZE_MB` (500)."""
    raw_path = (env.get("GATEWAY_OTEL_LOCAL_PATH") or "").strip()
    path = Path(raw_path).expanduser() if raw_path else default_path(env)
    try:
        is_dir = path.is_dir()
    except OSError as error:  # a name too long for the file system, a path through a file
        shown = raw_path if len(raw_path) <= 80 else f"{raw_path[:40]}…{raw_path[-30:]} ({len(raw_path)} characters)"
        raise ConfigurationError(
            f"GATEWAY_OTEL_LOCAL_PATH={shown!r} is not valid: expected a file path ({error.strerror or error})"
        ) from None
    if is_dir:
        raise ConfigurationError(
            f"GATEWAY_OTEL_LOCAL_PATH={raw_path!r} is not valid: expected a file path (it is a directory)"
        )
    max_age: float | None = StoreConfig.max_age_seconds
    raw_age = (env.get("GATEWAY_OTEL_LOCAL_MAX_AGE") or "").strip()
    if raw_age.lower() in _OFF:
        max_age = None
    elif raw_age:
        try:
            max_age = parse_duration("GATEWAY_OTEL_LOCAL_MAX_AGE", raw_age)
        except ValueError as error:
            raise ConfigurationError(f"{error} (or off)") from None
    max_bytes: int | None = StoreConfig.max_bytes
    raw_size = (env.get("GATEWAY_OTEL_LOCAL_MAX_SIZE_MB") or "").strip()
    if raw_size.lower() in _OFF:
        max_bytes = None
    elif raw_size:
        try:
            megabytes = float(raw_size)
        except ValueError:
            megabytes = -1.0
        if not megabytes > 0 or math.isinf(megabytes):
            raise ConfigurationError(
                f"GATEWAY_OTEL_LOCAL_MAX_SIZE_MB={raw_size!r} is not valid: expected a number of megabytes "
                "greater than 0 (or off)"
            )
        max_bytes = int(megabytes * 1024 * 1024)
    return StoreConfig(path, max_age, max_bytes)


