"""`gateway-otel demo`, end to end: the real command in a fresh process, with no keys and no network; and its
`--live` argument handling (the live run itself needs OpenRouter)."""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway_otel import cli
from gateway_otel.store import attributes_of

SIM_MODELS = ("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "deepseek/deepseek-r1")


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_OTEL_", "OTEL_", "OPENROUTER_", "OPENAI_", "HTTP_PROXY", "HTTPS_PROXY"))
    }
    return {**env, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")}


def test_demo_runs_the_workload_and_prints_stats_and_traces(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway_otel.cli", "demo"],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    path = tmp_path / "xdg" / "gateway-otel" / "demo.db"
    assert re.search(r"sending a sample workload to the gateway simulator at http://127\.0\.0\.1:\d+/api/v1", out)
    assert f"Stored in {path}\n" in out
    assert "no destination configured" not in done.stderr
    conn = sqlite3.connect(path)
    spans = conn.execute("SELECT model, status, input_tokens, ttft_ms, attributes FROM spans").fetchall()
    logs = conn.execute("SELECT severity, body, trace_id FROM logs").fetchall()
    failed_trace = conn.execute("SELECT trace_id FROM spans WHERE status = 'error'").fetchall()
    conn.close()
    # 3 sync + 3 async + 3 streamed + 1 tool call + 1 failing call
    assert len(spans) == 11
    assert sorted({m for m, *_ in spans}) == sorted(SIM_MODELS)
    assert [s for _, s, *_ in spans].count("error") == 1
    assert sum(ttft is not None for *_, ttft, _ in spans) == 3
    assert sum("gen_ai.tool.definitions" in attributes_of(attrs) for *_, attrs in spans) == 1
    # the reasoning model's thinking is a reasoning part of its answers (sync, async, streamed)
    outputs = [attributes_of(a).get("gen_ai.output.messages", "") for m, *_, a in spans if m == "deepseek/deepseek-r1"]
    assert sum('{"type":"reasoning"' in output for output in outputs) == 3
    assert "deepseek/deepseek-r1" in out and "with reasoning" in out
    assert [(severity, trace) for severity, _, trace in logs] == [("error", failed_trace[0][0])]
    # the stats table: one row per model and a total, with errors and tokens
    table = out.split("Per model (last hour)\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert table[0].split() == [
        "model",
        "calls",
        "errors",
        "input",
        "tok",
        "output",
        "tok",
        "cost",
        "p50",
        "ms",
        "p95",
        "ms",
        "p50",
        "ttft",
        "ms",
    ]
    rows = {line.split()[0]: line.split() for line in table[2:]}
    assert set(rows) == {*SIM_MODELS, "all"}
    assert rows["openai/gpt-4o-mini"][1:3] == ["5", "1"]  # sync, async, stream, tool, failing; one error
    assert rows["all"][1:3] == ["11", "1"]
    latest = out.split("Latest 10 traces (open one: gateway-otel trace ID)\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert latest[0].split() == ["time", "(UTC)", "trace", "root", "calls", "models", "status", "latency", "tokens",
                                 "cost"]  # fmt: skip
    assert len(latest) == 12
    # newest first: the failing call (root `chat`, one call, its error type, no tokens, no cost)
    assert latest[2].split()[-9:-4] + latest[2].split()[-2:] == ["chat", "1", "openai/gpt-4o-mini", "error", "429",
                                                                 "-", "-"]  # fmt: skip
    assert "failed as planned: RateLimitError" in out
    assert "Error log records (1)" in out


def test_demo_path_option_and_a_second_run_starts_fresh(tmp_path: Path) -> None:
    target = tmp_path / "mine.db"
    env = _clean_env(tmp_path)
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "gateway_otel.cli", "demo", "--path", str(target)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(target)
    assert conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 11
    conn.close()


def test_live_needs_a_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    assert cli.main(["demo", "--live"]) == 2
    captured = capsys.readouterr()
    assert "gateway-otel demo: --live needs OPENROUTER_API_KEY" in captured.out + captured.err


def test_live_uses_openrouter_free_models() -> None:
    from gateway_otel.cli import _demo

    workload = _demo.live_workload()
    assert all(m.endswith(":free") for m in workload.models)
    assert len(set(workload.models)) == 3
    assert workload.failing_headers == {}
    assert _demo.OPENROUTER_URL == "https://openrouter.ai/api/v1"
    with _demo._gateway(True, "sk-or-v1-x") as (url, key, chosen):
        assert (url, key, chosen) == ("https://openrouter.ai/api/v1", "sk-or-v1-x", workload)


def test_help_lists_demo(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    help_text = capsys.readouterr().out
    assert "--live" in help_text and "--path" in help_text


def _next_steps(out: str) -> tuple[list[str], str]:
    """The commands the demo prints to paste next (comments dropped), and its Python line."""
    block = out.split("Next, explore the demo's calls", 1)[1].split("\n", 1)[1]
    commands = [line.split("  # ")[0].strip() for line in block.splitlines() if line.startswith("  ")]
    python = next(line for line in block.splitlines() if line.startswith("In Python: "))
    return commands, python.removeprefix("In Python: ")


def _run(command: list[str], tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_the_commands_the_demo_prints_paste_as_they_are(tmp_path: Path) -> None:
    """In a fresh HOME, with no store of an application yet: the demo's closing lines are plain commands, each of
    which runs as printed and reads the demo's store, saying so in one line on stderr."""
    env = _clean_env(tmp_path)
    demo = _run([sys.executable, "-m", "gateway_otel.cli", "demo"], tmp_path, env)
    assert demo.returncode == 0, demo.stderr
    commands, python = _next_steps(demo.stdout)
    prefix = f"{sys.executable} -m gateway_otel"  # how this test ran it; a user's `gateway-otel` reads the same
    assert [c.removeprefix(prefix).split()[0] for c in commands] == ["stats", "traces", "trace", "metrics", "report"]
    assert all(c.startswith(prefix) and "--path" not in c for c in commands), commands
    demo_db = tmp_path / "xdg" / "gateway-otel" / "demo.db"
    stands_in = (
        f"gateway-otel: no store at {tmp_path / 'xdg' / 'gateway-otel' / 'telemetry.db'} yet; "
        f"reading the demo's, {demo_db}\n"
    )
    outputs = {}
    for command in commands:
        done = _run(shlex.split(command), tmp_path, env)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stderr == stands_in, command
        outputs[command.removeprefix(prefix).split()[0]] = done.stdout
    assert all(model in outputs["stats"] for model in SIM_MODELS)
    assert "429" in outputs["trace"] or "RateLimitError" in outputs["trace"]
    assert (tmp_path / "gateway-otel-report.html").stat().st_size > 1000
    assert python == "import gateway_otel; gateway_otel.Telemetry().traces.query()"
    done = _run([sys.executable, "-c", python], tmp_path, env)  # as printed: it fails when no store is found
    assert done.returncode == 0, done.stderr


def test_with_an_application_store_the_demo_prints_its_path(tmp_path: Path) -> None:
    """Once an application stores in the default file, plain commands read that file: the demo's lines say
    `--path`, and run as printed."""
    env = _clean_env(tmp_path)
    default = tmp_path / "xdg" / "gateway-otel" / "telemetry.db"
    default.parent.mkdir(parents=True)
    seed = _run([sys.executable, "-m", "gateway_otel.cli", "demo", "--path", str(default)], tmp_path, env)
    assert seed.returncode == 0, seed.stderr
    demo = _run([sys.executable, "-m", "gateway_otel.cli", "demo"], tmp_path, env)
    commands, python = _next_steps(demo.stdout)
    demo_db = tmp_path / "xdg" / "gateway-otel" / "demo.db"
    assert all(c.endswith(f"--path {demo_db}") for c in commands), commands
    assert python == f"import gateway_otel; gateway_otel.Telemetry(path={str(demo_db)!r}).traces.query()"
    for command in commands:  # every query command takes --path
        done = _run(shlex.split(command), tmp_path, env)
        assert done.returncode == 0 and done.stderr == "", (command, done.stderr)
    stats = _run([*shlex.split(commands[0]), "--json"], tmp_path, env)
    assert json.loads(stats.stdout)["total"]["calls"] == 11


def test_the_command_name_printed_to_paste(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from gateway_otel.cli._render import command_name

    script = tmp_path / ".venv" / "bin" / "gateway-otel"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert command_name(str(script)) == ".venv/bin/gateway-otel"  # not on PATH: the path they typed
    monkeypatch.setenv("PATH", str(script.parent))
    assert command_name(str(script)) == "gateway-otel"
    assert command_name("/somewhere/site-packages/gateway_otel/__main__.py").endswith(" -m gateway_otel")
    assert command_name("/usr/bin/pytest") == "gateway-otel"


def test_a_demo_whose_calls_cannot_reach_the_gateway_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With nothing listening (e.g. loopback down in a sandbox), every call fails: exit 1, and the failing call's
    connection error is not passed off as its planned 429."""
    import contextlib
    import io
    import socket

    from gateway_otel.cli import _demo

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{probe.getsockname()[1]}/api/v1"

    @contextlib.contextmanager
    def unreachable(live: bool, api_key: str | None) -> Any:
        yield closed_url, "sk-or-demo-not-a-real-key", _demo.sim_workload()

    monkeypatch.setattr(_demo, "_gateway", unreachable)
    out = io.StringIO()
    assert _demo.run_demo(path=tmp_path / "demo.db", environ={}, out=out) == 1
    text = out.getvalue()
    assert text.count("failed: APIConnectionError") == 11
    assert "as planned" not in text
    assert capsys.readouterr().err == (
        "gateway-otel demo: 11 of the workload's calls did not go as planned (see above); "
        "their telemetry is stored all the same\n"
    )


def test_every_trace_id_the_demo_and_the_commands_print_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's latest traces and error log, `traces` and `logs`: each id they print opens with `trace`."""
    import io

    from gateway_otel.cli import _demo

    target = tmp_path / "demo.db"
    out = io.StringIO()
    assert _demo.run_demo(path=target, environ={}, out=out) == 0
    monkeypatch.setenv("GATEWAY_OTEL_LOCAL_PATH", str(target))
    monkeypatch.setenv("GATEWAY_OTEL_DOTENV", "/nonexistent/.env")
    printed = {"demo": out.getvalue()}
    for command in ("traces", "logs"):
        assert cli.main([command]) == 0
        printed[command] = capsys.readouterr().out
    ids = {name: re.findall(r"\b[0-9a-f]{12,32}\b", text) for name, text in printed.items()}
    # the demo: 10 latest traces, the error record and the failed call in its closing commands
    assert {name: len(found) for name, found in ids.items()} == {"demo": 12, "traces": 11, "logs": 1}
    for shown in {i for found in ids.values() for i in found}:
        assert cli.main(["trace", shown]) == 0, capsys.readouterr().err
        opened = capsys.readouterr().out.splitlines()[0]
        assert re.fullmatch(f"trace {shown}[0-9a-f]*", opened) and len(opened) == len("trace ") + 32
