"""The local store: spans and log records in one SQLite file, the default when no destination is configured.

One file (`GATEWAY_OTEL_LOCAL_PATH`, default `$XDG_DATA_HOME/gateway-otel/telemetry.db`, i.e.
`~/.local/share/gateway-otel/telemetry.db`) in WAL mode, so readers never block writers and several processes can
write at once (each waits up to `busy_timeout` for the write lock). Every export is one transaction. The LLM fields
are lifted out of the attributes into indexed columns, next to the full attributes, events and resource as JSON.
Retention (`GATEWAY_OTEL_LOCAL_MAX_AGE`, `GATEWAY_OTEL_LOCAL_MAX_SIZE_MB`) runs after an export at most once a
minute, never per insert.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._durations import parse_duration
from ._settings import ConfigurationError

SCHEMA_VERSION = 1
PRUNE_INTERVAL = 60.0
"""Seconds between two retention passes of one writer."""
BUSY_TIMEOUT = 10.0
"""Seconds a writer waits for another process's write transaction before giving up on a batch."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    kind TEXT,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    operation TEXT,
    model TEXT,
    request_model TEXT,
    provider TEXT,
    gateway TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost REAL,
    ttft_ms REAL,
    project_name TEXT,
    session_id TEXT,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    resource TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
CREATE INDEX IF NOT EXISTS spans_model_start ON spans (model, start_ns);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    severity_number INTEGER NOT NULL,
    severity TEXT NOT NULL,
    body TEXT NOT NULL,
    trace_id TEXT,
    span_id TEXT,
    project_name TEXT,
    attributes TEXT NOT NULL,
    resource TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_time ON logs (time_ns);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id);
"""

SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "duration_ms",
    "status",
    "status_message",
    "operation",
    "model",
    "request_model",
    "provider",
    "gateway",
    "input_tokens",
    "output_tokens",
    "cost",
    "ttft_ms",
    "project_name",
    "session_id",
    "attributes",
    "events",
    "resource",
)
LOG_COLUMNS = (
    "time_ns",
    "severity_number",
    "severity",
    "body",
    "trace_id",
    "span_id",
    "project_name",
    "attributes",
    "resource",
)
_INSERT_SPAN = f"INSERT OR IGNORE INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES ({', '.join('?' * len(SPAN_COLUMNS))})"
_INSERT_LOG = f"INSERT INTO logs ({', '.join(LOG_COLUMNS)}) VALUES ({', '.join('?' * len(LOG_COLUMNS))})"
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


# --- configuration -----------------------------------------------------------------------------------------------


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
    if path.is_dir():
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


# --- the database ------------------------------------------------------------------------------------------------


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, waiting for other writers."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise FileNotFoundError(path)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    if create:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect before the first table
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with transaction(conn):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    return conn


class transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT` (or `ROLLBACK`): takes the write lock up front, so it waits instead of failing
    when another process writes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


# --- rows from OpenTelemetry data ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _json(mapping: Mapping[str, Any] | None) -> str:
    return _JSON.encode({k: _plain(v) for k, v in (mapping or {}).items()})


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def project_of(attributes: Mapping[str, Any], resource: Mapping[str, Any]) -> str | None:
    """The project a span or log belongs to: OpenInference's project name, else the service name."""
    for value in (
        attributes.get("openinference.project.name"),
        resource.get("openinference.project.name"),
        resource.get("service.name"),
    ):
        if isinstance(value, str) and value:
            return value
    return None


_STATUS = {0: "unset", 1: "ok", 2: "error"}


def span_row(span: Any) -> tuple[Any, ...]:
    """One `spans` row from a finished SDK span, the LLM fields lifted out of its attributes."""
    context = span.context
    parent = span.parent
    attrs = span.attributes or {}
    resource = dict(span.resource.attributes) if span.resource is not None else {}
    start = span.start_time or 0
    end = span.end_time or start
    status = span.status
    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
    input_tokens = attrs.get("gen_ai.usage.input_tokens")
    output_tokens = attrs.get("gen_ai.usage.output_tokens")
    cost = attrs.get("gen_ai.usage.cost")
    ttft = attrs.get("gen_ai.response.time_to_first_chunk")
    events = [
        {"name": e.name, "time_ns": e.timestamp, "attributes": {k: _plain(v) for k, v in (e.attributes or {}).items()}}
        for e in span.events
    ]
    return (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        format(parent.span_id, "016x") if parent is not None else None,
        span.name,
        span.kind.name.lower() if span.kind is not None else None,
        start,
        end,
        (end - start) / 1e6,
        _STATUS.get(status.status_code.value, "unset"),
        status.description,
        attrs.get("gen_ai.operation.name"),
        model if isinstance(model, str) else None,
        attrs.get("gen_ai.request.model"),
        attrs.get("gateway.upstream.provider") or attrs.get("gen_ai.provider.name"),
        attrs.get("gateway.name"),
        input_tokens if _number(input_tokens) else None,
        output_tokens if _number(output_tokens) else None,
        cost if _number(cost) else None,
        ttft * 1000 if _number(ttft) else None,
        project_of(attrs, resource),
        attrs.get("session.id"),
        _json(attrs),
        _JSON.encode(events),
        _json(resource),
    )


SEVERITIES = ("debug", "info", "warning", "error")
SEVERITY_FLOOR = {"debug": 1, "info": 9, "warning": 13, "error": 17}
"""The lowest OpenTelemetry severity number of each level (DEBUG 5-8, INFO 9-12, WARN 13-16, ERROR 17+)."""


def severity_name(number: int) -> str:
    if number >= 17:
        return "error"
    if number >= 13:
        return "warning"
    if number >= 9:
        return "info"
    return "debug"


def log_row(item: Any) -> tuple[Any, ...]:
    """One `logs` row from an exported log record (`ReadableLogRecord`, or `LogData` of SDKs before 1.39)."""
    record = getattr(item, "log_record", item)
    resource_obj = getattr(item, "resource", None) or getattr(record, "resource", None)
    resource = dict(resource_obj.attributes) if resource_obj is not None else {}
    attrs = dict(record.attributes or {})
    number = getattr(record.severity_number, "value", record.severity_number) or 9
    body = record.body
    text = body if isinstance(body, str) else _JSON.encode(body)
    trace_id = record.trace_id or 0
    span_id = record.span_id or 0
    return (
        record.timestamp or record.observed_timestamp or time.time_ns(),
        number,
        severity_name(number),
        text,
        format(trace_id, "032x") if trace_id else None,
        format(span_id, "016x") if span_id else None,
        project_of(attrs, resource),
        _json(attrs),
        _json(resource),
    )


# --- writing -------------------------------------------------------------------------------------------------------


class Store:
    """One writer's connection to the store: inserts in one transaction per batch, retention now and then."""

    def __init__(self, config: StoreConfig, *, prune_interval: float = PRUNE_INTERVAL) -> None:
        self.config = config
        self.prune_interval = prune_interval
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = connect(config.path)
        self._last_prune: float | None = None

    def write_spans(self, spans: Sequence[Any]) -> None:
        self._write(_INSERT_SPAN, [span_row(s) for s in spans])

    def write_logs(self, records: Sequence[Any]) -> None:
        self._write(_INSERT_LOG, [log_row(r) for r in records])

    def _write(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("the local store is closed")
            if rows:
                with transaction(conn):
                    conn.executemany(statement, rows)
            now = time.monotonic()
            if self._last_prune is None or now - self._last_prune >= self.prune_interval:
                self._last_prune = now
                prune(conn, self.config)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes the data takes in the file (free pages not counted)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def prune(conn: sqlite3.Connection, config: StoreConfig, now_ns: int | None = None) -> int:
    """Apply retention: drop rows older than `max_age_seconds`, then the oldest rows until the data fits
    `max_bytes`, and give the freed pages back to the file system. Returns how many spans were dropped."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    dropped = 0
    if config.max_age_seconds is not None:
        cutoff = now_ns - int(config.max_age_seconds * 1e9)
        with transaction(conn):
            dropped += conn.execute("DELETE FROM spans WHERE start_ns < ?", (cutoff,)).rowcount
            conn.execute("DELETE FROM logs WHERE time_ns < ?", (cutoff,))
    if config.max_bytes is not None:
        for _ in range(8):  # each pass removes about the excess plus a tenth, so this ends in one or two
            used = used_bytes(conn)
            if used <= config.max_bytes:
                break
            dropped += _drop_oldest(conn, 1 - config.max_bytes * 0.9 / used)
    if dropped:
        conn.execute("PRAGMA incremental_vacuum")
    return dropped


def _drop_oldest(conn: sqlite3.Connection, fraction: float) -> int:
    with transaction(conn):
        count = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        logs = conn.execute("SELECT count(*) FROM logs").fetchone()[0]
        if count == 0 and logs == 0:
            return 0
        dropped = 0
        if count:
            skip = min(count - 1, max(0, math.ceil(count * fraction) - 1))
            cutoff = conn.execute("SELECT start_ns FROM spans ORDER BY start_ns LIMIT 1 OFFSET ?", (skip,)).fetchone()
            dropped = conn.execute("DELETE FROM spans WHERE start_ns <= ?", (cutoff[0],)).rowcount
        if logs:
            skip = min(logs - 1, max(0, math.ceil(logs * fraction) - 1))
            cutoff = conn.execute("SELECT time_ns FROM logs ORDER BY time_ns LIMIT 1 OFFSET ?", (skip,)).fetchone()
            conn.execute("DELETE FROM logs WHERE time_ns <= ?", (cutoff[0],))
        return dropped
