#!/usr/bin/env python3
"""The benchmark's one command: `python3 bench/run.py [--quick] [--profile]`.

It measures, in one run and interleaved (the machine is noisy, absolute times mean little), the uninstrumented
openai client, gateway-otel and its peers at their defaults, each configuration in its own virtual environment under
`bench/.venvs/` (created on first use). Every configuration runs in a long-lived worker (`_worker.py`, started with the
venv's python); round after round, each worker in turn (shuffled per round) times one batch per workload, so all
configurations see the same noise. Overhead = median per-call time minus the median of the uninstrumented baseline
on the same openai major. Then: peak allocation per call (tracemalloc), growth over 10,000 calls, and a check that
every configuration really exported one span per call (a broken set-up would otherwise look fast).

Results: printed, and written to `bench/results/latest.md` and `bench/results/latest.json`.
`--profile` instead profiles gateway-otel (pyinstrument) on chat_sync and chat_stream and lists where its overhead
goes, into `bench/results/profile.md`. Uses only the standard library, so the system python3 runs it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as dt
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENVS = BENCH / ".venvs"
RESULTS = BENCH / "results"
WORKER = BENCH / "_worker.py"

WORKLOADS = ("chat_sync", "chat_async", "chat_stream", "embeddings")
TITLES = {
    "chat_sync": "chat sync",
    "chat_async": "chat async",
    "chat_stream": "chat stream",
    "embeddings": "embeddings",
}
STREAM_CHUNKS = 100
OTEL_SDK = "opentelemetry-sdk"
GROWTH_TOLERANCE = {"blocks": (200, 0.01), "objects": (200, 0.01), "malloc": (65536, 8.0)}
"""Growth beyond the baseline's that still counts as none: (once, per call). A leak keeps at least one block (an
object) per call, a leaked large value hundreds of malloc bytes; a cache that fills once stays within the slack."""


@dataclass(frozen=True)
class Config:
    """One measured configuration: where it runs and how it is instrumented (the setup lives in `_worker.py`)."""

    name: str
    venv: str
    setup: str
    major: int
    packages: tuple[str, ...]
    role: str  # "baseline" | "subject" (gateway-otel) | "peer" | "deprecated" (a peer shown for reference, not in
    # the fastest-peer ratio) | "reference" (variants and floors, with `--floor`)
    note: str = ""

    @property
    def slug(self) -> str:
        """The name as a file name (several configurations may share a venv)."""
        return "".join(ch if ch.isalnum() or ch in "@-" else "-" for ch in self.name)


CONFIGS: tuple[Config, ...] = (
    Config("baseline", "base-openai3", "none", 3, ("openai>=3,<4", OTEL_SDK), "baseline", "uninstrumented, openai 3"),
    Config("gateway-otel", "gateway-otel-openai3", "gateway_otel", 3, ("openai>=3,<4", "-e", str(REPO)), "subject"),
    Config(
        "openinference",
        "openinference",
        "openinference",
        3,
        ("openai>=3,<4", OTEL_SDK, "openinference-instrumentation-openai"),
        "peer",
    ),
    Config(
        "openai-v2",
        "openai-v2",
        "openai_v2",
        3,
        (
            "openai>=3,<4",
            OTEL_SDK,
            "opentelemetry-instrumentation-openai-v2",
            "opentelemetry-util-genai>=1.0b0,<1.2b0",
            "httpx",
        ),
        "deprecated",
        "deprecated upstream (its successor is genai-openai): a reference row, not in the fastest-peer ratio; "
        "`httpx` installed next to openai 3's `httpx2` (2.4b0 imports it), `opentelemetry-util-genai<1.2b0`",
    ),
    Config(
        "genai-openai",
        "genai-openai",
        "genai_openai",
        3,
        ("openai>=3,<4", OTEL_SDK, "opentelemetry-instrumentation-genai-openai", "opentelemetry-util-genai>=1.3b0"),
        "peer",
        "the official successor of openai-v2; its `opentelemetry-util-genai>=1.3` pin conflicts with openai-v2's",
    ),
    Config(
        "openllmetry",
        "openllmetry",
        "openllmetry",
        3,
        ("openai>=3,<4", OTEL_SDK, "opentelemetry-instrumentation-openai"),
        "peer",
    ),
    Config(
        "baseline@openai2",
        "base-openai2",
        "none",
        2,
        ("openai>=2,<3", OTEL_SDK),
        "baseline",
        "uninstrumented, openai 2",
    ),
    Config(
        "gateway-otel@openai2",
        "gateway-otel-openai2",
        "gateway_otel",
        2,
        ("openai>=2,<3", "-e", str(REPO)),
        "subject",
        "same package on openai 2, to compare with openlit on the same major",
    ),
    Config(
        "openlit@openai2",
        "openlit",
        "openlit",
        2,
        ("openlit", OTEL_SDK),
        "peer",
        "openlit requires openai<3: openai 2 here",
    ),
)


GATEWAY_OTEL3 = ("openai>=3,<4", "-e", str(REPO))
REFERENCE_CONFIGS: tuple[Config, ...] = (
    Config(
        "gateway-otel (metrics off)",
        "gateway-otel-openai3",
        "gateway_otel_no_metrics",
        3,
        GATEWAY_OTEL3,
        "reference",
        "`metrics=False`: what recording metrics off the request path could save at most",
    ),
    Config(
        "gateway-otel (content off)",
        "gateway-otel-openai3",
        "gateway_otel_no_content",
        3,
        GATEWAY_OTEL3,
        "reference",
        "`capture_content=False`: like for like with openai-v2, which captures no content by default",
    ),
    Config(
        "floor: bare span",
        "gateway-otel-openai3",
        "floor_span",
        3,
        GATEWAY_OTEL3,
        "reference",
        "SDK calls only: one span without attributes, attached during the call; no metrics",
    ),
    Config(
        "floor: required",
        "gateway-otel-openai3",
        "floor_required",
        3,
        GATEWAY_OTEL3,
        "reference",
        "SDK calls only: a span with the 10 attributes both conventions require plus token counts; 3 metric records",
    ),
    Config(
        "floor: our telemetry",
        "gateway-otel-openai3",
        "floor_ours",
        3,
        GATEWAY_OTEL3,
        "reference",
        "SDK calls only, on precomputed values: exactly gateway-otel's attributes and metric records",
    ),
)
"""`--floor`: what the SDK alone costs for the telemetry each emits (set up in `_worker.py`), and two gateway-otel
variants, measured in the same interleaved rounds as everything else."""


def compare_config(ref: str) -> Config:
    """`--compare REF`: gateway-otel as of git REF of this repository (unpacked under `bench/.venvs/src-<commit>`,
    installed in its own venv), measured in the same rounds as the working tree: a before/after in one run."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    source = VENVS / f"src-{sha}"
    if not (source / "pyproject.toml").exists():
        archive = subprocess.run(["git", "-C", str(REPO), "archive", sha], capture_output=True, check=True).stdout
        source.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(source, filter="data")
    return Config(
        f"gateway-otel@{sha}",
        f"gateway-otel-{sha}",
        "gateway_otel",
        3,
        ("openai>=3,<4", "-e", str(source)),
        "reference",
        f"this package as of commit {sha}",
    )


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or `--quick` for smoke checks."""

    rounds: int
    batch: dict[str, int]
    alloc_calls: dict[str, int]
    growth_calls: int
    growth_warmup: int
    growth_traced: bool = False  # tracemalloc on through the growth phase (`--traced-growth`): exact but 5-6x slower


FULL = Plan(
    rounds=100,
    batch={"chat_sync": 10, "chat_async": 10, "chat_stream": 1, "embeddings": 4},
    alloc_calls={"chat_sync": 50, "chat_async": 50, "chat_stream": 5, "embeddings": 25},
    growth_calls=10_000,
    growth_warmup=1_000,
)
QUICK = Plan(
    rounds=8,
    batch={"chat_sync": 10, "chat_async": 10, "chat_stream": 1, "embeddings": 4},
    alloc_calls={"chat_sync": 20, "chat_async": 20, "chat_stream": 3, "embeddings": 10},
    growth_calls=1_000,
    growth_warmup=200,
)


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the results table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- virtual environments ------------------------------------------------------------------------------------------


def venv_python(cfg: Config) -> Path:
    return VENVS / cfg.venv / "bin" / "python"


def ensure_venv(cfg: Config) -> None:
    """Create the venv and install its packages, unless the stamp says it already has exactly these."""
    directory = VENVS / cfg.venv
    stamp = directory / ".bench-packages"
    wanted = json.dumps(cfg.packages)
    if venv_python(cfg).exists() and stamp.exists() and stamp.read_text() == wanted:
        return
    started = time.monotonic()
    log(f"{cfg.venv}: creating venv and installing {' '.join(cfg.packages)} (can take minutes)")
    if not venv_python(cfg).exists():
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_PROGRESS_BAR": "off"}
    done = subprocess.run(
        [str(venv_python(cfg)), "-m", "pip", "install", "-q", *cfg.packages], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if not line.startswith("WARNING: Location")]
        raise RuntimeError(f"pip install failed for {cfg.venv}:\n" + "\n".join(errors[-20:]))
    stamp.write_text(wanted)
    log(f"{cfg.venv}: ready in {time.monotonic() - started:.0f} s")


def ensure_venvs(configs: list[Config]) -> dict[str, str]:
    """All venvs, installed in parallel; returns the ones that failed, with the reason."""
    failed: dict[str, str] = {}
    unique = {c.venv: c for c in configs}
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {pool.submit(ensure_venv, c): c for c in unique.values()}
        for future in concurrent.futures.as_completed(futures):
            cfg = futures[future]
            try:
                future.result()
            except Exception as exc:
                failed[cfg.venv] = str(exc)
                log(f"{cfg.venv}: FAILED: {exc}")
    return failed


# --- workers ---------------------------------------------------------------------------------------------------------


def _worker_env() -> dict[str, str]:
    """The environment minus anything that would change an instrumentor's defaults or send data anywhere."""
    prefixes = ("OTEL_", "TRACELOOP_", "OPENLIT_", "GATEWAY_OTEL_", "OPENINFERENCE_", "OPENAI_", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


class Worker:
    """A running `_worker.py` for one configuration, asked one JSON line at a time."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.hello: dict[str, Any] = {}
        self.error: str | None = None
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "logs").mkdir(exist_ok=True)
        self.log_path = RESULTS / "logs" / f"{cfg.slug}.log"
        self._log: TextIO = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(venv_python(cfg)), str(WORKER), cfg.setup],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=_worker_env(),
            cwd=str(BENCH),
        )

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = self.log_path.read_text()[-2000:]
            raise RuntimeError(f"worker exited with {self.proc.returncode}: {tail}")
        return json.loads(line)

    def start(self) -> None:
        """Wait for the worker's set-up; a failure becomes the configuration's reason, not a crash."""
        try:
            self.hello = self._read()
            if not self.hello.get("ok"):
                self.error = self.hello.get("error", "set-up failed")
                (RESULTS / "logs" / f"{self.cfg.slug}.setup-error.txt").write_text(self.hello.get("traceback", ""))
        except Exception as exc:
            self.error = str(exc)

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if not answer.get("ok"):
            raise RuntimeError(f"{self.cfg.name}: {command['op']} failed: {answer.get('error')}")
        return answer

    def close(self) -> None:
        try:
            if self.proc.poll() is None and self.error is None:
                self.ask(op="quit")
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self._log.close()


def start_workers(configs: list[Config], broken_venvs: dict[str, str]) -> tuple[list[Worker], dict[str, str]]:
    """Start every worker at once; returns the live ones and the reasons of those that could not start."""
    broken: dict[str, str] = {c.name: f"venv: {broken_venvs[c.venv]}" for c in configs if c.venv in broken_venvs}
    workers = [Worker(c) for c in configs if c.name not in broken]
    for w in workers:
        w.start()
        if w.error:
            broken[w.cfg.name] = w.error
            log(f"{w.cfg.name}: cannot run: {w.error}")
        else:
            log(f"{w.cfg.name}: ready ({w.cfg.venv}, openai {w.hello['versions'].get('openai')})")
    return [w for w in workers if not w.error], broken


def in_parallel(workers: list[Worker], job: Any, width: int = 2) -> dict[str, Any]:
    """Untimed phases (allocation, growth): run `job(worker)` on two workers at a time (two cores)."""
    results: dict[str, Any] = {}
    lock = threading.Lock()

    def run(w: Worker) -> None:
        try:
            value: Any = job(w)
        except Exception as exc:
            value = {"error": str(exc)}
        with lock:
            results[w.cfg.name] = value

    with concurrent.futures.ThreadPoolExecutor(max_workers=width) as pool:
        list(pool.map(run, workers))
    return results


# --- measuring -------------------------------------------------------------------------------------------------------


@dataclass
class Measurements:
    """Everything measured, keyed by configuration name then workload."""

    per_call: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # seconds per call, one per round
    spans_after_rounds: dict[str, Any] = field(default_factory=dict)
    spans_final: dict[str, Any] = field(default_factory=dict)
    alloc: dict[str, Any] = field(default_factory=dict)
    growth: dict[str, Any] = field(default_factory=dict)


def timed_rounds(workers: list[Worker], plan: Plan, m: Measurements) -> None:
    """Round after round; within a round, workload by workload (shuffled), one batch from each worker in turn
    (shuffled), so a configuration and its baseline are timed a fraction of a second apart and see the same noise."""
    rng = random.Random(20261123)
    log(f"warm-up: {len(workers)} workers")
    for w in workers:
        for workload in WORKLOADS:
            w.ask(op="time", workload=workload, calls=plan.batch[workload] * 3)
    for w in workers:
        m.per_call[w.cfg.name] = {workload: [] for workload in WORKLOADS}
    started = time.monotonic()
    for r in range(plan.rounds):
        workloads = list(WORKLOADS)
        rng.shuffle(workloads)
        for workload in workloads:
            order = list(workers)
            rng.shuffle(order)
            calls = plan.batch[workload]
            for w in order:
                elapsed = w.ask(op="time", workload=workload, calls=calls)["elapsed"]
                m.per_call[w.cfg.name][workload].append(elapsed / calls)
        if r == 0 or (r + 1) % 10 == 0 or r + 1 == plan.rounds:
            spent = time.monotonic() - started
            log(f"round {r + 1}/{plan.rounds} ({spent:.0f} s, ~{spent / (r + 1) * (plan.rounds - r - 1):.0f} s left)")


def measure(workers: list[Worker], plan: Plan) -> Measurements:
    m = Measurements()
    timed_rounds(workers, plan, m)
    m.spans_after_rounds = {w.cfg.name: w.ask(op="spans") for w in workers}
    log("peak allocation per call (tracemalloc)")
    m.alloc = in_parallel(
        workers,
        lambda w: {
            workload: w.ask(op="alloc", workload=workload, calls=plan.alloc_calls[workload]) for workload in WORKLOADS
        },
    )
    log(f"growth over {plan.growth_calls} calls after {plan.growth_warmup} warm-up calls (two workers at a time)")
    m.growth = in_parallel(
        workers,
        lambda w: w.ask(op="growth", calls=plan.growth_calls, warmup=plan.growth_warmup, traced=plan.growth_traced),
    )
    m.spans_final = {w.cfg.name: w.ask(op="spans") for w in workers}
    return m


# --- analysis --------------------------------------------------------------------------------------------------------


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def bootstrap_interval(paired: list[float], resamples: int = 2000) -> tuple[float, float]:
    """90% interval of the median of the per-round differences, resampling whole rounds."""
    rng = random.Random(7)
    n = len(paired)
    estimates = sorted(statistics.median(paired[rng.randrange(n)] for _ in range(n)) for _ in range(resamples))
    return estimates[int(0.05 * resamples)], estimates[int(0.95 * resamples) - 1]


def check_spans(cfg: Config, spans: dict[str, Any]) -> dict[str, str]:
    """Per workload, '' when the configuration exported what it should, else why not."""
    problems: dict[str, str] = {}
    for workload in WORKLOADS:
        seen = spans["workloads"][workload]
        calls, exported = seen["calls"], seen["spans"]
        if cfg.role == "baseline":
            problems[workload] = "" if exported == 0 else f"{exported} spans from an uninstrumented client"
        elif exported != calls:
            problems[workload] = f"{exported} spans for {calls} calls"
        elif not seen["token_attributes"] and cfg.setup != "floor_span":
            problems[workload] = "spans carry no token counts"
        else:
            problems[workload] = ""
    return problems


def analyse(configs: list[Config], m: Measurements) -> dict[str, Any]:
    """Medians, overheads against the same-major baseline, ratios to the fastest maintained peer, span verdicts."""
    stats: dict[str, Any] = {}
    for cfg in configs:
        if cfg.name not in m.per_call:
            continue
        verdict_after = check_spans(cfg, m.spans_after_rounds[cfg.name])
        verdict_final = check_spans(cfg, m.spans_final[cfg.name])
        stats[cfg.name] = {}
        for workload in WORKLOADS:
            q1, med, q3 = quartiles(m.per_call[cfg.name][workload])
            problem = verdict_after[workload] or verdict_final[workload]
            stats[cfg.name][workload] = {
                "median_us": med * 1e6,
                "q1_us": q1 * 1e6,
                "q3_us": q3 * 1e6,
                "problem": problem,
            }
    baselines = {c.major: c.name for c in configs if c.role == "baseline" and c.name in stats}
    for cfg in configs:
        for workload in WORKLOADS:
            cell = stats.get(cfg.name, {}).get(workload)
            base = baselines.get(cfg.major)
            if cell is None or base is None or cfg.role == "baseline":
                continue
            # Each round times a configuration and its baseline a fraction of a second apart: their difference
            # cancels the machine's slow swings, which the difference of the two medians keeps.
            paired = [a - b for a, b in zip(m.per_call[cfg.name][workload], m.per_call[base][workload], strict=True)]
            cell["overhead_us"] = statistics.median(paired) * 1e6
            low, high = bootstrap_interval(paired)
            cell["overhead_ci90_us"] = (low * 1e6, high * 1e6)
            cell["median_minus_median_us"] = cell["median_us"] - stats[base][workload]["median_us"]
    fastest: dict[str, tuple[str, float] | None] = {}
    for workload in WORKLOADS:
        peers = [
            (c.name, stats[c.name][workload]["overhead_us"])
            for c in configs
            if c.role == "peer" and c.name in stats and not stats[c.name][workload]["problem"]
        ]
        fastest[workload] = min(peers, key=lambda p: p[1]) if peers else None
        openai2_peers = [p for p in peers if p[0].endswith("@openai2")]
        for cfg in configs:
            cell = stats.get(cfg.name, {}).get(workload)
            if cell is None or "overhead_us" not in cell:
                continue
            best = fastest[workload]
            cell["ratio"] = cell["overhead_us"] / best[1] if best and best[1] > 0 else None
            if cfg.major == 2 and openai2_peers:  # against the peer measured on the same openai major
                same = min(openai2_peers, key=lambda p: p[1])
                cell["ratio_same_major"] = cell["overhead_us"] / same[1] if same[1] > 0 else None
    return {"cells": stats, "baselines": baselines, "fastest_peer": fastest}


def alloc_kib(m: Measurements, name: str, workload: str) -> float | None:
    cell = m.alloc.get(name, {})
    if "error" in cell or workload not in cell:
        return None
    return cell[workload]["median"] / 1024


# --- report ----------------------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 0, suffix: str = "") -> str:
    return "—" if value is None else f"{value:,.{digits}f}{suffix}"


def render(
    configs: list[Config], broken: dict[str, str], m: Measurements, a: dict[str, Any], meta: dict[str, Any], plan: Plan
) -> str:
    cells = a["cells"]
    lines: list[str] = []
    add = lines.append
    base_of = a["baselines"]
    add(
        f"Run {meta['date']} on {meta['machine']} ({meta['cpus']} CPUs), Python {meta['python']}, "
        f"{plan.rounds} interleaved rounds{' (--quick)' if meta['quick'] else ''}, {meta['duration_s']:.0f} s; "
        f"gateway-otel at {meta['gateway_otel_source']}."
    )
    add("")
    add(
        "**Overhead over the uninstrumented call**, µs per call: the median over rounds of (this configuration − "
        "the baseline on the same openai major, timed within the same round), [90% bootstrap interval], and (×) the "
        "ratio to the fastest maintained peer's overhead on that workload (openai-v2, deprecated upstream, is shown "
        "for reference and not counted). Per chunk = the stream's overhead ÷ 100 chunks."
    )
    add("")
    add("| configuration | openai | chat sync | chat async | chat stream (100 chunks) | per chunk | embeddings |")
    add("| --- | --- | --- | --- | --- | --- | --- |")
    for cfg in configs:
        if cfg.role == "baseline":
            continue
        version = meta["versions"].get(cfg.name, {}).get("openai", "?")
        if cfg.name in broken:
            add(f"| {cfg.name} | {version} | cannot run: {broken[cfg.name][:120]} | | | | |")
            continue
        row = [cfg.name + (" (deprecated)" if cfg.role == "deprecated" else ""), version]
        for workload in WORKLOADS:
            cell = cells[cfg.name][workload]
            if cell["problem"]:
                row.append(f"FAILED: {cell['problem']}")
            else:
                ratio = "" if cell.get("ratio") is None else f" ({cell['ratio']:.2f}×)"
                low, high = cell["overhead_ci90_us"]
                row.append(f"{cell['overhead_us']:,.0f} [{low:,.0f}…{high:,.0f}]{ratio}")
            if workload == "chat_stream":
                row.append("—" if cell["problem"] else f"{cell['overhead_us'] / STREAM_CHUNKS:,.1f}")
        add("| " + " | ".join(row) + " |")
    fastest = " · ".join(
        f"{TITLES[w]}: {p[0]} ({p[1]:,.0f} µs)" if (p := a["fastest_peer"][w]) else f"{TITLES[w]}: —" for w in WORKLOADS
    )
    add("")
    add(f"Fastest maintained peer per workload: {fastest}.")
    same = [
        (w, cells[c.name][w].get("ratio_same_major"))
        for c in configs
        if c.role == "subject" and c.major == 2 and c.name in cells
        for w in WORKLOADS
    ]
    if any(r is not None for _, r in same):
        add(
            "Same openai major (2) against openlit: gateway-otel@openai2 overhead ÷ openlit overhead = "
            + ", ".join(f"{TITLES[w]} {_num(r, 2, '×')}" for w, r in same)
            + "."
        )
    add("")
    add(
        "**Per-call time**, µs, median [IQR] over rounds (absolute times depend on the machine's load; compare "
        "within one run only), and the overhead as median − median of the baseline on the same major (less precise "
        "than the paired one above: the machine's swings stay in it)."
    )
    add("")
    add("| configuration | " + " | ".join(TITLES[w] for w in WORKLOADS) + " |")
    add("| --- |" + " --- |" * len(WORKLOADS))
    for cfg in configs:
        if cfg.name not in cells:
            continue
        add(
            f"| {cfg.name} | "
            + " | ".join(
                f"{c['median_us']:,.0f} [{c['q1_us']:,.0f}–{c['q3_us']:,.0f}]"
                + ("" if "median_minus_median_us" not in c else f", {c['median_minus_median_us']:+,.0f}")
                for c in (cells[cfg.name][w] for w in WORKLOADS)
            )
            + " |"
        )
    add("")
    add(
        "**Peak allocation per call**, KiB (tracemalloc peak during one call above what was allocated before it, "
        "median), and Δ against the baseline of the same openai major."
    )
    add("")
    add("| configuration | " + " | ".join(TITLES[w] for w in WORKLOADS) + " |")
    add("| --- |" + " --- |" * len(WORKLOADS))
    for cfg in configs:
        if cfg.name not in cells:
            continue
        row = []
        for workload in WORKLOADS:
            value = alloc_kib(m, cfg.name, workload)
            base = alloc_kib(m, base_of.get(cfg.major, ""), workload)
            delta = "" if cfg.role == "baseline" or value is None or base is None else f" (Δ {value - base:+,.1f})"
            row.append(_num(value, 1) + delta)
        add(f"| {cfg.name} | " + " | ".join(row) + " |")
    add("")
    add(
        f"**Growth over {plan.growth_calls:,} calls** after {plan.growth_warmup:,} warm-up calls (the workloads in "
        "turn, in blocks of 100 chat sync, 100 chat async, 25 embeddings, 5 streams), `gc.collect()` before each "
        "reading: live pymalloc blocks (`sys.getallocatedblocks()`, every small object), gc-tracked objects, bytes "
        "malloc has in use (large strings and tables) and RSS"
        + (
            ", and tracemalloc's current bytes (traced from before the warm-up)."
            if plan.growth_traced
            else ". tracemalloc would slow every call 5–6× (`--traced-growth` turns it on)."
        )
    )
    add("")
    add("| configuration | blocks Δ | blocks per call | objects Δ | malloc Δ, KiB | RSS Δ, KiB | tracemalloc Δ, KiB |")
    add("| --- | --- | --- | --- | --- | --- | --- |")
    for cfg in configs:
        growth = m.growth.get(cfg.name)
        if growth is None:
            continue
        if "error" in growth:
            add(f"| {cfg.name} | error: {growth['error'][:100]} | | | | | |")
            continue
        kib = {
            k: None if growth[f"{k}_growth"] is None else growth[f"{k}_growth"] / 1024
            for k in ("malloc", "rss", "traced")
        }
        add(
            f"| {cfg.name} | {growth['blocks_growth']:+,} | {growth['blocks_growth'] / growth['calls']:+.3f} | "
            f"{growth['objects_growth']:+,} | {_num(kib['malloc'], 1)} | {_num(kib['rss'], 0)} | "
            f"{_num(kib['traced'], 1)} |"
        )
    add("")
    add(
        "**Span check** (after the timed rounds and again at the end): spans exported / calls made, attributes on "
        "the last span, and whether it carries token counts."
    )
    add("")
    add("| configuration | " + " | ".join(TITLES[w] for w in WORKLOADS) + " | metrics | log records |")
    add("| --- |" + " --- |" * (len(WORKLOADS) + 2))
    for cfg in configs:
        if cfg.name not in m.spans_final:
            continue
        final = m.spans_final[cfg.name]
        row = []
        for workload in WORKLOADS:
            seen = final["workloads"][workload]
            mark = "ok" if not cells[cfg.name][workload]["problem"] else "**FAILED**"
            tokens = "tokens" if seen["token_attributes"] else "no tokens"
            row.append(f"{mark} {seen['spans']:,}/{seen['calls']:,}, {seen['attributes']} attrs, {tokens}")
        add(f"| {cfg.name} | " + " | ".join(row) + f" | {len(final['metrics'])} | {final['logs']:,} |")
    if broken:
        add("")
        add("**Could not run:** " + "; ".join(f"{name}: {reason}" for name, reason in broken.items()))
    add("")
    add(targets(configs, m, a))
    add("")
    add("**Environments** (one venv per configuration; versions as installed):")
    add("")
    add("| configuration | venv | installed with | versions |")
    add("| --- | --- | --- | --- |")
    for cfg in configs:
        versions = meta["versions"].get(cfg.name, {})
        shown = ", ".join(f"{k} {v}" for k, v in versions.items())
        packages = " ".join(p if not p.startswith("/") else "<repo>" for p in cfg.packages)
        note = f" — {cfg.note}" if cfg.note else ""
        add(f"| {cfg.name} | `{cfg.venv}` | `{packages}`{note} | {shown} |")
    return "\n".join(lines)


TARGET_RATIO = {"chat_sync": 0.75, "chat_async": 0.75, "chat_stream": 0.25, "embeddings": 0.75}
"""Issue 17: gateway-otel's overhead at most this × the fastest maintained peer's, per workload."""
OWN_SHARE = 0.20
"""...and its own code (its overhead minus `floor: our telemetry`'s) at most this share of its overhead."""
ALLOC_REFERENCE = "openai-v2"
"""...and its peak allocation per call no more than this peer's."""


def _own_share(cells: dict[str, Any], name: str, workload: str) -> float | None:
    """(overhead − `floor: our telemetry`'s) ÷ overhead: the share of gateway-otel's own code, when the floor ran."""
    ours, floor = cells.get(name, {}).get(workload, {}), cells.get("floor: our telemetry", {}).get(workload, {})
    if "overhead_us" not in ours or "overhead_us" not in floor or ours["overhead_us"] <= 0:
        return None
    return (ours["overhead_us"] - floor["overhead_us"]) / ours["overhead_us"]


def targets(configs: list[Config], m: Measurements, a: dict[str, Any]) -> str:
    """The package's own targets, checked on this run (`TARGET_RATIO`, `OWN_SHARE`, `ALLOC_REFERENCE`), and no
    growth (beyond the baseline's own drift, within `GROWTH_TOLERANCE` per call)."""
    cells = a["cells"]
    out = [
        "**Targets for gateway-otel** (overhead ≤ 0.75× the fastest maintained peer's, ≤ 0.25× on the stream; its "
        f"own code ≤ {OWN_SHARE:.0%} of its overhead, with `--floor`; peak allocation per call ≤ {ALLOC_REFERENCE}'s; "
        "no growth). On openai 2 the peer is openlit, on the same major:",
        "",
    ]
    for cfg in configs:
        if cfg.role != "subject" or cfg.name not in cells:
            continue
        base = a["baselines"].get(cfg.major, "")
        checks = []
        for workload in WORKLOADS:
            cell = cells[cfg.name][workload]
            ratio = cell.get("ratio_same_major") if cfg.major == 2 else cell.get("ratio")
            ok = not cell["problem"] and ratio is not None and ratio <= TARGET_RATIO[workload]
            check = f"{TITLES[workload]}: overhead {'PASS' if ok else 'FAIL'} ({_num(ratio, 2, '×')})"
            share = _own_share(cells, cfg.name, workload) if cfg.major == 3 else None
            if share is not None:
                check += f", own code {'PASS' if share <= OWN_SHARE else 'FAIL'} ({share:.0%})"
            value, reference = alloc_kib(m, cfg.name, workload), alloc_kib(m, ALLOC_REFERENCE, workload)
            if value is not None and reference is not None and cfg.major == 3:
                check += f", alloc {'PASS' if value <= reference else 'FAIL'} ({value:,.1f} vs {reference:,.1f} KiB)"
            checks.append(check)
        growth, base_growth = m.growth.get(cfg.name, {}), m.growth.get(base, {})
        if "blocks_growth" in growth and "blocks_growth" in base_growth:
            calls = growth["calls"]
            extra = {
                k: growth[f"{k}_growth"] - base_growth[f"{k}_growth"]
                for k in GROWTH_TOLERANCE
                if growth[f"{k}_growth"] is not None and base_growth[f"{k}_growth"] is not None
            }
            ok = all(v <= GROWTH_TOLERANCE[k][0] + GROWTH_TOLERANCE[k][1] * calls for k, v in extra.items())
            checks.append(
                f"growth {'PASS' if ok else 'FAIL'} (over the baseline, {calls:,} calls: "
                + ", ".join(f"{k} {v:+,}" for k, v in extra.items())
                + ")"
            )
        out.append(f"- {cfg.name}: " + "; ".join(checks))
    return "\n".join(out)


def source_state() -> str:
    """The gateway-otel source measured (an editable install of this repo): commit, and whether src/ has edits."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "source unknown"
    return f"commit {commit}" + (" + uncommitted changes in src/" if dirty else "")


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"machine": f"{model}, {platform.system()} {platform.release()}", "cpus": os.cpu_count()}


# --- profile mode ----------------------------------------------------------------------------------------------------


def _share_rows(items: list[tuple[str, float]], limit: int, sampled: float, overhead: float) -> list[str]:
    """Profile table rows: each item's share of the sampled time, and that share of the measured overhead."""
    return [f"| `{name}` | {us / sampled:.1%} | {us / sampled * overhead:,.0f} |" for name, us in items[:limit]]


def profile(configs: list[Config]) -> None:
    """Where gateway-otel's overhead goes, on chat_sync and chat_stream: its own functions by self time, and what
    it calls outside itself, against the overhead measured (interleaved) against the baseline in the same run."""
    subject = next(c for c in configs if c.role == "subject" and c.major == 3)
    base = next(c for c in configs if c.role == "baseline" and c.major == 3)
    failed = ensure_venvs([subject, base])
    if failed:
        raise SystemExit(f"cannot profile: {failed}")
    subprocess.run(
        [str(venv_python(subject)), "-m", "pip", "install", "-q", "pyinstrument"],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
    )
    workers, broken = start_workers([base, subject], {})
    if broken:
        raise SystemExit(f"cannot profile: {broken}")
    plan = Plan(
        rounds=80,
        batch={"chat_sync": 10, "chat_async": 1, "chat_stream": 1, "embeddings": 1},
        alloc_calls={},
        growth_calls=0,
        growth_warmup=0,
    )
    m = Measurements()
    try:
        timed_rounds(workers, plan, m)
        lines = [
            f"# gateway-otel profile ({dt.datetime.now().isoformat(timespec='seconds')}, "
            f"gateway-otel {source_state()})",
            "",
        ]
        for workload, calls in (("chat_sync", 600), ("chat_stream", 60)):
            mine, theirs = m.per_call[subject.name][workload], m.per_call[base.name][workload]
            paired = [x - y for x, y in zip(mine, theirs, strict=True)]
            overhead = statistics.median(paired) * 1e6
            low, high = (v * 1e6 for v in bootstrap_interval(paired))
            log(f"profiling {workload} ({calls} calls)")
            p = workers[1].ask(op="profile", workload=workload, calls=calls, package="gateway_otel")
            sampled = p["package_us_per_call"]
            lines += [
                f"## {workload}",
                "",
                f"Measured overhead (interleaved against the baseline, {plan.rounds} rounds): "
                f"**{overhead:,.0f} µs per call** [90%: {low:,.0f}…{high:,.0f}]. Under the profiler, gateway_otel's "
                f"code plus what it calls (minus the wrapped openai call) took {sampled:,.0f} µs per call: the "
                "profiler inflates call-heavy code, so read the shares, and the µs column as that share of the "
                "measured overhead.",
                "",
                "| gateway_otel function, self time (builtins it calls included) | share | ≈ µs of overhead |",
                "| --- | --- | --- |",
                *_share_rows(p["own"], 15, sampled, overhead),
                "",
                "| called from gateway_otel, outside it (inclusive) | share | ≈ µs of overhead |",
                "| --- | --- | --- |",
                *_share_rows(p["called"], 12, sampled, overhead),
                "",
                "| gateway_otel module, self time | share | ≈ µs of overhead |",
                "| --- | --- | --- |",
                *_share_rows(p["modules"], 12, sampled, overhead),
                "",
                "<details><summary>pyinstrument tree</summary>",
                "",
                "```",
                p["text"],
                "```",
                "</details>",
                "",
            ]
        text = "\n".join(lines)
        (RESULTS / "profile.md").write_text(text)
        print(text)
    finally:
        for w in workers:
            w.close()


def write_readme(table: str) -> None:
    """Replace the results section of bench/README.md (between its two markers) with this run's table."""
    readme = BENCH / "README.md"
    text = readme.read_text()
    start, end = "<!-- results -->", "<!-- /results -->"
    if start not in text or end not in text:
        log("README.md has no results markers: not updated")
        return
    head, rest = text.split(start, 1)
    readme.write_text(f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")
    log(f"pasted the results into {readme}")


# --- main ------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds and calls: a smoke check, not results")
    parser.add_argument("--only", help="comma-separated configuration names (baselines are always included)")
    parser.add_argument("--profile", action="store_true", help="profile gateway-otel instead (pyinstrument)")
    parser.add_argument("--write-readme", action="store_true", help="paste the results into bench/README.md")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure gateway-otel variants and SDK-only floors (see REFERENCE_CONFIGS)",
    )
    parser.add_argument(
        "--traced-growth",
        action="store_true",
        help="also trace the growth phase with tracemalloc (exact bytes; makes it 5-6x slower)",
    )
    parser.add_argument("--compare", metavar="REF", help="also measure gateway-otel as of this git ref")
    parser.add_argument(
        "--rounds", type=int, help=f"interleaved rounds (default {FULL.rounds}): more narrow the intervals (~√n)"
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    configs = list(CONFIGS)
    compared = compare_config(args.compare) if args.compare else None
    if compared is not None:
        configs.append(compared)
    if args.floor or args.only:
        configs += REFERENCE_CONFIGS
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in configs if c.name in wanted or c.role == "baseline" or c is compared]
    if args.profile:
        profile(configs)
        return
    plan = QUICK if args.quick else FULL
    if args.traced_growth:
        plan = dataclasses.replace(plan, growth_traced=True)
    if args.rounds:
        if args.rounds < 4:
            parser.error("--rounds: expected at least 4 (the quartiles need them)")
        plan = dataclasses.replace(plan, rounds=args.rounds)
    started = time.monotonic()
    log(f"{len(configs)} configurations; venvs under {VENVS}")
    broken_venvs = ensure_venvs(configs)
    workers, broken = start_workers(configs, broken_venvs)
    try:
        m = measure(workers, plan)
    finally:
        for w in workers:
            w.close()
    a = analyse(configs, m)
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        **machine(),
        "python": platform.python_version(),
        "gateway_otel_source": source_state(),
        "quick": args.quick,
        "duration_s": time.monotonic() - started,
        "versions": {w.cfg.name: w.hello.get("versions", {}) for w in workers},
        "worker_python": {w.cfg.name: w.hello.get("python") for w in workers},
    }
    table = render(configs, broken, m, a, meta, plan)
    print(table)
    (RESULTS / "latest.md").write_text(table + "\n")
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "plan": asdict(plan),
                "configs": [asdict(c) for c in configs],
                "broken": broken,
                "analysis": a,
                "measurements": asdict(m),
            },
            indent=1,
            default=str,
        )
    )
    log(f"written {RESULTS / 'latest.md'} and {RESULTS / 'latest.json'}")
    if args.write_readme:
        write_readme(table)
    failures = [
        (name, workload, cell["problem"])
        for name, cells in a["cells"].items()
        for workload, cell in cells.items()
        if cell["problem"]
    ]
    if failures or broken:
        print("\nBENCHMARK ERRORS (these cells show FAILED or no number, never a time):", file=sys.stderr)
        print("| configuration | workload | problem |\n| --- | --- | --- |", file=sys.stderr)
        for name, workload, problem in failures:
            print(f"| {name} | {workload} | {problem} |", file=sys.stderr)
        for name, reason in broken.items():
            print(f"| {name} | all | cannot run: {reason} |", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
