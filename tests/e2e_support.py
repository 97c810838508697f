"""End-to-end support: a real LiteLLM proxy (started once per session, next to the real Phoenix of
`phoenix_server`), and the application (`e2e_app.py`) run as a subprocess configured only by environment variables.

A test module uses `from e2e_support import litellm_proxy, phoenix  # noqa: F401` and `pytestmark = E2E`; the suite
is skipped as a whole when `GATEWAY_OTEL_SKIP_E2E=1` or `GATEWAY_OTEL_SKIP_PHOENIX=1` (tests/run.sh sets both for
the openai 1.x and 2.x runs: the end-to-end suite runs once, on openai 3.x). Anything else that keeps a server from
installing or starting is an error, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from litellm_proxy import LiteLLMProxy, ensure_litellm_env
from phoenix_server import SKIP_ENV as SKIP_PHOENIX_ENV
from phoenix_server import PhoenixServer
from server_env import SKIP_E2E_ENV, tail

APP = Path(__file__).resolve().parent / "e2e_app.py"
LITELLM_PROJECT = "litellm-proxy"
"""The Phoenix project LiteLLM's own `otel` callback exports its spans to."""
_OWN_PREFIXES = ("OTEL_", "GATEWAY_OTEL_", "PHOENIX_", "OPENAI_", "ARIZE_", "OPENOBSERVE_")


_SKIP_REASON = next((f"{name}=1" for name in (SKIP_E2E_ENV, SKIP_PHOENIX_ENV) if os.environ.get(name) == "1"), None)
E2E = pytest.mark.skipif(_SKIP_REASON is not None, reason=f"{_SKIP_REASON}: end-to-end suite disabled")
"""The mark of every end-to-end test module (`pytestmark = E2E`)."""


@pytest.fixture(scope="session")
def litellm_proxy(phoenix: PhoenixServer) -> Iterator[LiteLLMProxy]:
    """One LiteLLM proxy for the session, its own spans exported to the session's Phoenix."""
    venv = ensure_litellm_env()
    with LiteLLMProxy(venv, otel_endpoint=phoenix.traces_endpoint, otel_project=LITELLM_PROJECT) as proxy:
        yield proxy


def new_project(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def run_app(env: dict[str, str], scenarios: list[str], timeout: float = 180) -> dict[str, dict[str, Any]]:
    """Run `e2e_app.py` with only `env` as its telemetry configuration; return what it saw, by scenario.

    The parent's own OTel, gateway-otel, Phoenix and OpenAI variables are removed first, and the app runs in an
    empty directory so that no `.env` file is read: the configuration is exactly `env`.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    with tempfile.TemporaryDirectory(prefix="e2e-app-") as workdir:
        done = subprocess.run(
            [sys.executable, str(APP), *scenarios],
            cwd=workdir,
            env={**base, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    assert done.returncode == 0, f"app.py exited with {done.returncode}\n{tail(done.stdout)}\n{tail(done.stderr)}"
    seen = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            seen[record.pop("scenario")] = record
    assert list(seen) == scenarios, done.stdout + done.stderr
    return seen
