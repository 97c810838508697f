"""A real Phoenix (Arize) server for tests: its own virtual environment, a start/stop harness, a span reader.

Phoenix is a heavy install (~850 MB) with dependencies that clash with the package's test environments, so it lives
in its own venv in the shared server cache (`server_env`), created on first use and reused afterwards. The server
runs as a child process group bound to 127.0.0.1, with a throw-away working directory (its SQLite database), and
is read back through its REST API.

Use the session fixture from a test module with `from phoenix_server import phoenix  # noqa: F401`. It skips only
when `GATEWAY_OTEL_SKIP_PHOENIX=1`; any other failure to install or start Phoenix is an error, never a silent skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server_env import ensure_env, free_port, tail

PHOENIX_REQUIREMENT = "arize-phoenix==20.26.1"
SKIP_ENV = "GATEWAY_OTEL_SKIP_PHOENIX"
_TAIL_CHARS = 4000

# Loopback only: never route a request to the local server through a proxy configured for the registries.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# `phoenix serve`, except that its gRPC receiver binds 127.0.0.1: Phoenix hard-codes `[::]:<port>` whatever
# PHOENIX_HOST says, and tests must not open a port on every interface. Run with the Phoenix venv's python.
_LAUNCHER = """
import sys
import grpc.aio

_make_server = grpc.aio.server

def _loopback_server(*args, **kwargs):
    server = _make_server(*args, **kwargs)
    add_port = server.add_insecure_port
    server.add_insecure_port = lambda address: add_port(address.replace("[::]:", "127.0.0.1:", 1))
    return server

grpc.aio.server = _loopback_server
from phoenix.server.main import main
sys.argv[0] = "phoenix"
sys.exit(main())
"""


def ensure_phoenix_env(requirement: str = PHOENIX_REQUIREMENT) -> Path:
    """The Phoenix venv (installed on first use, then reused from the shared server cache; see `server_env`)."""
    return ensure_env("phoenix", [requirement], "bin/phoenix")


class PhoenixServer:
    """`with PhoenixServer(venv) as px:` — a running Phoenix at `px.url`; OTLP/HTTP (protobuf) at `px.traces_endpoint`.

    The process runs in its own process group so that stopping it also stops any worker it spawned.
    """

    def __init__(self, venv: Path, *, startup_timeout: float = 90.0, extra_env: dict[str, str] | None = None) -> None:
        self.venv = Path(venv)
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.port = 0
        self.grpc_port = 0
        self.url = ""
        self.traces_endpoint = ""
        self.startup_seconds = 0.0
        self._workdir: Path | None = None
        self._log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def __enter__(self) -> PhoenixServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start `phoenix serve` and wait for `/healthz`; on death or timeout, stop it and raise with its log tail."""
        executable = self.venv / "bin" / "phoenix"
        if not executable.exists():
            raise RuntimeError(f"no Phoenix executable at {executable}; call ensure_phoenix_env() first")
        self._workdir = Path(tempfile.mkdtemp(prefix="phoenix-"))
        self._log_path = self._workdir / "server.log"
        self.port, self.grpc_port = free_port(), free_port()
        while self.grpc_port == self.port:
            self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.traces_endpoint = f"{self.url}/v1/traces"
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": str(self._workdir),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            # Without this Phoenix tries a download at start-up and can hang on an offline machine.
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
            **self.extra_env,
        }
        started = time.monotonic()
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(
                [str(self.venv / "bin" / "python"), "-c", _LAUNCHER, "serve"],
                cwd=self._workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_healthy(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _wait_healthy(self, started: float) -> None:
        deadline = started + self.startup_timeout
        assert self._process is not None
        while True:
            code = self._process.poll()
            if code is not None:
                raise RuntimeError(f"Phoenix exited with code {code} before it was ready\n{self.log_tail()}")
            with contextlib.suppress(OSError), _opener.open(f"{self.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                seconds = f"{self.startup_timeout:.0f} s"
                raise RuntimeError(f"Phoenix did not answer GET /healthz with 200 within {seconds}\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        """Terminate the process group, kill it after 10 s, and remove the working directory."""
        process, self._process = self._process, None
        if process is not None:
            try:
                self._signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._signal_group(process, signal.SIGKILL)
                    process.wait(timeout=10)
            finally:
                # Workers that outlived the leader still belong to its group.
                self._signal_group(process, signal.SIGKILL)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def log_tail(self, limit: int = _TAIL_CHARS) -> str:
        """The end of the server's combined stdout/stderr, for failure messages."""
        if self._log_path is None or not self._log_path.exists():
            return "(no Phoenix log)"
        return "--- Phoenix log tail ---\n" + tail(self._log_path.read_text(errors="replace"), limit)

    # --- reading spans back ----------------------------------------------------------------------------------------

    def _get_json(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any] | None:
        """GET a JSON document; None on 404 (a project Phoenix has not created yet, because no span reached it)."""
        query = urllib.parse.urlencode(params)
        url = f"{self.url}{path}" + (f"?{query}" if query else "")
        try:
            with _opener.open(url, timeout=10) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            body = exc.read().decode(errors="replace")
            raise RuntimeError(f"GET {url} -> {exc.code}: {tail(body, 1000)}") from exc

    def spans(self, project: str, **filters: Any) -> list[dict[str, Any]]:
        """Every span of `project` that matches `filters`, following `next_cursor` pages.

        Filters are the query parameters of `GET /v1/projects/{project}/spans` (`trace_id`, `span_id`, `parent_id`,
        `name`, `span_kind`, `status_code`, `attribute`, `start_time`, `end_time`, `limit`...); a list or tuple
        value is sent as a repeated parameter. A project that does not exist yet has no spans.
        """
        params: list[tuple[str, str]] = []
        for key, value in filters.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            params.extend((key, str(item)) for item in values)
        path = f"/v1/projects/{urllib.parse.quote(project, safe='')}/spans"
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self._get_json(path, params + ([("cursor", cursor)] if cursor else []))
            if page is None:
                return out
            out.extend(page.get("data") or [])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def wait_for_spans(self, project: str, count: int, timeout: float = 30.0, **filters: Any) -> list[dict[str, Any]]:
        """Poll until at least `count` matching spans are readable (Phoenix stores them ~1 s after export)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.spans(project, **filters)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                names = [span.get("name") for span in found]
                raise AssertionError(
                    f"expected at least {count} span(s) in Phoenix project {project!r} (filters {filters}) within "
                    f"{timeout:.0f} s, found {len(found)}: {names}\n{self.log_tail(1500)}"
                )
            time.sleep(0.2)


@pytest.fixture(scope="session")
def phoenix() -> Iterator[PhoenixServer]:
    """One real Phoenix server for the whole session; skipped only when `GATEWAY_OTEL_SKIP_PHOENIX=1`."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: real Phoenix server tests disabled")
    venv = ensure_phoenix_env()
    with PhoenixServer(venv) as server:
        yield server
