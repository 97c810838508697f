"""The local store's writer: inserts in one transaction per batch, and retention now and then.

Retention (`GATEWAY_OTEL_LOCAL_MAX_AGE`, `GATEWAY_OTEL_LOCAL_MAX_SIZE_MB`) runs after an export at most once a minute,
never per insert. After `fork()` a child never uses its parent's connection or lock (`os.register_at_fork`): it
opens its own at its first write, even when the fork came in the middle of a parent's write. The file is opened at
the first write, not when the writer is built, so a store that is locked,
full or not a SQLite file never delays or stops the application's start-up. A row that cannot be stored (a value
SQLite cannot take) is dropped alone and counted (`dropped`); the rest of its batch is stored.

Rows go in as multi-row `INSERT ... VALUES (...),(...)` statements of a few fixed sizes (`chunk_sizes`), not
`executemany`: CPython's sqlite3 lets go of the GIL around every `sqlite3_step`, i.e. once per row with
`executemany`, and while the application thread is busy in Python each re-acquisition may wait the switch interval
(5 ms). Measured: a 512-span batch took 2.7 s of wall time for 0.06 s of CPU, and a burst overflowed the queue; in
statements of 64 rows a batch lets go of the GIL about a dozen times instead of a thousand.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ._cells import RESOURCE_REF
from ._config import StoreConfig
from ._database import LOG_COLUMNS, SPAN_COLUMNS, connect, transaction
from ._generation import apply_records, apply_waiting, final_figures
from ._rows import log_values, resource_json, span_values

_BAD_VALUE = (OverflowError, UnicodeError, ValueError, sqlite3.InterfaceError, sqlite3.ProgrammingError)
"""What one row's value raises (an integer beyond int64, a lone surrogate): that row is dropped, not the batch."""
logger = logging.getLogger("gateway_otel.store")
_UNREADABLE = (TypeError, ValueError, OverflowError, AttributeError, KeyError, RecursionError)
"""What turning one span or record into a row raises for a value it cannot read."""
PRUNE_INTERVAL = 60.0
"""Seconds between two retention passes of one writer."""
ROWS_PER_STATEMENT = 64
"""The largest multi-row statement; a batch's remainder goes in statements of 32, 16... rows (at most 7 sizes, all
kept in sqlite3's statement cache)."""
_DEFAULT_VARIABLE_LIMIT = 999
"""SQLite's bound on `?` per statement before 3.32, assumed where Python (< 3.11) cannot ask the connection."""


def chunk_sizes(count: int, largest: int) -> list[int]:
    """`count` rows as statement sizes: `largest` (a power of two) as often as it fits, then powers of two down."""
    sizes = [largest] * (count // largest)
    size = largest // 2
    count %= largest
    while count:
        if count >= size:
            sizes.append(size)
            count -= size
        size //= 2
    return sizes


def _largest_chunk(conn: sqlite3.Connection, columns: int) -> int:
    """The largest power of two up to `ROWS_PER_STATEMENT` whose rows fit SQLite's variable limit."""
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
    limit = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit is not None else _DEFAULT_VARIABLE_LIMIT
    size = ROWS_PER_STATEMENT
    while size > 1 and size * columns > limit:
        size //= 2
    return size


class _Insert:
    """`INSERT` statements of one table for 1, 2, 4... rows, built once per size."""

    def __init__(self, head: str, columns: int) -> None:
        self.head, self.columns = head, columns
        self._row = f"({', '.join('?' * columns)})"
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        found = self._sql.get(rows)
        if found is None:
            found = self._sql[rows] = f"{self.head} VALUES {', '.join([self._row] * rows)}"
        return found


_INSERT_SPAN = _Insert(f"INSERT OR IGNORE INTO spans ({', '.join(SPAN_COLUMNS)})", len(SPAN_COLUMNS))
_INSERT_LOG = _Insert(f"INSERT INTO logs ({', '.join(LOG_COLUMNS)})", len(LOG_COLUMNS))


_RESOURCES_REMEMBERED = 256
"""Distinct resources whose `resources` row a writer remembers (a process has one or a few)."""

_WRITERS: weakref.WeakSet[StoreWriter] = weakref.WeakSet()


def _reset_writers_in_child() -> None:
    for writer in list(_WRITERS):
        writer._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_reset_writers_in_child)


class StoreWriter:
    """One writer's connection to the store: inserts in one transaction per batch, retention now and then."""

    def __init__(self, config: StoreConfig, *, prune_interval: float = PRUNE_INTERVAL) -> None:
        self.config = config
        self.prune_interval = prune_interval
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        try:  # a path that cannot be a file (under a regular file) is a wrong setting: it fails here, at set-up
            config.path.parent.mkdir(parents=True, exist_ok=True)
        except (NotADirectoryError, FileExistsError):
            raise
        except OSError:  # permissions, a full disk...: the file's state, not the setting's; the first write says why
            pass
        self._last_prune: float | None = None
        self.dropped = 0
        """Rows dropped alone because a value could not be stored (the rest of their batch was)."""
        self._resource_refs: dict[str, str] = {}
        self._last_resource: tuple[Any, str] = (None, "")
        _WRITERS.add(self)

    def _after_fork(self) -> None:
        """In a forked child: a lock of its own (the parent's may have been held mid-write) and no connection (the
        parent's handle is left alone, never closed or used here: SQLite connections do not survive fork)."""
        self._lock = threading.Lock()
        self._conn = None
        self._last_prune = None
        self._resource_refs = {}
        self._last_resource = (None, "")

    def write_spans(self, spans: Sequence[Any]) -> None:
        rows = self._rows(span_values, spans)
        self._write(_INSERT_SPAN, rows, lambda conn: apply_waiting(conn, str(self.config.path), rows))

    def write_logs(self, records: Sequence[Any]) -> None:
        """The records' rows; an OpenRouter generation record also puts its final cost on its call's row
        (`_generation`), in the same transaction."""
        figures = final_figures(records)
        then = (lambda conn: apply_records(conn, str(self.config.path), figures)) if figures else None
        self._write(_INSERT_LOG, self._rows(log_values, records), then)

    def _rows(self, values: Any, items: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows = []
        for item in items:
            try:
                rows.append(values(item, self._resource_cell))
            except _UNREADABLE:  # one item that cannot become a row (an odd attribute value) is dropped alone
                logger.debug("gateway_otel: local store: an item could not become a row; dropped", exc_info=True)
                self.dropped += 1
        return rows

    def _resource_cell(self, resource: Any) -> str:
        """`@<id>` of the resource's row in `resources`, stored at its first span; every span of a process has the
        same `Resource` object, so that is one identity check per span."""
        last, ref = self._last_resource
        if resource is last and last is not None:
            return ref
        text = resource_json(resource)
        ref = self._resource_refs.get(text)  # a destination's own resource is a new object for every span
        if ref is None:
            if len(self._resource_refs) >= _RESOURCES_REMEMBERED:
                self._resource_refs.clear()
            ref = self._resource_refs[text] = f"{RESOURCE_REF}{self._store_resource(text)}"
        self._last_resource = (resource, ref)
        return ref

    def _store_resource(self, text: str) -> int:
        with self._lock:
            conn = self._connection()
            with transaction(conn):
                conn.execute("INSERT OR IGNORE INTO resources (resource) VALUES (?)", (text,))
                return int(conn.execute("SELECT id FROM resources WHERE resource = ?", (text,)).fetchone()[0])

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the local store is closed")
        if self._conn is None:
            self._conn = connect(self.config.path)
        return self._conn

    def _write(
        self,
        statement: _Insert,
        rows: list[tuple[Any, ...]],
        then: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Insert `rows`, then run `then` in the same transaction."""
        with self._lock:
            conn = self._connection()
            if rows:
                with transaction(conn):
                    self._insert(conn, statement, rows)
                    if then is not None:
                        then(conn)
            now = time.monotonic()
            if self._last_prune is None or now - self._last_prune >= self.prune_interval:
                self._last_prune = now
                prune(conn, self.config)

    def _insert(self, conn: sqlite3.Connection, statement: _Insert, rows: list[tuple[Any, ...]]) -> None:
        """The rows in multi-row statements; a statement that SQLite refuses for one row's value has inserted nothing
        (a statement is atomic), so its rows go again one by one, without that row."""
        largest = _largest_chunk(conn, statement.columns)
        start = 0
        for size in chunk_sizes(len(rows), largest):
            chunk = rows[start : start + size]
            start += size
            try:
                conn.execute(statement.sql(size), [value for row in chunk for value in row])
            except _BAD_VALUE:
                for row in chunk:
                    try:
                        conn.execute(statement.sql(1), row)
                    except _BAD_VALUE:
                        self.dropped += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
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
        dropped = _delete_before(conn, "spans", "start_ns", "<", cutoff)
        _delete_before(conn, "logs", "time_ns", "<", cutoff)
    if config.max_bytes is not None:
        for _ in range(8):  # each pass removes about the excess plus a tenth, so this ends in one or two
            used = used_bytes(conn)
            if used <= config.max_bytes:
                break
            fraction = 1 - config.max_bytes * 0.9 / used  # above 0.1 and below 1: the data is over its limit
            dropped += _drop_oldest(conn, "spans", "start_ns", fraction)
            _drop_oldest(conn, "logs", "time_ns", fraction)
    if dropped:  # run to its end: `execute()` steps this pragma once, which frees one page
        conn.executescript("PRAGMA incremental_vacuum")
    return dropped


def _drop_oldest(conn: sqlite3.Connection, table: str, column: str, fraction: float) -> int:
    """Drop the oldest `fraction` (above 0) of `table`'s rows by `column`, at least one; returns how many."""
    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if not count:
        return 0
    skip = math.ceil(count * fraction) - 1
    cutoff = conn.execute(f"SELECT {column} FROM {table} ORDER BY {column} LIMIT 1 OFFSET ?", (skip,)).fetchone()[0]
    return _delete_before(conn, table, column, "<=", cutoff)


DELETE_CHUNK = 5_000
"""Rows retention deletes per transaction: each holds the store's write lock, which other processes' writers wait
for at most `BUSY_TIMEOUT`; one transaction dropping a tenth of a million spans held it for ~28 s."""


def _delete_before(conn: sqlite3.Connection, table: str, column: str, operator: str, cutoff: int) -> int:
    """Delete `table`'s rows whose `column` is `operator` (`<` or `<=`) `cutoff`, `DELETE_CHUNK` rows per
    transaction, so other writers get the lock in between; returns how many."""
    statement = (
        f"DELETE FROM {table} WHERE rowid IN "
        f"(SELECT rowid FROM {table} WHERE {column} {operator} ? ORDER BY {column} LIMIT ?)"
    )
    total = 0
    while True:
        with transaction(conn):
            count = conn.execute(statement, (cutoff, DELETE_CHUNK)).rowcount
        total += count
        if count < DELETE_CHUNK:
            return total
