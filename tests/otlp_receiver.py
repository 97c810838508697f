"""A local OTLP/HTTP receiver for tests: records what exporters send, or misbehaves on request (500, hang)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class OtlpReceiver:
    """`with OtlpReceiver(status=200) as r:` — `r.traces_url`, `r.bodies`, `r.requests` (path, headers, body).

    `status` is the answer to every request; `hang=True` holds each request until the receiver stops.
    """

    def __init__(self, *, status: int = 200, hang: bool = False) -> None:
        self.status = status
        self.hang = hang
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.hang:
                    receiver._release.wait(30)
                self.send_response(receiver.status)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.traces_url = f"{self.url}/v1/traces"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def bodies(self) -> list[bytes]:
        return [body for _, _, body in self.requests]

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def decode_spans(body: bytes) -> list[dict[str, Any]]:
    """Spans of an OTLP/HTTP protobuf body: name, attributes and resource attributes as plain dicts."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                attrs: dict[str, Any] = {}
                for kv in span.attributes:
                    which = kv.value.WhichOneof("value")
                    attrs[kv.key] = (
                        getattr(kv.value, which)
                        if which != "array_value"
                        else [v.string_value for v in kv.value.array_value.values]
                    )
                spans.append(
                    {
                        "name": span.name,
                        "attributes": attrs,
                        "resource": resource,
                        "trace_id": span.trace_id.hex(),
                        "start_ns": span.start_time_unix_nano,
                    }
                )
    return spans
