"""Every code block of README.md and docs/*.md runs, or says on the line before it why not; every relative link
resolves; the README keeps its two commands first and its options table names every setting.

Blocks run in subprocesses, each in its own copy of a fresh home where `gateway-otel demo` has run, with a dummy
OPENROUTER_API_KEY and every openai client answered by the in-process gateway simulator (see docs_support.py). The
remote backends they name are stand-ins on 127.0.0.1: FakeOpenObserve, a Phoenix holding the demo's spans, and
OpenRouter's management API with one Broadcast destination.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from docs_support import (
    BOOTSTRAP,
    EXAMPLE_TRACE_ID,
    PAGES,
    PYTHON,
    ROOT,
    Block,
    PhoenixStandIn,
    all_blocks,
    anchors,
    environment,
    links,
    phoenix_span,
)
from gateway_otel import Telemetry
from gateway_otel.destinations import DESTINATION_NAMES
from gateway_otel.destinations._otlp import PROTOCOLS
from gateway_otel.gateways import GATEWAY_NAMES
from openobserve_fake import FakeOpenObserve
from openrouter_server import ManagementServer, destination, serve

BLOCKS = all_blocks()
RUNNABLE = [block for block in BLOCKS if block.runs]
MANAGEMENT_KEY = "sk-or-v1-docs-management-0000"
TIMEOUT = 90

# The blocks that do not run, and the first line of each: keep this list short.
NOT_RUN = [
    ("README.md", "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/gateway-otel demo"),
    ("README.md", "pip install /path/to/gateway-otel"),
    ("docs/destinations.md", "cp .env.example .env"),
    ("docs/development.md", "bash tests/run.sh -x -q"),
    ("docs/openrouter.md", "import os, openai, gateway_otel"),  # the generation record: OpenRouter, your key
]


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    home: Path
    sent: list[Any]  # the request bodies the simulator received (Python blocks)


@dataclass(frozen=True)
class Sandbox:
    """Where blocks run: a home in which the demo has run, shims on PATH, the stand-ins' settings."""

    root: Path
    home: Path
    env: dict[str, str]
    failed_trace_id: str

    def run(self, block: Block, name: str, home: Path | None = None) -> Result:
        where = self.root / name
        shutil.copytree(home or self.home, where / "home")
        (where / "work").mkdir()
        env = {**self.env, "HOME": str(where / "home"), "DOCS_SIM_REQUESTS": str(where / "sent.json")}
        code = block.code.replace(EXAMPLE_TRACE_ID, self.failed_trace_id)
        if block.kind == PYTHON:
            snippet = where / "snippet.py"
            snippet.write_text("\n" * block.line + code)  # tracebacks give the page's line numbers
            (where / "bootstrap.py").write_text(BOOTSTRAP)
            command = [sys.executable, str(where / "bootstrap.py"), str(snippet)]
        else:
            command = ["bash", "-e", "-o", "pipefail", "-c", code]
        done = subprocess.run(command, cwd=where / "work", env=env, capture_output=True, text=True, timeout=TIMEOUT)
        sent_file = where / "sent.json"
        sent = json.loads(sent_file.read_text()) if sent_file.exists() else []
        return Result(done.returncode, done.stdout, done.stderr, where / "home", sent)


def _shims(folder: Path) -> None:
    """`gateway-otel` and `python` as a user who installed the package would have them."""
    folder.mkdir()
    for name, target in (("gateway-otel", f'"{sys.executable}" -m gateway_otel'), ("python", f'"{sys.executable}"')):
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        shim.chmod(0o755)
    shutil.copy(folder / "python", folder / "python3")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: Any) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("docs")
    _shims(root / "bin")
    home = root / "home"
    home.mkdir()
    env = environment(
        os.environ,
        PATH=f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT / "src"),
        HOME=str(home),
        OPENROUTER_API_KEY="sk-or-v1-docs-dummy-0000",
        ARIZE_SPACE_ID="docs-space",
        ARIZE_API_KEY="docs-arize-key",
    )
    demo = subprocess.run(["gateway-otel", "demo"], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert demo.returncode == 0, demo.stderr
    demo_store = home / ".local" / "share" / "gateway-otel" / "demo.db"
    with Telemetry("local", path=demo_store) as telemetry:
        rows = telemetry.traces.query(time_window="1h", limit=None).spans
    failed = [row.trace_id for row in rows if row.status == "error"]
    assert len(failed) == 1, rows
    openobserve, phoenix = FakeOpenObserve(), PhoenixStandIn([phoenix_span(row) for row in rows])
    broadcast = ManagementServer(MANAGEMENT_KEY, [destination(1, "arize", {"modelId": "checkout", "apiKey": "ak-1"})])
    with serve(broadcast) as management:
        env.update(
            OPENOBSERVE_URL=openobserve.url,
            OPENOBSERVE_AUTH_TOKEN="Basic ZG9jc0BleGFtcGxlLmNvbTpEb2NzLTEyMzQ=",
            PHOENIX_COLLECTOR_ENDPOINT=phoenix.url,
            OPENROUTER_MANAGEMENT_KEY=MANAGEMENT_KEY,
            GATEWAY_OTEL_OPENROUTER_URL=management.url,
        )
        try:
            yield Sandbox(root, home, env, failed[0])
        finally:
            openobserve.close()
            phoenix.close()


@pytest.fixture(scope="module")
def results(sandbox: Sandbox) -> dict[str, Result]:
    """Every runnable block, four at a time (each is mostly a Python start-up)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {b.id: pool.submit(sandbox.run, b, f"run-{n}") for n, b in enumerate(RUNNABLE)}
        return {block_id: future.result() for block_id, future in futures.items()}


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_the_block_runs(block: Block, results: dict[str, Result]) -> None:
    result = results[block.id]
    assert (result.returncode, "Traceback" in result.stderr) == (0, False), result.stdout + result.stderr


def test_every_block_runs_or_says_why_not() -> None:
    unknown = [block.id for block in BLOCKS if block.kind is None and block.not_run is None]
    assert unknown == []  # a block with another info string must say why it is not run
    not_run = [(b.page, b.code.splitlines()[0].split("  #")[0].strip()) for b in BLOCKS if b.not_run is not None]
    assert not_run == NOT_RUN
    assert len(RUNNABLE) >= 15  # the reader found the blocks


def test_the_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text()
    first = BLOCKS[0]
    assert (first.page, first.line < 10) == ("README.md", True)
    commands = [line.split("  #")[0].strip() for line in first.code.splitlines()]
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/gateway-otel demo",
        "bash tests/run.sh",
    ]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == "exec bash tests/run.sh"
    assert len(readme.splitlines()) <= 250


def _readme_block(starting: str) -> Block:
    (block,) = [b for b in BLOCKS if b.page == "README.md" and b.code.startswith(starting)]
    return block


def test_the_span_the_readme_shows_is_the_one_its_snippet_records(results: dict[str, Result]) -> None:
    result = results[_readme_block("import gateway_otel\n").id]
    shown = _readme_block("chat openai/gpt-4o-mini").code.splitlines()
    with Telemetry("local", path=result.home / ".local/share/gateway-otel/telemetry.db") as telemetry:
        (span,) = telemetry.traces.query(time_window="1h").spans
    assert shown[0] == f"{span.name}  (CLIENT, status {span.status.upper()})"
    pairs = [re.split(r"\s{2,}", line, maxsplit=1) for line in shown[1:]]
    recorded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in span.attributes.items()}
    assert {key: value for key, value in pairs} == {key: recorded.get(key) for key, _ in pairs}
    assert f"the span has {len(span.attributes)} attributes" in (ROOT / "README.md").read_text()


def test_the_readme_query_runs_on_a_store_without_errors(sandbox: Sandbox, results: dict[str, Result]) -> None:
    """`errors[0]` of an empty result raised IndexError before: the application's own store has no failed call."""
    app_home = results[_readme_block("import gateway_otel\n").id].home
    with Telemetry("local", path=app_home / ".local/share/gateway-otel/telemetry.db") as telemetry:
        assert telemetry.traces.query(status="error", time_window="24h").spans == ()
    result = sandbox.run(_readme_block("from gateway_otel import Telemetry\n"), "query-no-errors", home=app_home)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "1.3e-05\n"  # the one call's cost; no error line


def test_the_trace_join_snippet_sends_what_its_comment_says(results: dict[str, Result]) -> None:
    (block,) = [b for b in RUNNABLE if b.page == "docs/openrouter.md" and "trace_metadata(" in b.code]
    (body,) = results[block.id].sent
    trace = body["trace"]
    ids = (trace.pop("trace_id"), trace.pop("parent_span_id"))
    assert [len(i) for i in ids] == [32, 16] and all(re.fullmatch(r"[0-9a-f]+", i) for i in ids)
    assert trace == {"trace_name": "checkout", "span_name": "pricing", "generation_name": "quote"}
    assert (body["session_id"], body["user"]) == ("s-1", "u-42")


def test_relative_links_point_at_files_and_headings_that_exist() -> None:
    broken = []
    for page in PAGES:
        for target in links(page):
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert broken == []


def test_each_docs_page_says_what_it_covers_links_back_and_is_linked() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in PAGES[1:]:
        opening = page.read_text().split("\n\n")[:2]
        assert opening[0].startswith("# ") and "](../README.md)" in opening[1], page.name
        assert f"](docs/{page.name})" in readme, page.name


def test_the_options_table_names_every_setting_and_its_values() -> None:
    readme = (ROOT / "README.md").read_text()
    read = set()
    for source in (ROOT / "src").rglob("*.py"):
        read.update(re.findall(r"GATEWAY_OTEL_[A-Z_]*[A-Z]\b", source.read_text()))
    assert sorted(v for v in read if f"`{v}`" not in readme and not v.endswith("_LOCAL")) == []
    rows = {row.split(" | ")[1]: row for row in readme.splitlines() if row.startswith("| ") and " | " in row}
    assert re.findall(r"`([a-z_]+)`", rows["`GATEWAY_OTEL_GATEWAY`"].split(" | ")[2]) == list(GATEWAY_NAMES)
    assert re.findall(r"`([a-z]+)`", rows["`GATEWAY_OTEL_DESTINATIONS`"].split(" | ")[2])[:6] == list(DESTINATION_NAMES)
    protocols = rows["`OTEL_EXPORTER_OTLP_PROTOCOL`, `OPENOBSERVE_PROTOCOL`, `ARIZE_PROTOCOL`"].split(" | ")[2]
    assert re.findall(r"`([a-z/]+)` or `([a-z/]+)`", protocols) == [PROTOCOLS]


def test_python_m_gateway_otel_is_the_command() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "gateway_otel", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: gateway-otel ")
    commands = "simulator,destinations,openrouter,doctor,traces,trace,metrics,stats,logs,report,demo"
    assert "{" + commands + "}" in done.stdout
