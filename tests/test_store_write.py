"""The store's write path: few statements per batch (the GIL is let go around each), one bad row dropped alone."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from conftest import chat_span
from gateway_otel.store import StoreConfig, StoreWriter
from gateway_otel.store._writer import chunk_sizes


@pytest.mark.parametrize(
    ("count", "largest", "expected"),
    [
        (0, 64, []),
        (1, 64, [1]),
        (64, 64, [64]),
        (512, 64, [64] * 8),
        (300, 64, [64, 64, 64, 64, 32, 8, 4]),
        (127, 64, [64, 32, 16, 8, 4, 2, 1]),
        (100, 32, [32, 32, 32, 4]),
    ],
)
def test_a_batch_goes_in_statements_of_a_few_fixed_sizes(count: int, largest: int, expected: list[int]) -> None:
    assert chunk_sizes(count, largest) == expected
    assert sum(expected) == count


def test_a_batch_of_512_spans_is_ten_statements(tmp_path: Path) -> None:
    """BEGIN, 8 inserts of 64 rows, COMMIT: `executemany` stepped once per row, letting go of the GIL each time."""
    writer = StoreWriter(StoreConfig(tmp_path / "t.db", None, None))
    now = time.time_ns()
    writer.write_spans([chat_span(1, now)])  # opens the file and runs the first retention pass
    statements: list[str] = []
    conn = writer._connection()
    conn.set_trace_callback(statements.append)
    writer.write_spans([chat_span(n, now + n) for n in range(2, 514)])
    conn.set_trace_callback(None)
    assert [s.split(" (", 1)[0] for s in statements] == [
        "BEGIN IMMEDIATE",
        *["INSERT OR IGNORE INTO spans"] * 8,
        "COMMIT",
    ]
    writer.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    assert conn.execute("SELECT count(*), min(name), max(start_ns) - min(start_ns) FROM spans").fetchone() == (
        513,
        "chat m 1",
        513,
    )
    conn.close()


def test_bad_rows_in_different_statements_are_each_dropped_alone(tmp_path: Path) -> None:
    """A start beyond int64 (SQLite refuses it) in the first and in the last statement: 298 of 300 stored."""
    writer = StoreWriter(StoreConfig(tmp_path / "t.db", None, None))
    now = time.time_ns()
    spans = [chat_span(n, now + n) for n in range(1, 301)]
    spans[5] = chat_span(6, 2**70)
    spans[299] = chat_span(300, 2**64)
    writer.write_spans(spans)
    assert writer.dropped == 2
    writer.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    names = [r[0] for r in conn.execute("SELECT name FROM spans ORDER BY start_ns")]
    conn.close()
    assert names == [f"chat m {n}" for n in range(1, 300) if n != 6]
