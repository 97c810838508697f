"""A real local HTTP server around the simulator, for scripts and clients that cannot take a custom transport.

Stdlib only: a `ThreadingHTTPServer` in a daemon thread, HTTP/1.1 with keep-alive, SSE written and flushed chunk by
chunk with `Transfer-Encoding: chunked`. It binds to loopback unless told otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import socket
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from ._app import SCENARIO_HEADER, SCENARIO_MODEL_PREFIX, SCENARIOS, GatewaySimulator, SimulatedResponse

TIMEOUT_SCENARIO_SECONDS = 30.0  # how long `timeout` keeps a request hanging (the client's timeout fires first)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: GatewaySimulator) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.simulator = simulator
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets or drops its connection (an idle keep-alive socket closed at exit) is not a server
        error: no traceback on stderr, where `gateway-otel demo` would show it. Anything else is still printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        answer = self.server.simulator.handle(self.command, self.path, dict(self.headers.items()), body)
        try:
            self._write(answer)
        except OSError:  # the client went away first (or gave up waiting)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def _write(self, answer: SimulatedResponse) -> None:
        if answer.fault == "timeout":
            self.server.stopping.wait(TIMEOUT_SCENARIO_SECONDS)
            self._abort()
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.chunks is None:
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in answer.chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        if answer.fault == "disconnect":
            self._abort()
            return
        self.wfile.write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Drop the connection mid-answer, the way a crashed upstream would (the chunked body never terminates)."""
        self.close_connection = True
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: request lines are not worth a log line in tests (and headers are never logged)."""


class RunningSimulator:
    """A simulator served on a local port; stop it with `stop()` or use it as a context manager."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host: str = str(host)
        self.port: int = int(port)
        self.simulator: GatewaySimulator = server.simulator
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url: str = f"http://{shown}:{self.port}/api/v1"
        """The base URL to give an OpenAI client."""

    def stop(self) -> None:
        """Stop serving, wake hanging `timeout` requests and close the socket; safe to call twice."""
        if self._server.stopping.is_set():
            return
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningSimulator(url={self.url!r})"


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = "127.0.0.1", port: int = 0, sim: GatewaySimulator | None = None, *, allow_remote: bool = False
) -> RunningSimulator:
    """Serve `sim` (a new simulator by default) over HTTP in a daemon thread; port 0 picks a free port."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"refusing to serve the simulator on non-loopback host {host!r} (pass allow_remote=True)")
    server = _Server((host, port), sim if sim is not None else GatewaySimulator())
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="gateway-simulator", daemon=True)
    thread.start()
    return RunningSimulator(server, thread)


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m gateway_otel.simulator") -> int:
    """`python -m gateway_otel.simulator` (or `gateway-otel simulator`): serve in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the OpenRouter-compatible gateway simulator (a test and demo tool) on a local port.",
        epilog=f"Scenarios (model 'sim/<name>' or header {SCENARIO_HEADER}): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind, 0 for any free port (default: 8000)")
    parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback interface")
    args = parser.parse_args(argv)
    if not args.allow_remote and not is_loopback(args.host):
        parser.error(f"refusing non-loopback host {args.host!r}; pass --allow-remote to bind it anyway")
    try:
        running = serve(args.host, args.port, allow_remote=args.allow_remote)
    except (OSError, OverflowError) as error:  # port taken or out of range, unknown host: one line, no traceback
        print(f"{prog}: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    with running:
        print(f"Gateway simulator listening on {running.url}", flush=True)
        print(f"  OPENAI_BASE_URL={running.url} OPENAI_API_KEY=sk-or-simulated", flush=True)
        print(f"  scenarios: model '{SCENARIO_MODEL_PREFIX}<name>', names: {', '.join(SCENARIOS)}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0
