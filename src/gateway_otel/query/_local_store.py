"""The `local` query backend: reads the SQLite store the `local` destination writes (`gateway_otel.store`)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .._env import environment
from .._errors import QueryError
from ..store import SEVERITY_FLOOR, SPAN_COLUMNS, attributes_of, connect, events_of, read_path
from ..store._database import CALLS_INDEX, IS_CALL, OF_MODEL
from ._model import TRACE_ID_DIGITS, LogQuery, LogRow, SpanQuery, SpanRow
from ._summary import EPOCH, Cell, SummaryQuery, micros

logger = logging.getLogger("gateway_otel.query")
_LEFT_OUT = ("attributes", "events", "resource", "latency_bucket", "ttft_bucket")  # buckets: absent from old stores
_BRIEF_COLUMNS = ", ".join(c for c in SPAN_COLUMNS if c not in _LEFT_OUT)
_NO_COST_SOURCE = ", NULL AS cost_source"
"""A store written before `cost_source` existed (a reader never upgrades a store) reads as if every cost's source
were unknown."""


def _ns(moment: datetime) -> int:
    return micros(moment) * 1000


def _time(ns: int) -> datetime:
    """The stored nanoseconds as a datetime, to the microsecond below (exact, as the SQL summaries bucket them)."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def _cell(read: Any, cell: Any, empty: Any) -> Any:
    """A JSON cell of the store, in either format (`store/_cells.py`); `empty` for a damaged one (not JSON, not a
    known codec), rather than failing the query."""
    try:
        return read(cell)
    except (TypeError, ValueError):
        logger.debug("gateway_otel: a damaged JSON cell in the local store was read as empty")
        return empty


def span_from_row(row: Mapping[str, Any], detail: bool) -> SpanRow:
    """A `SpanRow` from a `spans` row (attributes and events only with `detail`)."""
    return SpanRow(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        name=row["name"],
        start_time=_time(row["start_ns"]),
        end_time=_time(row["end_ns"]),
        duration_ms=row["duration_ms"],
        status=row["status"],
        status_message=row["status_message"],
        operation=row["operation"],
        model=row["model"],
        request_model=row["request_model"],
        provider=row["provider"],
        gateway=row["gateway"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost=row["cost"],
        cost_source=row["cost_source"] if row["cost"] is not None else None,
        time_to_first_token_ms=row["ttft_ms"],
        project_name=row["project_name"],
        session_id=row["session_id"],
        attributes=_cell(attributes_of, row["attributes"], {}) if detail else {},
        events=tuple(_cell(events_of, row["events"], [])) if detail else (),
    )


def log_from_row(row: Mapping[str, Any]) -> LogRow:
    return LogRow(
        time=_time(row["time_ns"]),
        severity=row["severity"],
        body=row["body"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        project_name=row["project_name"],
        attributes=_cell(attributes_of, row["attributes"], {}),
    )


class LocalBackend:
    """Queries the local store; `path` defaults to where the `local` destination writes (same variables) or, until
    something is stored there, to the demo's store (`stands_in_for` is then the default path)."""

    name = "local"

    def __init__(self, path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        env = environment(environ)  # the environment over `.env`, as the writer reads it
        self.stands_in_for: Path | None = None
        if path is not None:
            self.path = Path(path).expanduser()
        else:
            self.path, self.stands_in_for = read_path(env)
            if self.stands_in_for is not None:
                logger.info("no local store at %s yet: reading the demo's, %s", self.stands_in_for, self.path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._brief, self._detail = _BRIEF_COLUMNS, "*"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self._conn = connect(self.path, create=False)
            except FileNotFoundError:
                raise QueryError(
                    f"no local store at {self.path}: nothing has been stored there yet (instrument an application "
                    "with no destination configured, or run `gateway-otel demo`; `path=` (the commands' --path) or "
                    "GATEWAY_OTEL_LOCAL_PATH names another file)"
                ) from None
            self._conn.row_factory = sqlite3.Row
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(spans)")}
            self._brief, self._detail = (
                (_BRIEF_COLUMNS, "*")
                if "cost_source" in columns
                else (_BRIEF_COLUMNS.replace(", cost_source", "") + _NO_COST_SOURCE, "*" + _NO_COST_SOURCE)
            )
        return self._conn

    def _rows(self, sql: str, params: list[Any], convert: Any) -> list[Any]:
        """`convert` of each row, one at a time from the cursor (no list of raw rows beside the converted ones)."""
        with self._lock:
            try:
                return [convert(row) for row in self._connection().execute(sql, params)]
            except sqlite3.Error as error:
                raise QueryError(f"cannot read the local store {self.path}: {error}") from None

    def summarize(self, query: SummaryQuery) -> list[Cell]:
        """The summary cells of `query`, computed in SQL (`_local_summary`): what `metrics` and `stats` use."""
        from ._local_summary import summarize

        with self._lock:
            try:
                return summarize(self._connection(), query)
            except sqlite3.Error as error:
                raise QueryError(f"cannot read the local store {self.path}: {error}") from None

    def spans(self, query: SpanQuery) -> list[SpanRow]:
        # With a trace id, `+start_ns` keeps SQLite on the primary key's index (trace_id first) rather than the
        # window's: a prefix is a range of that index, `trace_id >= 'ab12' AND trace_id < 'ab12g'`.
        time = "+start_ns" if query.trace_id is not None else "start_ns"
        where = [f"{time} >= ?", f"{time} < ?"]  # a row's microsecond lies in [start, end]
        params: list[Any] = [_ns(query.start), _ns(query.end) + 1000]
        trace_id = None if query.trace_id is None else query.trace_id.lower()
        if trace_id is not None and len(trace_id) == TRACE_ID_DIGITS:
            where.append("trace_id = ?")
            params.append(trace_id)
        elif trace_id is not None:
            where.append("trace_id >= ? AND trace_id < ?")
            params += [trace_id, trace_id + "g"]  # "g" sorts after every hex digit
        if query.project_name is not None:
            where.append("project_name = ?")
            params.append(query.project_name)
        if query.model is not None:
            where.append(OF_MODEL)
            params += [query.model, query.model]
        if query.status is not None:
            where.append("status = ?")
            params.append(query.status)
        if query.session_id is not None:
            where.append("session_id = ?")
            params.append(query.session_id)
        columns = self._span_columns(query.detail)
        order = "ORDER BY start_ns DESC, rowid DESC" + (" LIMIT ?" if query.limit is not None else "")
        params += [query.limit] if query.limit is not None else []
        if query.model is not None and trace_id is None and self._has_calls_index():
            # A model's spans are calls: found in the covering index of calls, without reading the rows of other
            # models (walking the window newest first read every row of it for a rare model: 5.7 s over 750k).
            where.insert(0, IS_CALL)
            found = f"SELECT rowid FROM spans INDEXED BY {CALLS_INDEX} WHERE {' AND '.join(where)} {order}"
            sql = f"SELECT {columns} FROM spans WHERE rowid IN ({found}) ORDER BY start_ns DESC, rowid DESC"
        else:
            sql = f"SELECT {columns} FROM spans WHERE {' AND '.join(where)} {order}"
        return self._rows(sql, params, lambda row: span_from_row(row, query.detail))

    def _span_columns(self, detail: bool) -> str:
        """The columns a span query selects from this store: without the JSON cells (most of a row's bytes) unless
        `detail`, and `cost_source` as NULL where the store predates it."""
        with self._lock:
            try:
                self._connection()
            except sqlite3.Error as error:
                raise QueryError(f"cannot read the local store {self.path}: {error}") from None
        return self._detail if detail else self._brief

    def _has_calls_index(self) -> bool:
        with self._lock:
            try:
                indexes = self._connection().execute("PRAGMA index_list(spans)").fetchall()
            except sqlite3.Error as error:
                raise QueryError(f"cannot read the local store {self.path}: {error}") from None
        return any(row[1] == CALLS_INDEX for row in indexes)

    def logs(self, query: LogQuery) -> list[LogRow]:
        where = ["time_ns >= ?", "time_ns <= ?"]
        params: list[Any] = [_ns(query.start), _ns(query.end)]
        if query.severity is not None:
            where.append("severity_number >= ?")
            params.append(SEVERITY_FLOOR[query.severity])
        if query.project_name is not None:
            where.append("project_name = ?")
            params.append(query.project_name)
        sql = f"SELECT * FROM logs WHERE {' AND '.join(where)} ORDER BY time_ns DESC, id DESC LIMIT ?"
        return self._rows(sql, [*params, query.limit], log_from_row)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
