"""The local store's SQL summaries equal the row path's on the same spans: every preset, step, grouping and filter,
percentiles exact; and the local `stats`/`metrics` never read span rows into Python.

Real SQLite files; random stores from hypothesis (derandomized in CI, as the suite's profile says), with the edges
forced in: rows exactly on a step's edge and on `end`, just outside the window, sub-microsecond starts, None tokens,
costs and TTFT, rows that are not calls, models None / "" / "unknown", equal latencies.
"""

from __future__ import annotations

import itertools
import math
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_otel import Telemetry
from gateway_otel.cli import main as cli
from gateway_otel.query import _local_summary
from gateway_otel.query._local_store import LocalBackend
from gateway_otel.query._metrics import METRIC_PRESETS, compute_metric, metric_from_cells, metric_summary
from gateway_otel.query._model import SpanQuery
from gateway_otel.query._summary import LATENCY, TTFT, Cell, SummaryQuery, micros, summarize_rows
from gateway_otel.store import SPAN_COLUMNS, connect
from gateway_otel.store._buckets import value_bucket

T0 = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
END = T0 + timedelta(hours=1)
STEPS = (None, 600.0, 1800.0, 3600.0, 7.0)  # 7 s: a last bucket shorter than the others
EDGES_US = [i * 600_000_000 for i in range(7)] + [3_600_000_000, -1, 3_600_000_001, 0, 1]  # edges, end, just outside
MODELS = (None, "", "unknown", "openai/gpt-4o-mini", "anthropic/claude-3.5-haiku")


def _ns(offset_us: int, extra_ns: int) -> int:
    return (micros(T0) + offset_us) * 1000 + extra_ns


span = st.fixed_dictionaries(
    {
        "offset_us": st.one_of(st.sampled_from(EDGES_US), st.integers(-600_000_000, 4_200_000_000)),
        "extra_ns": st.sampled_from([0, 1, 999]),
        "model": st.sampled_from(MODELS),
        "request_model": st.sampled_from((None, "openai/gpt-4o-mini", "openai/gpt-4o")),
        "operation": st.sampled_from((None, "chat")),
        "status": st.sampled_from(("ok", "ok", "error", "unset")),
        "input_tokens": st.one_of(st.none(), st.integers(0, 5000)),
        "output_tokens": st.one_of(st.none(), st.integers(0, 5000)),
        "cost": st.one_of(st.none(), st.floats(0, 2, allow_nan=False)),
        "cost_source": st.sampled_from((None, "gateway", "price_table", "price_table")),
        "duration_ms": st.one_of(st.sampled_from([0.0, 100.0, 250.5]), st.floats(0, 1e5, allow_nan=False)),
        "ttft_ms": st.one_of(st.none(), st.sampled_from([50.0, 80.25]), st.floats(0, 5e4, allow_nan=False)),
        "project_name": st.sampled_from((None, "shop", "bot")),
        "session_id": st.sampled_from((None, "s1", "s2")),
    }
)


def write_store(path: Path, spans: list[dict[str, Any]], buckets: bool = True, first: int = 0) -> None:
    """The spans as rows through the real schema, with the buckets `span_values` writes (or NULL, as old rows)."""
    conn = connect(path)
    rows = []
    for i, s in enumerate(spans, start=first):
        start = _ns(s["offset_us"], s["extra_ns"])
        values = {c: None for c in SPAN_COLUMNS} | {k: v for k, v in s.items() if k in SPAN_COLUMNS}
        values |= {
            "trace_id": f"{i:032x}",
            "span_id": f"{i:016x}",
            "name": "chat",
            "start_ns": start,
            "end_ns": start + int(s["duration_ms"] * 1e6),
            "attributes": "{}",
            "events": "[]",
            "resource": "{}",
        }
        if buckets:
            values |= {"latency_bucket": value_bucket(s["duration_ms"]), "ttft_bucket": value_bucket(s["ttft_ms"])}
        rows.append(tuple(values[c] for c in SPAN_COLUMNS))
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES ({', '.join('?' * len(SPAN_COLUMNS))})", rows
    )
    conn.execute("COMMIT")
    conn.close()


def rows_of(backend: LocalBackend, query: SummaryQuery) -> list[Any]:
    return backend.spans(SpanQuery(start=query.start, end=query.end, detail=False, limit=None))


def same_cells(sql: list[Cell], python: list[Cell]) -> None:
    """Equal, field by field: integers and percentiles exactly, the cost sum to float rounding (its order differs)."""
    assert [(c.group, c.bucket) for c in sql] == [(c.group, c.bucket) for c in python]
    for a, b in zip(sql, python, strict=True):
        fields = ("calls", "errors", "input_tokens", "output_tokens", "streamed", "models", "first_us", "last_us",
                  "costed_calls", "priced_calls")  # fmt: skip
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
        assert a.percentiles == b.percentiles
        assert math.isclose(a.cost, b.cost, rel_tol=1e-12, abs_tol=1e-12)
        assert math.isclose(a.priced_cost, b.priced_cost, rel_tol=1e-12, abs_tol=1e-12)


queries = st.builds(
    SummaryQuery,
    start=st.just(T0),
    end=st.sampled_from([END, T0, T0 + timedelta(minutes=30, microseconds=1)]),
    step_seconds=st.sampled_from(STEPS),
    groups=st.sampled_from(("all", "model", "both")),
    percentiles=st.lists(
        st.tuples(st.sampled_from((LATENCY, TTFT)), st.sampled_from((0.0, 0.5, 0.95, 1.0, 0.37))),
        max_size=3,
        unique=True,
    ).map(tuple),
    project_name=st.sampled_from((None, "shop")),
    model=st.sampled_from((None, "openai/gpt-4o-mini", "openai/gpt-4o", "nothing")),
    status=st.sampled_from((None, "ok", "error")),
    session_id=st.sampled_from((None, "s1")),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    spans=st.lists(span, max_size=60),
    query=queries,
    legacy=st.sampled_from(("new", "old rows", "old store")),
    per_model=st.booleans(),  # one query per model grouping by step, as beyond PER_BUCKET_QUERIES ranges
)
def test_sql_summaries_equal_the_row_path(
    tmp_path_factory: Any, spans: list[dict[str, Any]], query: Any, legacy: str, per_model: bool
) -> None:
    path = tmp_path_factory.mktemp("store") / "t.db"
    write_store(path, spans, buckets=legacy == "new")
    if legacy == "old store":  # schema 1: no bucket columns, no covering indexes (a reader never upgrades)
        conn = sqlite3.connect(path)
        conn.executescript(
            "DROP INDEX spans_priced; ALTER TABLE spans DROP COLUMN cost_source; "
            "DROP INDEX spans_calls; DROP INDEX spans_streamed; DROP INDEX spans_latency; "
            "ALTER TABLE spans DROP COLUMN latency_bucket; ALTER TABLE spans DROP COLUMN ttft_bucket"
        )
        conn.close()
    backend = LocalBackend(path)
    try:
        ranges = 0 if per_model else _local_summary.PER_BUCKET_QUERIES
        with patch.object(_local_summary, "PER_BUCKET_QUERIES", ranges):
            same_cells(backend.summarize(query), summarize_rows(rows_of(backend, query), query))
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("metric", "step", "by_model"), list(itertools.product(METRIC_PRESETS, STEPS[:3], (False, True)))
)
def test_every_preset_is_the_same_from_sql_and_from_rows(
    tmp_path: Path, metric: str, step: Any, by_model: bool
) -> None:
    spans = [dict(zip(span_keys(), v, strict=True)) for v in FIXED]
    path = tmp_path / "t.db"
    write_store(path, spans)
    backend = LocalBackend(path)
    query = metric_summary(metric, start=T0, end=END, step_seconds=step, percentile=0.9, group_by_model=by_model)
    from_sql = metric_from_cells(metric, query, backend.summarize(query))
    rows = rows_of(backend, query)
    backend.close()
    if True:
        assert from_sql == compute_metric(metric, rows, start=T0, end=END, step_seconds=step, percentile=0.9,
                                          group_by_model=by_model)  # fmt: skip


def span_keys() -> list[str]:
    return ["offset_us", "extra_ns", "model", "request_model", "operation", "status", "input_tokens", "output_tokens",
            "cost", "duration_ms", "ttft_ms", "project_name", "session_id"]  # fmt: skip


FIXED = [  # integral costs: sums equal exactly whatever the order
    (0, 0, "openai/gpt-4o-mini", None, "chat", "ok", 10, 5, 1.0, 100.0, 40.0, "shop", "s1"),
    (600_000_000, 0, "openai/gpt-4o-mini", None, "chat", "error", None, None, None, 300.0, None, "shop", None),
    (3_600_000_000, 999, None, None, "chat", "ok", 7, None, 2.0, 250.0, 90.0, None, None),  # on `end`, unknown model
    (1_800_000_000, 0, None, None, None, "ok", 1, 1, 0.0, 5.0, None, None, None),  # not a call
    (1_200_000_000, 1, "anthropic/claude-3.5-haiku", None, "chat", "ok", 3, 4, 4.0, 100.0, 10.0, "bot", "s2"),
    (3_600_000_001, 0, "openai/gpt-4o-mini", None, "chat", "ok", 99, 99, 99.0, 9.0, 9.0, None, None),  # after `end`
]


def test_the_fixed_store_gives_hand_computed_numbers(tmp_path: Path) -> None:
    write_store(tmp_path / "t.db", [dict(zip(span_keys(), v, strict=True)) for v in FIXED])
    with Telemetry("local", path=tmp_path / "t.db") as telemetry:
        telemetry._clock = lambda: END
        assert telemetry.metrics.query("token_consumption").value == 10 + 5 + 7 + 3 + 4
        assert telemetry.metrics.query("inference_requests_total").value == 4
        assert telemetry.metrics.query("inference_latency", percentile=0.5).value == (100 + 250) / 2
        assert telemetry.metrics.query("time_to_first_token", percentile=0.5).value == 40.0
        assert telemetry.metrics.query("cost", model_key="openai/gpt-4o-mini").value == 1.0
        usage = telemetry.metrics.query("model_usage", step="30m")
        assert {s.labels["model"]: [v for _, v in s.points] for s in usage.series} == {
            "anthropic/claude-3.5-haiku": [1.0, 0.0],
            "openai/gpt-4o-mini": [2.0, 0.0],
            "unknown": [0.0, 1.0],  # exactly on `end`: in the last bucket
        }


def test_local_stats_and_metrics_read_no_rows(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    """The local backend answers `stats` and `metrics` from SQL: its row path is never called (today's code read
    every span of the window into a `SpanRow` here)."""
    path = tmp_path / "t.db"
    spans = [dict(zip(span_keys(), v, strict=True)) for v in FIXED]
    write_store(path, [s | {"offset_us": -1} for s in spans])  # just before the window: none counts...
    now = datetime.now(timezone.utc)
    recent = [s | {"offset_us": micros(now) - micros(T0) - 60_000_000, "extra_ns": 0} for s in spans[:2]]
    write_store(path, recent, first=len(spans))

    def no_rows(*_: Any) -> None:
        raise AssertionError("the local backend read span rows")

    monkeypatch.setattr(LocalBackend, "spans", no_rows)
    assert cli(["stats", "--path", str(path), "--json"]) == 0
    assert '"calls": 2' in capsys.readouterr().out
    for metric in METRIC_PRESETS:
        assert cli(["metrics", metric, "--path", str(path), "--step", "10m", "--by-model"]) == 0
    with Telemetry("local", path=path) as telemetry:
        assert telemetry.metrics.query("inference_requests_total", time_window="1h").value == 2


def test_the_latency_index_is_named_only_where_it_answers(tmp_path: Path) -> None:
    """`spans_latency` holds model, latency bucket, start and duration: the reader names it for a window without a
    step or a filter, never with one (it would then read rows it cannot filter), nor on a store without it."""
    path = tmp_path / "t.db"
    connect(path).close()
    conn = sqlite3.connect(path)
    day = datetime(2026, 1, 1, tzinfo=timezone.utc)
    window = SummaryQuery(start=day, end=day + timedelta(days=1))
    new, legacy = _local_summary._spelling(conn, False), _local_summary._spelling(conn, True)
    assert _local_summary._latency_index(conn, window, new) == " INDEXED BY spans_latency"
    for changed in ({"step_seconds": 3600.0}, {"model": "m"}, {"project_name": "p"}, {"status": "error"},
                    {"session_id": "s"}):  # fmt: skip
        assert _local_summary._latency_index(conn, window.__class__(**{**window.__dict__, **changed}), new) == ""
    assert _local_summary._latency_index(conn, window, legacy) == ""
    conn.execute("DROP INDEX spans_latency")
    assert _local_summary._latency_index(conn, window, new) == ""
    conn.close()
