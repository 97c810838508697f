"""The local store keeps up with a busy application: a burst of instrumented calls as fast as the client goes, with
no destination configured (the default store), is stored whole after the application's normal exit — from one
process, and from four writing the same file at once. Real processes, the real openai client over the simulator's
in-process transport. The store's path is the same under every openai major, so these run once, under openai 3
(about a minute on 2 busy cores)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import OPENAI_MAJOR

pytestmark = pytest.mark.skipif(OPENAI_MAJOR != 3, reason="the store's write path does not depend on the client")

APP = """
import os, sys, time, openai, gateway_otel
from gateway_otel.simulator import GatewaySimulator, http_client
calls, go = int(sys.argv[1]), sys.argv[2]
gateway_otel.instrument()  # nothing configured: the default destination, the local store
client = openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="sk-or-test",
                       http_client=http_client(GatewaySimulator()))
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
prompt = [{"role": "user", "content": "In one sentence: why do LLM calls need tracing?"}]
for _ in range(calls):
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=prompt, max_tokens=80)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    """No destination of any kind configured; the default store's path in `tmp_path`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_OTEL_", "OTEL_", "OPENOBSERVE_", "PHOENIX_", "ARIZE_"))
    }
    return {**env, "HOME": str(tmp_path / "home"), "GATEWAY_OTEL_LOCAL_PATH": str(tmp_path / "telemetry.db")}


def _burst(tmp_path: Path, processes: int, calls: int) -> tuple[int, int]:
    """(spans stored, distinct span ids) after `processes` applications made `calls` calls each, all at once."""
    go = tmp_path / "go"
    apps = [
        subprocess.Popen(
            [sys.executable, "-c", APP, str(calls), str(go)],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        assert [app.stdout.readline() for app in apps] == ["ready\n"] * processes  # type: ignore[union-attr]
    finally:
        go.touch()  # also releases the others when one failed to start
    outputs = [app.communicate(timeout=600) for app in apps]
    assert [app.returncode for app in apps] == [0] * processes, [err for _, err in outputs]
    for _, err in outputs:
        assert "queue" not in err and "cannot be written" not in err, err  # no span dropped, no batch refused
    conn = sqlite3.connect(tmp_path / "telemetry.db")
    try:
        return conn.execute("SELECT count(*), count(DISTINCT trace_id || span_id) FROM spans").fetchone()
    finally:
        conn.close()


def test_a_burst_of_10000_calls_is_stored_whole(tmp_path: Path) -> None:
    assert _burst(tmp_path, 1, 10_000) == (10_000, 10_000)


def test_four_processes_of_5000_calls_each_at_once_are_stored_whole(tmp_path: Path) -> None:
    assert _burst(tmp_path, 4, 5_000) == (20_000, 20_000)
