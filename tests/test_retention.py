"""Retention alone, on a store's file: exactly what `prune` drops by age and by size — the boundaries, the log
records with the spans, the count it returns, the pages it gives back. (Mutation testing, `bench/mutate.py
retention`, found these checked only roughly, through the exporter.)"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from gateway_otel import store as _store
from gateway_otel.store._writer import _drop_oldest

DAY_NS = 86_400 * 10**9
NOW = 2_000_000_000 * 10**9  # 2033: a `now` far from the clock's, so prune must use the one it is given
_RANDOM = random.Random(17)
PAYLOAD = "".join(chr(0x4E00 + _RANDOM.randrange(20_000)) for _ in range(2_000))
"""2,000 characters that take more than 2,000 bytes even deflated (the store deflates its cells)."""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
def conn(path: Path) -> Iterator[sqlite3.Connection]:
    connection = _store.connect(path)
    yield connection
    connection.close()


def _span(number: int, start_ns: int, payload: str) -> ReadableSpan:
    return ReadableSpan(
        name=f"chat m {number}",
        context=SpanContext(number + 1, number + 1, False, TraceFlags(1)),
        kind=SpanKind.CLIENT,
        attributes={"gen_ai.operation.name": "chat", "input.value": payload},
        start_time=start_ns,
        end_time=start_ns + 1_000,
        resource=Resource.create({"service.name": "retention"}),
    )


def _fill(path: Path, conn: sqlite3.Connection, starts: Iterable[int], payload: str = "") -> None:
    """One span and one log record at each of `starts` (nanoseconds)."""
    starts = list(starts)
    writer = _store.StoreWriter(_store.StoreConfig(path, None, None))
    writer.write_spans([_span(i, start, payload) for i, start in enumerate(starts)])
    writer.close()
    conn.executemany(
        "INSERT INTO logs (time_ns, severity_number, severity, body, trace_id, span_id, project_name, attributes, "
        "resource) VALUES (?, 17, 'error', ?, NULL, NULL, NULL, '{}', '{}')",
        [(start, payload) for start in starts],
    )


def _times(conn: sqlite3.Connection) -> tuple[list[int], list[int]]:
    spans = [r[0] for r in conn.execute("SELECT start_ns FROM spans ORDER BY start_ns")]
    logs = [r[0] for r in conn.execute("SELECT time_ns FROM logs ORDER BY time_ns")]
    return spans, logs


def test_a_row_exactly_max_age_old_is_kept_and_one_nanosecond_older_dropped(
    path: Path, conn: sqlite3.Connection
) -> None:
    _fill(path, conn, [NOW - DAY_NS - 1, NOW - DAY_NS, NOW])
    assert _store.prune(conn, _store.StoreConfig(path, 86_400.0, None), now_ns=NOW) == 1
    assert _times(conn) == ([NOW - DAY_NS, NOW], [NOW - DAY_NS, NOW])


@pytest.mark.parametrize(("fraction", "dropped"), [(0.01, 1), (0.25, 3), (0.5, 5), (0.95, 10)])
def test_the_oldest_fraction_is_dropped_at_least_one(
    path: Path, conn: sqlite3.Connection, fraction: float, dropped: int
) -> None:
    _fill(path, conn, range(1, 11))
    assert _drop_oldest(conn, "spans", "start_ns", fraction) == dropped
    assert _drop_oldest(conn, "logs", "time_ns", fraction) == dropped
    assert _times(conn) == (list(range(dropped + 1, 11)),) * 2
    conn.execute("DELETE FROM logs")
    assert _drop_oldest(conn, "logs", "time_ns", 0.5) == 0


def test_size_retention_keeps_the_newest_spans_and_log_records_and_counts_what_it_dropped(
    path: Path, conn: sqlite3.Connection
) -> None:
    """Age drops the 10 oldest, then size about half of the rest: `prune` returns both."""
    _fill(path, conn, [NOW - (200 - i) * DAY_NS // 100 for i in range(200)], PAYLOAD)
    limit = _store.used_bytes(conn) // 2
    dropped = _store.prune(conn, _store.StoreConfig(path, 1.9 * 86_400, limit), now_ns=NOW)
    spans, logs = _times(conn)
    assert dropped == 200 - len(spans) and 10 < dropped < 190
    assert spans == logs and spans[-1] == NOW - DAY_NS // 100  # the newest kept, the log records alike
    assert _store.used_bytes(conn) <= limit
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0  # the freed pages given back


def test_a_store_within_its_limit_is_left_alone(path: Path, conn: sqlite3.Connection) -> None:
    _fill(path, conn, [NOW - 2 * DAY_NS, NOW], PAYLOAD)
    used = _store.used_bytes(conn)
    assert _store.prune(conn, _store.StoreConfig(path, 3 * 86_400.0, used), now_ns=NOW) == 0  # exactly at it
    assert _store.prune(conn, _store.StoreConfig(path, None, None), now_ns=NOW) == 0
    assert _times(conn) == ([NOW - 2 * DAY_NS, NOW],) * 2


def test_used_bytes_leaves_out_the_free_pages(path: Path, conn: sqlite3.Connection) -> None:
    _fill(path, conn, range(1, 101), PAYLOAD)
    before = _store.used_bytes(conn)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute("DELETE FROM spans")
    assert conn.execute("PRAGMA page_count").fetchone()[0] == pages  # the file keeps its pages...
    assert _store.used_bytes(conn) < before - 100 * 2_000  # ...the data no longer uses them


def test_retention_deletes_in_short_transactions_so_other_writers_get_the_lock_between(
    path: Path, conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big prune holds the write lock for one chunk at a time (other processes wait at most `BUSY_TIMEOUT`):
    10 old spans in chunks of 3 are 4 transactions of at most 3 rows each, by age and by size alike."""
    from gateway_otel.store import _writer

    monkeypatch.setattr(_writer, "DELETE_CHUNK", 3)
    _fill(path, conn, [NOW - 2 * DAY_NS + i for i in range(10)] + [NOW])
    deleted: list[int] = []
    commits: list[str] = []
    conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    real_delete = _writer._delete_before

    def counting(*args: object) -> int:
        count = real_delete(*args)  # type: ignore[arg-type]
        deleted.append(count)
        return count

    monkeypatch.setattr(_writer, "_delete_before", counting)
    assert _store.prune(conn, _store.StoreConfig(path, 86_400.0, None), now_ns=NOW) == 10
    assert _times(conn) == ([NOW], [NOW]) and deleted == [10, 10]  # spans, then logs
    assert len(commits) == 8  # 3 + 3 + 3 + 1 rows (then 0: the end) for spans, the same for logs: 4 + 4
    assert _drop_oldest(conn, "spans", "start_ns", 0.5) == 1 and _times(conn)[0] == []
