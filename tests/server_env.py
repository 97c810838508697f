"""Virtual environments for the real servers the tests start (Phoenix, the LiteLLM proxy, the rotel collector).

They are big (Phoenix ~850 MB, LiteLLM ~750 MB) and slow to install, so they live outside the checkout, in a cache
shared by every clone on the machine: `$GATEWAY_OTEL_TEST_SERVERS`, else `$XDG_CACHE_HOME/gateway-otel/test-servers`
(`~/.cache/...`). Each venv's directory is named after the server and a hash of its requirements and interpreter,
so a clean clone (CI) reuses what an earlier run installed while the requirements are unchanged, and a change of
requirements installs a fresh venv beside the old one. A marker file is written only after a successful install,
and a file lock serialises concurrent test runs. A failed install (no registry, a broken package) raises with pip's
output tail: the tests that need the server then error, loudly, instead of skipping.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SKIP_E2E_ENV = "GATEWAY_OTEL_SKIP_E2E"
SERVERS_DIR_ENV = "GATEWAY_OTEL_TEST_SERVERS"
_MARKER = ".gateway-otel-requirement"
_INSTALL_TIMEOUT = 1800.0
_TAIL_CHARS = 4000


def tail(text: str, limit: int = _TAIL_CHARS) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _run_logged(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=_INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
        raise RuntimeError(f"{what} timed out after {_INSTALL_TIMEOUT:.0f} s: {cmd}\n{tail(output)}") from exc
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {cmd}\n{tail(done.stdout)}")


def find_in_env(venv: Path, pattern: str) -> Path | None:
    """The first file matching `pattern` (a glob relative to the venv), or None."""
    return next(iter(sorted(venv.glob(pattern))), None)


def servers_dir() -> Path:
    """Where the server venvs live: `$GATEWAY_OTEL_TEST_SERVERS`, else the user's cache directory."""
    configured = os.environ.get(SERVERS_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "gateway-otel" / "test-servers"


def _wanted(requirements: Sequence[str]) -> str:
    interpreter = f"python {sys.version_info.major}.{sys.version_info.minor} {sys.base_prefix}"
    return "\n".join([*requirements, interpreter, ""])


def venv_path(name: str, requirements: Sequence[str], base: Path | None = None) -> Path:
    """`<base>/<name>-<hash of the requirements and interpreter>`; `base` defaults to `servers_dir()`."""
    digest = hashlib.sha256(_wanted(requirements).encode()).hexdigest()[:12]
    return (base or servers_dir()) / f"{name}-{digest}"


def ensure_env(name: str, requirements: Sequence[str], executable: str, base: Path | None = None) -> Path:
    """Create (or reuse) the venv of server `name` with `requirements` installed; return its directory.

    `executable` (a glob relative to the venv: `bin/litellm`, `lib/python*/site-packages/rotel/rotel-agent`) must
    match a file after the install, or the install counts as failed. `base` defaults to `servers_dir()`.
    """
    wanted = _wanted(requirements)
    venv = venv_path(name, requirements, base)
    python = venv / "bin" / "python"
    marker = venv / _MARKER
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            installed = python.exists() and find_in_env(venv, executable) is not None and marker.exists()
            if installed and marker.read_text() == wanted:
                return venv
            if not python.exists():
                _run_logged([sys.executable, "-m", "venv", str(venv)], f"creating the {name} virtual environment")
            marker.unlink(missing_ok=True)
            pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
            _run_logged([*pip, *requirements], f"pip install {' '.join(requirements)}")
            if find_in_env(venv, executable) is None:
                raise RuntimeError(f"pip installed {requirements} but {venv}/{executable} does not exist")
            marker.write_text(wanted)
            return venv
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> bool:
    """True once something accepts connections on 127.0.0.1:`port`; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        time.sleep(0.1)
    return False
