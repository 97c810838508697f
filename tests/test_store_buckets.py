"""Value buckets: monotone in the value (what makes the SQL percentiles exact), written with every span, and added to
a schema-1 store (main's, before them) on its writer's first open, idempotently, its old rows still counted."""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from gateway_otel import Telemetry
from gateway_otel.query._local_store import LocalBackend
from gateway_otel.query._model import SpanQuery
from gateway_otel.query._stats import stats_summary
from gateway_otel.query._summary import summarize_rows
from gateway_otel.store import StoreConfig, StoreWriter, connect
from gateway_otel.store._buckets import PER_OCTAVE, TOP, value_bucket

T0 = 1_740_000_000 * 10**9


@given(st.lists(st.floats(allow_nan=False), min_size=2, max_size=50))
def test_buckets_never_decrease_with_the_value(values: list[float]) -> None:
    ordered = sorted(values)
    buckets = [value_bucket(v) for v in ordered]
    assert buckets == sorted(buckets)  # type: ignore[type-var]
    assert all(-TOP <= b <= TOP for b in buckets)  # type: ignore[operator]


def test_bucket_values_and_widths() -> None:
    assert (value_bucket(None), value_bucket(math.nan), value_bucket(0.0), TOP) == (None, None, 0, 32_767)
    assert value_bucket(math.inf) == TOP and value_bucket(-math.inf) == -TOP and value_bucket(1e300) == TOP
    assert value_bucket(1e-300) == value_bucket(5e-324) == PER_OCTAVE  # below 2**-256: the lowest bucket
    assert value_bucket(-2.0) == -value_bucket(2.0)
    # 64 buckets per power of two: [1024, 2048) ms is cut every 16 ms, 1/64 to 1/128 of the values there.
    assert value_bucket(1024.0) == value_bucket(1039.99) == value_bucket(1040.0) - 1 == (11 + 256) * PER_OCTAVE
    assert value_bucket(2047.99) + 1 == value_bucket(2048.0) == (12 + 256) * PER_OCTAVE


def span(number: int, start_ns: int, duration_ms: float, ttft_s: float | None = None) -> ReadableSpan:
    attrs: dict[str, Any] = {"gen_ai.request.model": "m", "gen_ai.operation.name": "chat"}
    if ttft_s is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = ttft_s
    return ReadableSpan(
        name="chat m",
        context=SpanContext(number + 1, number + 1, False, TraceFlags(1)),
        kind=SpanKind.CLIENT,
        attributes=attrs,
        start_time=start_ns,
        end_time=start_ns + int(duration_ms * 1e6),
        resource=Resource.create({"service.name": "buckets"}),
    )


def stored(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        sql = "SELECT duration_ms, ttft_ms, latency_bucket, ttft_bucket FROM spans ORDER BY rowid"
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_the_writer_stores_the_buckets_of_latency_and_ttft(tmp_path: Path) -> None:
    writer = StoreWriter(StoreConfig(tmp_path / "s.db", max_age_seconds=None, max_bytes=None))
    writer.write_spans([span(1, T0, 1234.5, 0.25), span(2, T0, 80.0)])
    writer.close()
    assert stored(tmp_path / "s.db") == [(1234.5, 250.0, value_bucket(1234.5), value_bucket(250.0)),
                                         (80.0, None, value_bucket(80.0), None)]  # fmt: skip


def schema_one(path: Path) -> None:
    """Turn a new store into what main's schema 1 made: no bucket columns, no covering indexes, spans_model_start,
    no cost source."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP INDEX spans_priced; ALTER TABLE spans DROP COLUMN cost_source; "
        "DROP INDEX spans_calls; DROP INDEX spans_streamed; DROP INDEX spans_latency; "
        "ALTER TABLE spans DROP COLUMN latency_bucket; "
        "ALTER TABLE spans DROP COLUMN ttft_bucket; CREATE INDEX spans_model_start ON spans (model, start_ns);"
    )
    conn.close()


def indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[1] for row in conn.execute("PRAGMA index_list(spans)")}
    finally:
        conn.close()


def test_a_schema_one_store_is_upgraded_once_and_its_old_rows_still_count(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    connect(path).close()
    schema_one(path)
    old = sqlite3.connect(path)
    old.execute(
        "INSERT INTO spans (trace_id, span_id, name, start_ns, end_ns, duration_ms, status, operation, model, "
        "ttft_ms, attributes, events, resource) VALUES ('a', 'b', 'chat', ?, ?, 500.0, 'ok', 'chat', 'm', 100.0, "
        "'{}', '[]', '{}')",
        (T0, T0 + 500_000_000),
    )
    old.commit()
    old.close()
    start = datetime.fromtimestamp(T0 / 1e9, timezone.utc) - timedelta(seconds=1)
    query = stats_summary(start, start + timedelta(hours=1))
    backend = LocalBackend(path)
    before = backend.summarize(query)  # a reader never upgrades: it buckets the old store itself
    backend.close()
    assert [(c.group, c.calls, c.percentiles) for c in before] == [
        ("", 1, {("latency", 0.5): 500.0, ("latency", 0.95): 500.0, ("ttft", 0.5): 100.0}),
        ("m", 1, {("latency", 0.5): 500.0, ("latency", 0.95): 500.0, ("ttft", 0.5): 100.0}),
    ]
    writer = StoreWriter(StoreConfig(path, max_age_seconds=None, max_bytes=None))
    writer.write_spans([span(3, T0 + 1000, 300.0, 0.05)])  # opening upgrades; the new row has its buckets
    writer.close()
    connect(path).close()  # twice: nothing more to do
    assert indexes(path) == {
        "spans_start", "spans_calls", "spans_streamed", "spans_latency", "spans_priced", "sqlite_autoindex_spans_1"
    }  # fmt: skip
    with closing(sqlite3.connect(path)) as conn:  # the writer added the column of a cost's source, once
        assert [r[1] for r in conn.execute("PRAGMA table_info(spans)")][-1] == "cost_source"
    assert stored(path) == [(500.0, 100.0, None, None), (300.0, 50.0, value_bucket(300.0), value_bucket(50.0))]
    backend = LocalBackend(path)
    rows = backend.spans(SpanQuery(start=query.start, end=query.end, detail=False, limit=None))
    after = backend.summarize(query)
    backend.close()
    assert after == summarize_rows(rows, query)
    assert [(c.group, c.calls, c.percentiles[("latency", 0.5)], c.percentiles[("ttft", 0.5)]) for c in after] == [
        ("", 2, 400.0, 75.0),
        ("m", 2, 400.0, 75.0),
    ]
    with Telemetry("local", path=path) as telemetry:
        telemetry._clock = lambda: start + timedelta(hours=1)
        assert telemetry.metrics.query("inference_requests_total").value == 2
