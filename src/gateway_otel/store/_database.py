"""The local store's file: its schema, how a connection is opened, and write transactions.

One SQLite file in WAL mode, so readers never block writers and several processes can write at once (each waits up
to `BUSY_TIMEOUT` for the write lock). The LLM fields are indexed columns next to the full attributes, events and
resource as compact JSON cells (`_cells`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
PAGE_SIZE = 16384
"""Bytes per page of a new store (SQLite's default is 4096). A page holds whole rows: with 4 KB pages a ~1.1 KB span
row fits three to a page and wastes a quarter of it; with 16 KB, fourteen, and a row's content up to ~16 KB stays
on its page (no overflow chain). Stores created before keep theirs."""
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
    latency_bucket INTEGER,
    ttft_bucket INTEGER,
    cost_source TEXT,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
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
    "latency_bucket",  # store._buckets.value_bucket(duration_ms): percentiles in SQL (query/_local_summary.py)
    "ttft_bucket",  # value_bucket(ttft_ms)
    "cost_source",  # gateway.cost.source: gateway or price_table (added by `add_cost_source` to older stores)
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
        try:
            with _PREPARING:  # this process's writers (spans, logs) opening a new store at once take turns
                _prepare(conn, time.monotonic() + BUSY_TIMEOUT)
        except BaseException:
            conn.close()
            raise
    return conn


_PREPARING = threading.Lock()


def _prepare(conn: sqlite3.Connection, deadline: float) -> None:
    """WAL and the schema. Switching the journal mode takes the file's exclusive lock and SQLite's busy timeout does
    not cover it: while another process's connection holds the file, it is tried again until `deadline`."""
    while True:
        try:
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new file's; before anything reads it
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect before the first table
                conn.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)  # another process is opening or writing the same new file
    conn.execute("PRAGMA synchronous = NORMAL")
    with transaction(conn):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        add_value_buckets(conn)
        add_resources_table(conn)
        add_cost_source(conn)


def add_resources_table(conn: sqlite3.Connection) -> None:
    """Each distinct resource once; a row's `resource` cell names it as `@<id>` (rows of stores before this table
    hold the JSON itself, and are left so). Idempotent: run on every open for writing."""
    conn.execute("CREATE TABLE IF NOT EXISTS resources (id INTEGER PRIMARY KEY, resource TEXT NOT NULL UNIQUE)")


# --- store-query: the columns and covering indexes that let the local backend aggregate in SQL ----------------------
CALLS_INDEX = "spans_calls"
STREAMED_INDEX = "spans_streamed"
LATENCY_INDEX = "spans_latency"
IS_CALL = "(model IS NOT NULL OR operation IS NOT NULL)"
"""`_metrics.is_inference` in SQL, spelled exactly so: the two partial indexes below are used only by queries that
carry this very term."""
OF_MODEL = "(model = ? OR nullif(request_model, model) = ?)"
"""A call of the model asked for (served or requested), spelled so the indexes below answer it: they keep the
requested model only where it differs from the served one (1 byte instead of ~20 per call)."""
_VALUE_BUCKET_INDEXES = f"""
CREATE INDEX IF NOT EXISTS {CALLS_INDEX} ON spans (model, start_ns, status, input_tokens, output_tokens, cost,
    latency_bucket, ttft_bucket, duration_ms, project_name, session_id, nullif(request_model, model)) WHERE {IS_CALL};
CREATE INDEX IF NOT EXISTS {STREAMED_INDEX} ON spans (model, start_ns, ttft_bucket, ttft_ms, status, project_name,
    session_id, nullif(request_model, model)) WHERE ttft_bucket IS NOT NULL AND {IS_CALL};
CREATE INDEX IF NOT EXISTS {LATENCY_INDEX} ON spans (model, latency_bucket, start_ns, duration_ms) WHERE {IS_CALL};
DROP INDEX IF EXISTS spans_model_start
"""  # spans_model_start (schema 1) is the first two columns of spans_calls


def add_value_buckets(conn: sqlite3.Connection) -> None:
    """The `latency_bucket`/`ttft_bucket` columns and the covering indexes of calls, idempotently (a store of
    schema 1 gains them on its writer's first open; building the indexes reads every row once: 17 s for a million
    spans). Rows written before keep NULL buckets: the reader buckets those itself (`query/_local_summary.py`)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(spans)")}
    for column in ("latency_bucket", "ttft_bucket"):
        if column not in have:
            conn.execute(f"ALTER TABLE spans ADD COLUMN {column} INTEGER")
    for statement in _VALUE_BUCKET_INDEXES.split(";"):
        conn.execute(statement)


PRICED_INDEX = "spans_priced"
PRICED = "cost_source = 'price_table'"
"""The calls priced from the price table, spelled exactly so (a literal, not a parameter): the partial index below
is used only by queries that carry this very term (and `IS_CALL`)."""


def add_cost_source(conn: sqlite3.Connection) -> None:
    """The `cost_source` column and the index of the calls priced from the price table, idempotently (a store made
    before gains them on its writer's first open). The index is partial: it holds only the priced calls, so the
    summary's gateway/price-table split costs one seek per model where there are none, and creating it on an old
    store reads its rows once without sorting any (none is priced yet)."""
    if "cost_source" not in {row[1] for row in conn.execute("PRAGMA table_info(spans)")}:
        conn.execute("ALTER TABLE spans ADD COLUMN cost_source TEXT")
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS {PRICED_INDEX} ON spans (model, start_ns, cost, status, project_name, session_id, "
        f"nullif(request_model, model)) WHERE {PRICED} AND {IS_CALL}"
    )


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


