#!/usr/bin/env python3
"""Mutation testing of the code that keeps the promises: `python bench/mutate.py [GROUP ...] [--diff]`.

mutmut (3.x, the `mutation` extra) changes one thing at a time inside a function — `<` to `<=`, a string to
`"XX..XX"`, `and` to `or`, an argument to `None` — and runs the tests that reach that function; a change no test
notices (a **survivor**) is a behaviour nobody checks. The groups below name the functions that redact credentials
(`secrets`), strip content in privacy mode (`privacy`), end a stream's span (`streams`), read usage and cost
(`usage`), apply the store's retention (`retention`) and record every call's metrics once (`metrics`).
`[tool.mutmut]` in pyproject.toml says which files are mutated and which test files run (the quick ones; the real
servers' tests are skipped). This script runs mutmut on each group's mutants, then prints the counts and every
survivor with its reason when it is a known equivalent or an accepted one (`ACCEPTED`, or a rule:
`equivalent_by_rule`). The exit status is 1 when a survivor has no reason.

Run it with the interpreter that has the package and its test extra (`pip install -e '.[test,mutation]'`). mutmut
works in `mutants/` (a mutated copy of `src/` and `tests/`, git-ignored); its log goes to `bench/results/mutate.log`.
Not part of CI: a group takes one to fourteen minutes (bench/README.md has the figures).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "bench" / "results" / "mutate.log"
_INSTRUMENTATION = "gateway_otel.instrumentation"

GROUPS: dict[str, tuple[str, ...]] = {
    # mutmut names a mutant `module.x_function__mutmut_N`, a method's `module.xǁClassǁmethod__mutmut_N`.
    "secrets": (
        "gateway_otel._secrets.*",
        f"{_INSTRUMENTATION}._attributes.x_safe_json__mutmut_*",
        f"{_INSTRUMENTATION}._invocation.xǁInvocationǁ_scrub__mutmut_*",
        f"{_INSTRUMENTATION}._invocation.xǁInvocationǁ_clean__mutmut_*",
    ),
    "privacy": (
        "gateway_otel._semconv.x_is_content__mutmut_*",
        "gateway_otel._semconv.x_without_content__mutmut_*",
        "gateway_otel.destinations._processor.x__rewrite__mutmut_*",
        "gateway_otel.destinations._processor.xǁ_GuardedExporterǁexport__mutmut_*",
        "gateway_otel.destinations._processor.x__log_without_content__mutmut_*",
        "gateway_otel.destinations._processor.xǁ_PrivateLogsǁexport__mutmut_*",
    ),
    "streams": (f"{_INSTRUMENTATION}._stream.*",),
    "metrics": (  # late is fine, lost is not: the recorder's queue, worker, collections and exit
        f"{_INSTRUMENTATION}._metrics.xǁMetricRecorderǁ*",
        *(
            f"{_INSTRUMENTATION}._metrics.{name}__mutmut_*"
            for name in ("x__work", "x__record_queued", "x__flush_at_exit", "x__forked", "x__metric_attributes")
        ),
    ),
    "usage": tuple(
        f"{_INSTRUMENTATION}._response.{name}__mutmut_*"
        for name in ("x_map_usage", "xǁResponseRecordǁclean", "x_int64", "x__text", "x__int", "x__float")
    ),
    "retention": tuple(
        f"gateway_otel.store._writer.{name}__mutmut_*" for name in ("x_prune", "x__drop_oldest", "x_used_bytes")
    ),
}
"""Group → mutmut's names of its mutants (glob patterns)."""

_SET_BEFORE_READ = "is set by finish() before anything reads it"
ACCEPTED: dict[str, str] = {
    # streams: the initial values of what `StreamState.finish` and `on_first_chunk` set before anyone reads them
    f"{_INSTRUMENTATION}._stream.xǁStreamStateǁ__init____mutmut_7": "equivalent: first_chunk_ns (None) is read only "
    "once first_chunk_at is set, and on_first_chunk sets both",
    f"{_INSTRUMENTATION}._stream.xǁStreamStateǁ__init____mutmut_8": "equivalent: first_chunk_ns (1), as _7",
    f"{_INSTRUMENTATION}._stream.xǁStreamStateǁ__init____mutmut_9": f"equivalent: last_chunk_at {_SET_BEFORE_READ}",
    f"{_INSTRUMENTATION}._stream.xǁStreamStateǁ__init____mutmut_10": f"equivalent: last_chunk_at {_SET_BEFORE_READ}",
    f"{_INSTRUMENTATION}._stream.xǁStreamStateǁ__init____mutmut_11": "equivalent: done is only tested for truth, "
    "and None is as false as False",
    f"{_INSTRUMENTATION}._stream.xǁStreamStateǁ__init____mutmut_13": f"equivalent: outcome {_SET_BEFORE_READ}",
    f"{_INSTRUMENTATION}._stream.xǁ_StreamProxyǁ__del____mutmut_2": "equivalent: the state is never None once "
    "__init__ ran, and finish() on a finished state returns at once",
    # metrics: the recorder
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁ__init____mutmut_6": (
        "equivalent: _closed is only tested for truth, and None is as false as False"
    ),
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁ__init____mutmut_13": (
        "equivalent: the collection hook's gauge exports no data point, so its name is never seen"
    ),
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁ__init____mutmut_14": (
        "equivalent: the gauge's name, as _13"
    ),
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁ_record__mutmut_6": (
        "equivalent: context=None is the SDK's default; a call always queues its context (never None)"
    ),
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁ_record__mutmut_9": "equivalent: as _6",
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁattributes__mutmut_1": (
        "equivalent: the attribute cache only saves rebuilding the same dicts"
    ),
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁattributes__mutmut_2": "equivalent: the cache, as _1",
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁattributes__mutmut_3": (
        "equivalent: an unhashable key's attributes are rebuilt from the same values"
    ),
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁattributes__mutmut_7": (
        "equivalent: the cache's size bound, one entry more"
    ),
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁattributes__mutmut_8": "equivalent: the cache, as _1",
    "gateway_otel.instrumentation._metrics.x__metric_attributes__mutmut_4": (
        "equivalent: a key always holds one value per METRIC_ATTRIBUTES name"
    ),
    "gateway_otel.instrumentation._metrics.x__metric_attributes__mutmut_7": "equivalent: zip's strictness, as _4",
    "gateway_otel.instrumentation._metrics.x__metric_attributes__mutmut_8": "equivalent: zip's strictness, as _4",
    "gateway_otel.instrumentation._metrics.x__work__mutmut_7": (
        "equivalent: the idle worker's minute-long wait only bounds how late it notices its recorder is gone"
    ),
    "gateway_otel.instrumentation._metrics.x__work__mutmut_8": "equivalent: the wait's length, as _7",
    "gateway_otel.instrumentation._metrics.x__work__mutmut_9": (
        "accepted: a worker ending after a minute without calls is not tested (it takes a minute); nothing is lost "
        "then: collections record the queue, and past the bound the callers do"
    ),
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁ_start__mutmut_12": (
        "caught outside mutmut's reach: a worker that is not a daemon holds the exit forever; "
        "test_the_default_set_up_exports... times out on it (checked by hand), but runs the package in a subprocess, "
        "which imports the unmutated source"
    ),
    "gateway_otel.instrumentation._metrics.xǁMetricRecorderǁ_start__mutmut_13": "as _start _12",
    # retention
    "gateway_otel.store._writer.x_prune__mutmut_31": "accepted: 8 passes is a chosen cap on one prune's work "
    "(the data fits after one or two; a pathological store is pruned further a minute later), not a computed value",
}
"""Survivors that are equivalent (no behaviour differs) or accepted, with the reason. A survivor's number changes
when its function is edited: it then shows up as new, to be looked at again."""
_SQL = re.compile(r"""["'](?:SELECT|INSERT|UPDATE|DELETE|PRAGMA)\b|["'](?:spans|logs|start_ns|time_ns)["']""", re.I)
"""A string that is SQL: a statement, or the name of one of the store's tables or time columns."""
_INTERNAL_ERROR = re.compile(r"\s*internal_error\((?:None|\"[^\"]*\")\)\s*")
"""A call of `internal_error` with a literal label (mutmut changes the label's text or makes it None)."""


def equivalent_by_rule(diff: str) -> str | None:
    """The reason a mutant is equivalent whatever its number, from its diff; None when no rule applies."""
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    if len(removed) == len(added) == 1 and removed[0].lower() == added[0].lower() and _SQL.search(removed[0]):
        return "equivalent: SQL keywords and names are case-insensitive"
    labels = [_INTERNAL_ERROR.fullmatch(line) for line in (*removed, *added)]
    if len(removed) == len(added) == 1 and all(labels):
        return "equivalent: the label of an internal-error report (a debug log line), not behaviour"
    return None


CAUGHT = ("killed", "timeout")
"""A mutant that makes the tests fail, or run until mutmut stops them (an endless loop), is caught."""
ENV = {"GATEWAY_OTEL_SKIP_PHOENIX": "1", "GATEWAY_OTEL_SKIP_E2E": "1", "GATEWAY_OTEL_SKIP_CHROMIUM": "1"}


def mutmut(*args: str, log: Path | None = None) -> str:
    """Run `mutmut ARGS` in the project's root with this interpreter; its output, or into `log`."""
    env = {**os.environ, **ENV}
    env.pop("PYTHONPATH", None)  # mutmut puts mutants/src first; a PYTHONPATH to src/ would test the real code
    command = [sys.executable, "-m", "mutmut", *args]
    if log is None:
        return subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ mutmut {' '.join(args)}\n")
        out.flush()
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"mutmut {args[0]} failed (exit {done.returncode}); see {log}")
    return ""


def statuses() -> dict[str, str]:
    """Every mutant mutmut knows of → its status (`killed`, `survived`, `no tests`, `timeout`...)."""
    found = {}
    for line in mutmut("results", "--all", "true").splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            found[name] = status
    return found


def in_group(name: str, group: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in GROUPS[group])


def report(group: str, found: dict[str, str], seconds: float, diff: bool) -> int:
    """Print a group's counts and the survivors, each with its reason when it has one; returns how many have none."""
    mine = {name: status for name, status in found.items() if in_group(name, group)}
    counts = Counter(mine.values())
    lines, unexplained = [], 0
    for name in sorted(n for n, s in mine.items() if s not in CAUGHT):
        shown = mutmut("show", name)
        reason = ACCEPTED.get(name) or equivalent_by_rule(shown)
        unexplained += reason is None
        lines.append(f"  {mine[name]}: {name}" + (f"\n      {reason}" if reason else ""))
        if diff and reason is None:
            lines += [f"      {line}" for line in shown.splitlines()[1:]]
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda c: c[0] not in CAUGHT))
    print(f"{group}: {len(mine)} mutants: {tally} ({unexplained} unexplained) in {seconds:.0f} s")
    for line in lines:
        print(line)
    return unexplained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=f"{', '.join(GROUPS)} (default: all)")
    parser.add_argument("--diff", action="store_true", help="show each unexplained survivor's change")
    parser.add_argument("--report", action="store_true", help="only print the last results, run nothing")
    parser.add_argument("--max-children", type=int, help="parallel mutants (default: one per CPU)")
    options = parser.parse_args()
    unknown = [g for g in options.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group {', '.join(unknown)}; expected some of: {', '.join(GROUPS)}")
    try:
        import mutmut as _  # noqa: F401
    except ImportError:
        sys.exit(f"mutmut is not installed for {sys.executable}: pip install -e '.[test,mutation]'")
    LOG.parent.mkdir(parents=True, exist_ok=True)
    if not options.report:
        # mutmut re-traces only the tests it has not seen: an edited test would keep its old reach.
        (ROOT / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    unexplained = 0
    for group in options.groups or list(GROUPS):
        started = time.monotonic()
        if not options.report:
            extra = ["--max-children", str(options.max_children)] if options.max_children else []
            mutmut("run", *extra, *GROUPS[group], log=LOG)
        unexplained += report(group, statuses(), time.monotonic() - started, options.diff)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
