"""A real OpenTelemetry collector for end-to-end tests: `rotel` (a Rust collector shipped as a binary in its wheel).

It lives in the shared server cache (`server_env`; installed once, reused while `ROTEL_REQUIREMENTS` is unchanged)
and runs as a child process on 127.0.0.1: an OTLP receiver on HTTP and gRPC (free ports) forwarding traces over
OTLP/HTTP to a backend (the tests' Phoenix), the way a user who outgrows one machine puts a collector between the
application and the backend. Metrics and logs, which Phoenix does not take, are dropped by the collector
(`blackhole`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from server_env import ensure_env, find_in_env, free_port, tail, wait_for_port

ROTEL_REQUIREMENTS = ("rotel==0.0.1a15",)
_BINARY = "lib/python*/site-packages/rotel/rotel-agent"


def ensure_rotel_env() -> Path:
    return ensure_env("rotel", ROTEL_REQUIREMENTS, _BINARY)


class RotelCollector:
    """`with RotelCollector(venv, backend_url) as rotel:` — OTLP at `rotel.http_endpoint` / `rotel.grpc_endpoint`."""

    def __init__(self, venv: Path, backend_url: str, *, startup_timeout: float = 30.0) -> None:
        binary = find_in_env(Path(venv), _BINARY)
        if binary is None:
            raise RuntimeError(f"no rotel-agent binary in {venv}; call ensure_rotel_env() first")
        self.binary = binary
        self.backend_url = backend_url
        self.startup_timeout = startup_timeout
        self.http_port = 0
        self.grpc_port = 0
        self.http_endpoint = ""
        self.grpc_endpoint = ""
        self._log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RotelCollector:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.http_port, self.grpc_port = free_port(), free_port()
        while self.grpc_port == self.http_port:
            self.grpc_port = free_port()
        self.http_endpoint = f"http://127.0.0.1:{self.http_port}"
        self.grpc_endpoint = f"http://127.0.0.1:{self.grpc_port}"
        command = [
            str(self.binary),
            "start",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--exporters",
            "backend:otlp,drop:blackhole",
            "--exporters-traces",
            "backend",
            "--exporters-metrics",
            "drop",
            "--exporters-logs",
            "drop",
        ]
        self._log_path = Path(tempfile.mkstemp(prefix="rotel-", suffix=".log")[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ROTEL_"))}
        # A named exporter's settings are only taken from the environment (ROTEL_EXPORTER_<NAME>_<SETTING>).
        env |= {"ROTEL_EXPORTER_BACKEND_ENDPOINT": self.backend_url, "ROTEL_EXPORTER_BACKEND_PROTOCOL": "http"}
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            started = time.monotonic()
            for port in (self.http_port, self.grpc_port):
                left = self.startup_timeout - (time.monotonic() - started)
                if self._process.poll() is not None or not wait_for_port(port, max(left, 0.1)):
                    raise RuntimeError(f"rotel did not listen on 127.0.0.1:{port}\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def log_tail(self, limit: int = 4000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no rotel log)"
        return "--- rotel log tail ---\n" + tail(self._log_path.read_text(errors="replace"), limit)
