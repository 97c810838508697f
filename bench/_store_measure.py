"""What `bench/store.py` measures, each in its own function: writes (1 and 4 processes), size, queries, bursts.

Writes go through `gateway_otel.store.StoreWriter.write_spans` in batches of 512 (the destination processor's), so
the bytes per span are those of whatever row format this version of the package writes; reads go through the CLI
and the query API in a child process each, as a user runs them, timed from outside with the child's own peak RSS
(`os.wait4`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _store_spans import SpanFactory

from gateway_otel.store import StoreConfig, StoreWriter

BATCH = 512
"""Spans per `write_spans` call: the destination processor's batch."""
SLOW = 5.0
"""A query whose first run takes longer is not repeated (its best is its first): keeps a run on a slow store short."""
TIMEOUT = 600.0
_DESTINATION_PREFIXES = ("GATEWAY_OTEL_", "OTEL_", "OPENOBSERVE_", "PHOENIX_", "ARIZE_")


def writer(path: Path) -> StoreWriter:
    """A writer with retention off: the bench store keeps every span (the default 500 MB bound would prune it)."""
    return StoreWriter(StoreConfig(path, max_age_seconds=None, max_bytes=None))


def _build_part(factory: SpanFactory, path: Path, start: int, count: int, out: Any) -> None:
    """Clone spans `start`.. and write them, batch by batch; report the time spent on each."""
    store = writer(path)
    clone_s = write_s = 0.0
    for offset in range(start, start + count, BATCH):
        t0 = time.perf_counter()
        batch = factory.batch(offset, min(BATCH, start + count - offset))
        t1 = time.perf_counter()
        store.write_spans(batch)
        clone_s += t1 - t0
        write_s += time.perf_counter() - t1
    store.close()
    out.put((clone_s, write_s))


def build_store(factory: SpanFactory, path: Path, count: int, processes: int = 1) -> dict[str, float]:
    """Write `count` clones into a new store at `path` from `processes` forked processes (spans 0.. split between
    them); the cloning and the `write_spans` time of each process apart."""
    context = multiprocessing.get_context("fork")
    schema = writer(path)
    schema.write_spans([])
    schema.close()
    out = context.Queue()
    share = -(-count // processes)
    parts = [(i * share, min(share, count - i * share)) for i in range(processes) if i * share < count]
    started = time.perf_counter()
    workers = [context.Process(target=_build_part, args=(factory, path, a, n, out)) for a, n in parts]
    for worker in workers:
        worker.start()
    times = [out.get(timeout=TIMEOUT * 6) for _ in workers]
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    checkpoint(path)
    return {
        "spans": count,
        "processes": len(workers),
        "seconds": seconds,
        "per_s": count / seconds,
        "clone_per_s": sum(n for _, n in parts) / sum(c for c, _ in times),
        "write_per_s": sum(n for _, n in parts) / sum(w for _, w in times),
    }


def checkpoint(path: Path) -> None:
    """Move the WAL into the main file, so the file's size is the store's."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def count_rows(path: Path, since_ns: int | None = None) -> int:
    conn = read_only(path)
    try:
        if since_ns is None:
            return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
        return int(conn.execute("SELECT count(*) FROM spans WHERE start_ns >= ?", (since_ns,)).fetchone()[0])
    finally:
        conn.close()


def size_of(path: Path) -> dict[str, Any]:
    """File size and bytes per span; per table and index (the `dbstat` table when SQLite has it); the average bytes
    of each `spans` column over a sample of 2,000 rows, largest first."""
    checkpoint(path)
    rows = count_rows(path)
    conn = read_only(path)
    try:
        try:
            pages = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        except sqlite3.OperationalError:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            pages = []
        of_spans = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE tbl_name = 'spans'")}
        parts = {name: size for name, size in pages if name in of_spans}
        if pages:
            parts["everything else"] = sum(size for name, size in pages if name not in of_spans)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(spans)")]
        sums = ", ".join(f'avg(coalesce(length("{c}"), 0))' for c in columns)
        sample = conn.execute(f"SELECT {sums} FROM (SELECT * FROM spans ORDER BY rowid LIMIT 2000)").fetchone()
    finally:
        conn.close()
    per_column = sorted(((c, v or 0.0) for c, v in zip(columns, sample, strict=False)), key=lambda cv: -cv[1])
    size = path.stat().st_size
    return {
        "rows": rows,
        "file_bytes": size,
        "bytes_per_span": size / rows if rows else None,
        "parts_per_span": {name: pages / rows for name, pages in parts.items()} if rows else {},
        "column_bytes": dict(per_column),
    }


# --- writes from 1 and 4 processes ---------------------------------------------------------------------------------


def _write_part(factory: SpanFactory, path: Path, start: int, count: int, barrier: Any, out: Any) -> None:
    """One writer process: clone its spans first, then (all together) write them; report when it wrote."""
    batches = list(factory.spans(start, count, BATCH))
    store = writer(path)
    barrier.wait()
    began = time.monotonic()
    for batch in batches:
        store.write_spans(batch)
    out.put((began, time.monotonic()))
    store.close()


def concurrent_writes(factory: SpanFactory, processes: int, total: int) -> dict[str, Any]:
    """`processes` forked writers, `total` spans in all, into one new file at once: total spans/s from the first
    start to the last end, and how many rows arrived."""
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        path = Path(tmp) / "writes.db"
        schema = writer(path)
        schema.write_spans([])  # the schema exists before the writers race
        schema.close()
        barrier, out = context.Barrier(processes), context.Queue()
        share = total // processes
        workers = [
            context.Process(target=_write_part, args=(factory, path, 10**9 + i * share, share, barrier, out))
            for i in range(processes)
        ]
        for worker in workers:
            worker.start()
        times = [out.get(timeout=TIMEOUT) for _ in workers]
        for worker in workers:
            worker.join()
        stored = count_rows(path)
    seconds = max(end for _, end in times) - min(began for began, _ in times)
    return {
        "processes": processes,
        "expected": share * processes,
        "stored": stored,
        "seconds": seconds,
        "per_s": share * processes / seconds,
        "exit_codes": [w.exitcode for w in workers],
    }


# --- queries: a child process each ---------------------------------------------------------------------------------


def child_env(store: Path | None = None) -> dict[str, str]:
    """The environment minus every destination setting (so a child writes or reads only where we say)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DESTINATION_PREFIXES)}
    if store is not None:
        env["GATEWAY_OTEL_LOCAL_PATH"] = str(store)
    return env


def run_child(argv: list[str], cwd: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one child: wall seconds, its peak RSS (MB, from `wait4`), exit status, the end of its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env or child_env(), stdout=out, stderr=err)
        timer = threading.Timer(TIMEOUT, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return {
        "seconds": seconds,
        "rss_mb": usage.ru_maxrss / 1024,
        "status": proc.returncode,
        "stdout": stdout[-2000:],
        "stderr": stderr[-2000:],
    }


def time_query(argv: list[str], cwd: str, repeat: int) -> dict[str, Any]:
    """The first run, then (when it took under `SLOW` seconds) `repeat` more: the best wall time of those and the
    highest peak RSS of all; a failed run stops it."""
    first = run_child(argv, cwd)
    runs = [first]
    if first["status"] == 0 and first["seconds"] < SLOW:
        runs += [run_child(argv, cwd) for _ in range(repeat)]
    failed = next((r for r in runs if r["status"] != 0), None)
    timed = runs[1:] or runs
    return {
        "first_s": first["seconds"],
        "best_s": min(r["seconds"] for r in timed),
        "runs": len(timed),
        "rss_mb": max(r["rss_mb"] for r in runs),
        "error": None if failed is None else (failed["stderr"].strip().splitlines() or ["exit status"])[-1][:200],
        "output": first["stdout"][-300:],
    }


_API = """
import json, sys, time
from gateway_otel import Telemetry
with Telemetry(path=sys.argv[1]) as telemetry:
    started = time.perf_counter()
    result = {call}
    print(json.dumps({{"query_s": time.perf_counter() - started, "result": repr(result)[:200]}}))
"""


def queries(store: Path, trace_prefix: str, html: Path, metrics: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """(label, argv) of every query measured: the CLI commands as a user types them, then the query API."""
    cli = [sys.executable, "-m", "gateway_otel"]
    path = ["--path", str(store)]
    rows = [
        ("python -m gateway_otel --version (start-up alone)", [*cli, "--version"]),
        ("stats --window 24h", [*cli, "stats", *path, "--window", "24h"]),
    ]
    rows += [(f"metrics {name} --window 24h", [*cli, "metrics", name, *path, "--window", "24h"]) for name in metrics]
    rows += [
        (
            "metrics inference_latency --window 24h --step 1h",
            [*cli, "metrics", "inference_latency", *path, "--window", "24h", "--step", "1h"],
        ),
        (
            "metrics token_consumption --window 24h --by-model",
            [*cli, "metrics", "token_consumption", *path, "--window", "24h", "--by-model"],
        ),
        ("traces --limit 20", [*cli, "traces", *path, "--limit", "20"]),
        ("trace <the newest trace's first 8 hex digits>", [*cli, "trace", trace_prefix, *path]),
        ("logs", [*cli, "logs", *path]),
        ("report --window 24h --html FILE", [*cli, "report", *path, "--window", "24h", "--html", str(html)]),
    ]
    for label, call in (
        (
            'API metrics.query("token_consumption", time_window="24h")',
            'telemetry.metrics.query("token_consumption", time_window="24h")',
        ),
        ("API traces.query(limit=100)", "telemetry.traces.query(limit=100)"),
    ):
        rows.append((label, [sys.executable, "-c", _API.format(call=call), str(store)]))
    return rows


def newest_trace_prefix(store: Path) -> str:
    """The first 8 hex digits of the newest span's trace id (what a user copies from `traces`)."""
    conn = read_only(store)
    try:
        return str(conn.execute("SELECT trace_id FROM spans ORDER BY start_ns DESC LIMIT 1").fetchone()[0])[:8]
    finally:
        conn.close()


# --- a burst of instrumented calls through the real path -----------------------------------------------------------


def burst(processes: int, calls: int, burst_app: Path) -> dict[str, Any]:
    """`processes` apps at once, `calls` chat calls each, no destination configured, the default store pointed at
    one new file: how many spans it holds after they exit, and the calls per second each app made."""
    with tempfile.TemporaryDirectory(prefix="store-burst-") as tmp:
        store = Path(tmp) / "telemetry.db"
        env = child_env(store)
        # all of them imported and instrumented by then (about 1 s); a tiny burst (the smoke test) need not wait
        start_at = time.time() + (2.0 if calls >= 1000 else 0.5)
        argv = [sys.executable, str(burst_app), str(calls), str(start_at)]
        procs = [
            subprocess.Popen(argv, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        results = [proc.communicate(timeout=TIMEOUT) for proc in procs]
        ended = time.time()
        stored = count_rows(store) if store.exists() else 0
    apps = [json.loads(out.strip().splitlines()[-1]) for out, _ in results if out.strip()]
    return {
        "processes": processes,
        "calls": calls * processes,
        "stored": stored,
        "calls_per_s": [round(a["calls"] / a["seconds"]) for a in apps],
        "seconds_to_exit": ended - start_at,
        "exit_codes": [p.returncode for p in procs],
        "stderr": sorted({line for _, err in results for line in err.splitlines() if "gateway_otel" in line})[:5],
    }
