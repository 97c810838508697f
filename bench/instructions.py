#!/usr/bin/env python3
"""Instructions per call, counted by valgrind: `python3 bench/instructions.py [--compare REF] [CONFIG ...]`.

Timing on a shared machine cannot resolve a few tens of µs on a 17 ms stream; an instruction count can. Each
configuration's worker (`_worker.py SETUP --calls WORKLOAD N`) runs under `valgrind --tool=cachegrind` twice, with
N1 and N2 calls after the same warm-up: (count(N2) − count(N1)) ÷ (N2 − N1) is the cost of one call, start-up and
imports cancelled out (`PYTHONHASHSEED=0`, so both runs take the same paths; the garbage collector is off during
the counted calls, as one collection falling into either run would swamp the difference). Overhead = that minus the
baseline's. Instructions are not time (cache misses, allocation and locks weigh differently), but they are exact,
repeatable, and the same for everyone. Needs `valgrind` (apt) and the venvs `run.py` created; about 40 s per count.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys

import run

CALLS = {"chat_sync": (4, 24), "chat_async": (4, 24), "chat_stream": (1, 5), "embeddings": (4, 24)}
DEFAULT = (
    "baseline",
    "gateway-otel",
    "openai-v2",
    "gateway-otel (metrics off)",
    "floor: bare span",
    "floor: our telemetry",
)


def count(cfg: run.Config, workload: str, calls: int) -> int:
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command += [str(run.venv_python(cfg)), str(run.WORKER), cfg.setup, "--calls", workload, str(calls)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{cfg.name} {workload}: valgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_call(cfg: run.Config, workload: str) -> float:
    low, high = CALLS[workload]
    return (count(cfg, workload, high) - count(cfg, workload, low)) / (high - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", help=f"configuration names (default: {', '.join(DEFAULT)})")
    parser.add_argument("--workloads", default="chat_sync,chat_stream", help="comma-separated workloads")
    parser.add_argument("--compare", metavar="REF", help="also count gateway-otel as of this git ref")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs at once")
    args = parser.parse_args()
    known = {c.name: c for c in (*run.CONFIGS, *run.REFERENCE_CONFIGS)}
    if args.compare:
        extra = run.compare_config(args.compare)
        known[extra.name] = extra
    names = list(dict.fromkeys(["baseline", *(args.configs or DEFAULT), *([extra.name] if args.compare else [])]))
    configs = [known[n] for n in names]
    failed = run.ensure_venvs(configs)
    if failed:
        sys.exit(f"venvs failed: {failed}")
    workloads = args.workloads.split(",")
    jobs = {(c.name, w): (c, w) for c in configs for w in workloads}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {key: pool.submit(per_call, *job) for key, job in jobs.items()}
        results = {key: f.result() for key, f in futures.items()}
    print("Instructions per call (valgrind), and the overhead over the baseline in thousands of instructions:\n")
    print("| configuration | " + " | ".join(workloads) + " |")
    print("| --- |" + " --- |" * len(workloads))
    for name in names:
        cells = []
        for w in workloads:
            value, base = results[(name, w)], results[("baseline", w)]
            cells.append(f"{value / 1e6:,.2f} M" if name == "baseline" else f"+{(value - base) / 1e3:,.0f} k")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
