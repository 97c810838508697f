"""The local SQLite store at scale: build stores of 10k, 100k and 1M spans, measure writes, size and every query.

    PYTHONPATH=src .venvs/openai3/bin/python bench/store.py [--sizes 10000,100000,1000000] [--quick] [--write-readme]

Stores are built from clones of real chat spans (`_store_spans.py`) through `StoreWriter.write_spans`, cached under
`bench/.stores/` by size and the package's commit (a re-run reuses them while they are younger than
`--max-store-age`, since their spans are placed relative to the time they were built), and read through the CLI and
the query API in child processes (`_store_measure.py`). The table goes to stdout, `bench/results/store.md` and
`.json`, and with `--write-readme` into `bench/README.md` between its store markers. It measures whatever version of
`gateway_otel` it imports: the package's row format and queries are not assumed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _store_measure as measure
from _store_report import render, write_readme
from _store_spans import DAY_NS, ERROR_SHARE, RECENT_SHARE, STREAM_SHARE, SpanFactory, capture_templates

import gateway_otel
from gateway_otel.query import METRIC_PRESETS

BENCH = Path(__file__).resolve().parent
GENERATOR = "1"
"""Part of a cached store's key: bump it when `_store_spans.py` changes what it builds."""
RESOURCE = {"service.name": "store-bench-app"}


def package_key() -> dict[str, str]:
    """The last commit that changed the source tree `gateway_otel` is imported from, and a hash of its uncommitted
    changes: what decides the row format and the queries."""
    root = Path(gateway_otel.__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("log", "-1", "--format=%H", "--", ".")  # the last commit that changed the package, not bench/
    diff = git("diff", "HEAD", "--", ".")
    dirty = hashlib.sha256(diff.encode()).hexdigest()[:8] if diff else ""
    source = str(root)
    key = (commit[:10] or "nogit") + (f"-dirty{dirty}" if dirty else "")
    return {"commit": commit, "dirty": dirty, "source": source, "key": key}


def cached_store(
    factory: SpanFactory, stores: Path, size: int, key: str, max_age_h: float, rebuild: bool, processes: int
) -> tuple[Path, dict[str, Any]]:
    """The store of `size` spans for this package version: reused when fresh enough, else built now."""
    path = stores / f"spans-{size}-{key}-g{GENERATOR}.db"
    meta_path = path.with_suffix(".json")
    if not rebuild and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        age_h = (time.time_ns() - meta["now_ns"]) / 3.6e12
        if age_h < max_age_h:
            return path, {**meta, "reused": True, "age_h": age_h}
    for old in stores.glob(f"spans-{size}-*"):  # an older package's or a stale store of this size
        old.unlink()
    stores.mkdir(parents=True, exist_ok=True)
    print(f"building the {size:,}-span store ...", file=sys.stderr, flush=True)
    meta = {**measure.build_store(factory, path, size, processes), "now_ns": factory.now_ns, "built": time.time()}
    meta_path.write_text(json.dumps(meta))
    return path, {**meta, "reused": False, "age_h": 0.0}


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )

    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "load": list(os.getloadavg()),
    }


def measure_size(
    factory: SpanFactory, args: argparse.Namespace, size: int, key: str, writes_done: dict[int, Any]
) -> dict[str, Any]:
    path, build = cached_store(factory, args.stores, size, key, args.max_store_age, args.rebuild, args.build_processes)
    result: dict[str, Any] = {"size": size, "path": str(path), "build": build, "size_on_disk": measure.size_of(path)}
    result["rows_24h"] = measure.count_rows(path, time.time_ns() - DAY_NS)
    writes = min(size, args.write_spans)
    if writes not in writes_done:
        print(f"writes: {writes:,} spans from 1 process, then from 4 ...", file=sys.stderr, flush=True)
        writes_done[writes] = {str(p): measure.concurrent_writes(factory, p, writes) for p in (1, 4)}
    result["writes"] = writes_done[writes]
    result["queries"] = {}
    with tempfile.TemporaryDirectory(prefix="store-query-") as tmp:
        html = Path(tmp) / "report.html"
        for label, argv in measure.queries(path, measure.newest_trace_prefix(path), html, tuple(METRIC_PRESETS)):
            if args.queries and not any(part in label for part in args.queries):
                continue
            print(f"  {size:,}: {label}", file=sys.stderr, flush=True)
            result["queries"][label] = measure.time_query(argv, tmp, args.repeat)
    return result


def reference_bytes(templates: Any, count: int) -> dict[str, Any]:
    """Bytes per span of a store holding `count` clones of the demo's chat call (ids and times varied): the issue's
    measure of compactness."""
    factory = SpanFactory(templates, time.time_ns(), vary=False)
    with tempfile.TemporaryDirectory(prefix="store-ref-") as tmp:
        path = Path(tmp) / "reference.db"
        measure.build_store(factory, path, count)
        return measure.size_of(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="store sizes in spans (10000,100000,1000000)")
    parser.add_argument("--quick", action="store_true", help="the 10k store only")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per query after the first (3)")
    parser.add_argument(
        "--burst",
        type=int,
        default=10_000,
        help="calls of the 1-process burst (10000; the 4-process one makes half as many each; 0: none)",
    )
    parser.add_argument(
        "--write-spans",
        type=int,
        default=100_000,
        help="spans of the 1- and 4-process write test, at most the store's size (100000)",
    )
    parser.add_argument(
        "--reference-spans",
        type=int,
        default=10_000,
        help="clones of the demo's call in the store that measures its bytes per span (10000)",
    )
    parser.add_argument(
        "--queries", default="", help="only the queries whose label contains one of these, comma-separated"
    )
    parser.add_argument("--stores", type=Path, default=BENCH / ".stores", help="where built stores are cached")
    parser.add_argument("--results", type=Path, default=BENCH / "results", help="where store.md/.json go")
    parser.add_argument("--max-store-age", type=float, default=6.0, help="hours a cached store is reused (6)")
    parser.add_argument(
        "--build-processes", type=int, default=2, help="processes that build a store, each a part of it (2)"
    )
    parser.add_argument("--rebuild", action="store_true", help="build the stores even when cached")
    parser.add_argument("--write-readme", action="store_true", help="paste the table into bench/README.md")
    args = parser.parse_args(argv)
    args.sizes = [10_000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    args.queries = [q.strip() for q in args.queries.split(",") if q.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    package = package_key()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "package": package,
        "shape": {"recent_share": RECENT_SHARE, "stream_share": STREAM_SHARE, "error_share": ERROR_SHARE},
    }
    t0 = time.perf_counter()
    templates = capture_templates(RESOURCE)
    report["templates_s"] = time.perf_counter() - t0
    factory = SpanFactory(templates, time.time_ns())
    t0 = time.perf_counter()
    sample = sum(len(b) for b in factory.spans(0, 20_000))
    report["clone_per_s"] = sample / (time.perf_counter() - t0)
    report["reference"] = reference_bytes(templates, args.reference_spans)
    writes_done: dict[int, Any] = {}
    report["sizes"] = [measure_size(factory, args, size, package["key"], writes_done) for size in args.sizes]
    report["bursts"] = []
    if args.burst:
        for processes, calls in ((1, args.burst), (4, args.burst // 2)):
            print(f"burst: {processes} x {calls:,} calls ...", file=sys.stderr, flush=True)
            report["bursts"].append(measure.burst(processes, calls, BENCH / "_store_burst.py"))
    report["machine"]["load_after"] = list(os.getloadavg())
    report["seconds"] = time.perf_counter() - started
    table = render(report)
    print(table)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "store.md").write_text(table)
    (args.results / "store.json").write_text(json.dumps(report, indent=1, default=str))
    if args.write_readme:
        write_readme(BENCH / "README.md", table)
    failed = [label for size in report["sizes"] for label, q in size["queries"].items() if q["error"]]
    lost = [b for b in report["bursts"] if b["stored"] != b["calls"]]
    lost += [w for size in report["sizes"] for w in size["writes"].values() if w["stored"] != w["expected"]]
    if lost:  # reported, not a failure of the bench: losing spans is what it is there to show
        print(f"spans lost in {len(lost)} write or burst measurement(s): see the table", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(sorted(set(failed)))}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
