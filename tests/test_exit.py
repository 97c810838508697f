"""A dead or wrong backend: the process still exits within the shutdown timeout, and says why in one line.

A real application in a subprocess — `instrument()` with nothing but `OTEL_EXPORTER_OTLP_*` set, three calls through
the gateway simulator, the last one failing (so spans, metrics and a failure log record are all waiting at exit) —
against a closed port, a server that accepts and never answers, an HTTP server answering 401, and an HTTP server
spoken to in gRPC. Before one deadline covered the whole shutdown, the same application took 7.5 to 20 s to exit.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import gateway_otel
from conftest import instrument_into, make_client
from gateway_otel.destinations import _configure, _shutdown
from otlp_receiver import OtlpReceiver

TEARDOWN = 1.5
"""Seconds allowed past the shutdown timeout for Python's own teardown after our exit handler returns: measured
0.17 to 0.65 s here (the most with a gRPC call in flight); the rest is room for a loaded machine."""

APP = textwrap.dedent(
    """
    import os, time
    import openai, gateway_otel
    from gateway_otel.simulator import http_client

    gateway_otel.instrument()
    client = openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="sk-or-test-key-000",
                           http_client=http_client(), max_retries=0)
    if os.environ.get("APP_GO"):  # wait until the test is ready (it locks the store first)
        print("READY", flush=True)
        while not os.path.exists(os.environ["APP_GO"]):
            time.sleep(0.01)
    for model in ("openai/gpt-4o-mini", "openai/gpt-4o-mini", "sim/error-500"):
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError:
            pass
    print("LAST", flush=True)
    """
)
TAIL = " The application is unaffected; further failures are counted, not logged."


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; `paths` are the HTTP request lines' paths seen."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.paths: list[str] = []
        self._connections: list[socket.socket] = []
        self._seen = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        try:
            first = connection.recv(4096).split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        except OSError:
            return
        with self._seen:
            self.paths.append(first[1] if len(first) > 1 else "")
            self._seen.notify_all()

    def wait_for_paths(self, count: int, timeout: float = 10) -> list[str]:
        with self._seen:
            self._seen.wait_for(lambda: len(self.paths) >= count, timeout)
            return sorted(self.paths)

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._socket.close()
        for connection in self._connections:
            connection.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The test process's environment without any telemetry setting of its own, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_OTEL_", "OTEL_", "OPENOBSERVE_"))}
    return {**env, "HOME": str(tmp_path / "home"), "PYTHONWARNINGS": "ignore", **variables}


def run_app(tmp_path: Path, env: dict[str, str], before_calls: Any = None) -> tuple[float, str]:
    """Run the application; seconds from its last line to its exit, and its stderr."""
    script = tmp_path / "app.py"
    script.write_text(APP)
    with (tmp_path / "stderr.txt").open("w+") as stderr:
        app = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        assert app.stdout is not None
        last = None
        for line in app.stdout:
            if line.startswith("READY") and before_calls is not None:
                before_calls()
            if line.startswith("LAST"):
                last = time.monotonic()
        app.wait(timeout=60)
        exited = time.monotonic()
        stderr.seek(0)
        err = stderr.read()
    assert app.returncode == 0 and last is not None, err
    return exited - last, err


def _warning(endpoint: str, cause: str) -> str:
    """The one line a failing destination says: a pattern, since which signal fails first is a race."""
    signal = r"(/v1/(traces|metrics|logs))?" if "/v1/" not in endpoint else ""
    return rf"gateway_otel: destination 'otlp' cannot export to {re.escape(endpoint)}{signal}: {cause}\.?{TAIL}\n"


def test_a_refused_endpoint_exits_within_the_default_shutdown_timeout(tmp_path: Path) -> None:
    """The issue's case: `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1`, default settings (5 s)."""
    took, err = run_app(tmp_path, _env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1"))
    refused = r"connection refused: nothing listens at 127\.0\.0\.1:1; is the backend running\?"
    assert took < 5 + TEARDOWN, f"exited {took:.2f} s after its last line"
    assert re.fullmatch(_warning("http://127.0.0.1:1", refused), err), err


def _grpc_to_http(port: int) -> str:
    mismatch = r"protocol mismatch: a gRPC exporter talking to an HTTP server at 127\.0\.0\.1:{0} \(set "
    mismatch += r"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, or use the gRPC port, usually 4317\)"
    # An SDK before 1.3x says only UNAVAILABLE; one TCP connection then tells what the endpoint is.
    accepts = r"127\.0\.0\.1:{0} accepts connections but does not answer gRPC: an HTTP server\? \(set "
    accepts += (
        r"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, or use the gRPC port, usually 4317; https:// if it needs TLS\)"
    )
    return f"({mismatch}|{accepts})".format(port)


@pytest.mark.parametrize("fault", ["refused", "hang", "http-401", "grpc-to-http"])
def test_a_dead_or_wrong_endpoint_exits_within_the_shutdown_timeout(tmp_path: Path, fault: str) -> None:
    port = _closed_port()
    with SilentServer() as silent, OtlpReceiver(status=401) as unauthorized, OtlpReceiver() as http_server:
        url = {
            "refused": f"http://127.0.0.1:{port}",
            "hang": f"http://127.0.0.1:{silent.port}",
            "http-401": unauthorized.url,
            "grpc-to-http": http_server.url,
        }[fault]
        protocol = "grpc" if fault == "grpc-to-http" else "http/protobuf"
        env = _env(
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=url,
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            GATEWAY_OTEL_SHUTDOWN_TIMEOUT="2",
        )
        took, err = run_app(tmp_path, env)
    where = re.escape(url.split("//")[1])
    cause = {
        "refused": rf"connection refused: nothing listens at {where}; is the backend running\?",
        "hang": rf"timed out after (1\.\d|2) s( \(the shutdown timeout\))?: no answer from {where}",
        "http-401": r"authentication failed \(HTTP 401 Unauthorized\): check OTEL_EXPORTER_OTLP_HEADERS",
        "grpc-to-http": _grpc_to_http(int(url.rsplit(":", 1)[1])),
    }[fault]
    assert took < 2 + TEARDOWN, f"exited {took:.2f} s after its last line"
    assert re.fullmatch(_warning(url, cause), err), err  # one line, nothing raw from grpc, urllib3 or the SDK


def test_a_locked_local_store_does_not_hold_the_exit(tmp_path: Path) -> None:
    """Another process holds the store's lock for longer than the busy timeout (10 s): the exit does not wait."""
    path = tmp_path / "telemetry.db"
    go = tmp_path / "go"
    env = _env(
        tmp_path,
        GATEWAY_OTEL_DESTINATIONS="local",
        GATEWAY_OTEL_LOCAL_PATH=str(path),
        GATEWAY_OTEL_SHUTDOWN_TIMEOUT="2",
        APP_GO=str(go),
    )
    lock = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def hold_the_lock() -> None:
        lock.execute("BEGIN EXCLUSIVE")
        go.touch()

    try:
        took, err = run_app(tmp_path, env, before_calls=hold_the_lock)
    finally:
        lock.close()
    cause = r"timed out after 2 s \(the shutdown timeout\): the store stayed busy \(locked by another process\?\)"
    expected = rf"gateway_otel: destination 'local' cannot export to {re.escape(str(path))}: {cause}\.{TAIL}\n"
    assert took < 2 + TEARDOWN, f"exited {took:.2f} s after its last line"
    assert re.fullmatch(expected, err), err


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_providers_shutdown_keeps_one_deadline_for_every_signal(
    sim: Any, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    """Spans, metrics and a failure log record all stuck on a backend that never answers: 2 s in all, not 2 s each
    (before: tracer 2, meter 2, logger 5.4 s)."""
    caplog.set_level(logging.WARNING)
    with SilentServer() as silent:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{silent.port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        }
        providers = gateway_otel.configure("otlp", environ=env, set_global=False, shutdown_timeout=2)
        instrument_into(providers)
        try:
            client = make_client(sim)
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            with pytest.raises(Exception, match="500"):
                client.chat.completions.create(model="sim/error-500", messages=[{"role": "user", "content": "x"}])
        finally:
            gateway_otel.uninstrument()
        started = time.monotonic()
        providers.shutdown()
        took = time.monotonic() - started
        if protocol == "http/protobuf":  # every signal was on its way when the deadline came
            assert set(silent.wait_for_paths(3)) == {"/v1/logs", "/v1/metrics", "/v1/traces"}
    assert took < 2.5, f"shutdown took {took:.2f} s"  # 0.5 s: threads joining, the warning said
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    [message] = messages
    assert re.fullmatch(
        rf"gateway_otel: destination 'otlp' cannot export to http://127\.0\.0\.1:{silent.port}(/v1/\w+)?: "
        rf"timed out after (1\.\d|2) s( \(the shutdown timeout\))?: no answer from 127\.0\.0\.1:{silent.port}\.{TAIL}",
        message,
    ), message
    started = time.monotonic()
    providers.shutdown()  # a second time: nothing left to wait for
    assert time.monotonic() - started < 0.1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no endpoint set for traces, metrics and logs, so they go to the default http://localhost:4318"),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "no endpoint set for traces, metrics and logs, so they go to the default http://localhost:4317",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"},
            "no endpoint set for metrics and logs, so they go to the default http://localhost:4318",
        ),
    ],
)
def test_otlp_without_an_endpoint_says_which_default_it_uses(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, env: dict[str, str], message: str
) -> None:
    monkeypatch.setattr(_configure, "_announced_otlp", False)
    caplog.set_level(logging.WARNING, logger="gateway_otel")
    for _ in range(2):  # once per process
        gateway_otel.configure("otlp", environ=env, set_global=False).shutdown()
    assert [r.getMessage() for r in caplog.records] == [
        f"gateway_otel: destination 'otlp': {message} (set OTEL_EXPORTER_OTLP_ENDPOINT to choose)"
    ]


def test_an_endpoint_set_is_not_announced(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_configure, "_announced_otlp", False)
    caplog.set_level(logging.WARNING, logger="gateway_otel")
    with OtlpReceiver() as receiver:
        gateway_otel.configure(
            "otlp", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}, set_global=False
        ).shutdown()
    assert caplog.records == []


def test_the_shutdown_timeout_comes_from_the_argument_else_the_environment_else_5_s() -> None:
    env = {"GATEWAY_OTEL_DESTINATIONS": "console", "GATEWAY_OTEL_SHUTDOWN_TIMEOUT": "2.5"}
    for options, seconds in (({}, 2.5), ({"shutdown_timeout": 1}, 1.0), ({"environ": {}}, 5.0)):
        providers = gateway_otel.configure(**{"environ": env, **options}, set_global=False)
        providers.shutdown()
        assert providers.shutdown_timeout == seconds
    with pytest.raises(gateway_otel.ConfigurationError) as caught:
        gateway_otel.configure("console", environ={"GATEWAY_OTEL_SHUTDOWN_TIMEOUT": "soon"}, set_global=False)
    assert str(caught.value) == (
        "GATEWAY_OTEL_SHUTDOWN_TIMEOUT='soon' is not valid: expected a number of seconds greater than 0"
    )


def test_shutting_down_the_spans_alone_leaves_the_metrics_running() -> None:
    """The deadline of one processor's own shutdown (the application's `tracer_provider.shutdown()`) is not the
    destination's: its metrics still export afterwards."""
    with OtlpReceiver() as receiver:
        providers = gateway_otel.configure(
            "otlp", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}, set_global=False, shutdown_timeout=0.5
        )
        providers.tracer_provider.shutdown()
        time.sleep(0.6)  # past that processor's deadline
        providers.meter_provider.get_meter("m").create_counter("c").add(1)
        providers.meter_provider.force_flush()
        sent = [path for path, _, _ in receiver.requests]
        providers.shutdown()
    assert sent == ["/v1/metrics"]


def test_a_part_that_gave_up_at_the_deadline_is_said_by_the_exit_itself() -> None:
    """A destination's spans stop at the deadline (their task returns False, its thread ends): the exit says why,
    on its own thread. Said from the task's daemon thread, the line could be cut off by the interpreter's exit (the
    locked-store test saw no warning once)."""
    said: list[tuple[str, bool]] = []

    class Destination:
        name = "local"

        def shutdown_tasks(self, deadline: Any) -> list[Any]:
            return [("local spans", lambda: False), ("local metrics", lambda: None), ("local logs", lambda: True)]

        def gave_up(self, deadline: Any) -> None:
            said.append((self.name, threading.current_thread() is threading.main_thread()))

    class Finished(Destination):
        name = "otlp"

        def shutdown_tasks(self, deadline: Any) -> list[Any]:
            return [("otlp spans", lambda: True), ("otlp metrics", lambda: 1 / 0)]  # a failure is not lateness

    _shutdown.shut_down([Destination(), Finished()], [], 5.0)
    assert said == [("local", True)]
