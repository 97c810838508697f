"""A real LiteLLM proxy for end-to-end tests: its own virtual environment, mock models, loopback only.

LiteLLM needs openai < 3 and ~600 MB of dependencies, so it lives in its own venv in the shared server cache
(`server_env`; installed once, reused while `LITELLM_REQUIREMENTS` is unchanged). The proxy runs as a child process
group on 127.0.0.1 with a free port, no database, a random master key and these offline models:

- `mock-gpt`: a chat model answering `MOCK_REPLY` (streamed in 3-character chunks);
- `mock-embed`: an embeddings model answering a 4-dimensional vector;
- `mock-429`: a chat model that answers 429 (`litellm.RateLimitError`);
- `mock-timeout`: a chat model that never answers in time (LiteLLM's `mock_timeout`, a 408 after its timeout).

Its own `otel` callback exports its `litellm_request` spans over OTLP/HTTP to `otel_endpoint` (the tests' Phoenix),
in the Phoenix project `otel_project`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from server_env import ensure_env, free_port, tail

LITELLM_REQUIREMENTS = (
    "litellm[proxy]==1.106.2",
    # For its `otel` callback (OTLP over HTTP, protobuf).
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
)
MOCK_REPLY = "Hello from the mock"
EMBEDDING = [0.1, 0.2, 0.3, 0.4]


def _mock(name: str, model: str, **params: object) -> dict[str, object]:
    """A model entry of the proxy config; mock models call no provider, so the key is never used."""
    return {"model_name": name, "litellm_params": {"model": model, "api_key": "unused", **params}}


MODELS = [
    _mock("mock-gpt", "openai/gpt-4o-mini", mock_response=MOCK_REPLY),
    _mock("mock-embed", "openai/text-embedding-3-small", mock_response=EMBEDDING),
    _mock("mock-429", "openai/gpt-4o-mini", mock_response="litellm.RateLimitError"),
    _mock("mock-timeout", "openai/gpt-4o-mini", mock_timeout=True, timeout=1),
]

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ensure_litellm_env() -> Path:
    return ensure_env("litellm", LITELLM_REQUIREMENTS, "bin/litellm")


class LiteLLMProxy:
    """`with LiteLLMProxy(venv, ...) as proxy:` — an OpenAI-compatible gateway at `proxy.base_url` (key `proxy.key`)."""

    def __init__(
        self, venv: Path, *, otel_endpoint: str | None = None, otel_project: str = "litellm-proxy", timeout: float = 90
    ) -> None:
        self.venv = Path(venv)
        self.otel_endpoint = otel_endpoint
        self.otel_project = otel_project
        self.startup_timeout = timeout
        self.key = "sk-e2e-" + secrets.token_hex(16)  # LiteLLM refuses well-known keys such as sk-1234
        self.port = 0
        self.base_url = ""
        self.startup_seconds = 0.0
        self._workdir: Path | None = None
        self._log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LiteLLMProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _environment(self) -> dict[str, str]:
        # Nothing of the test process's own telemetry settings leaks into the proxy.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GATEWAY_OTEL_", "PHOENIX_"))}
        env.update(
            {
                "LITELLM_MASTER_KEY": self.key,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # the bundled price list: no download at start-up
                "LITELLM_TELEMETRY": "False",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        if self.otel_endpoint:
            env.update(
                {
                    "OTEL_EXPORTER": "otlp_http",
                    "OTEL_ENDPOINT": self.otel_endpoint,
                    "OTEL_SERVICE_NAME": "litellm-proxy",
                    "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={self.otel_project}",
                }
            )
        return env

    def start(self) -> None:
        """Write the config, start `litellm`, wait until `/health/liveliness` answers; on failure raise with its log."""
        self._workdir = Path(tempfile.mkdtemp(prefix="litellm-"))
        self._log_path = self._workdir / "proxy.log"
        config: dict[str, object] = {"model_list": MODELS}
        if self.otel_endpoint:
            config["litellm_settings"] = {"callbacks": ["otel"]}
        config_path = self._workdir / "config.yaml"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        command = [str(self.venv / "bin" / "litellm"), "--config", str(config_path)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--telemetry", "False"]
        started = time.monotonic()
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self._workdir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _wait_ready(self, started: float) -> None:
        assert self._process is not None
        url = f"http://127.0.0.1:{self.port}/health/liveliness"
        while True:
            code = self._process.poll()
            if code is not None:
                raise RuntimeError(f"the LiteLLM proxy exited with code {code} before it was ready\n{self.log_tail()}")
            with contextlib.suppress(OSError), _opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
            if time.monotonic() > started + self.startup_timeout:
                raise RuntimeError(
                    f"the LiteLLM proxy did not answer {url} within {self.startup_timeout:.0f} s\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    _signal_group(process, signal.SIGKILL)
                    process.wait(timeout=10)
            finally:
                _signal_group(process, signal.SIGKILL)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def log_tail(self, limit: int = 4000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no LiteLLM log)"
        return "--- LiteLLM proxy log tail ---\n" + tail(self._log_path.read_text(errors="replace"), limit)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
