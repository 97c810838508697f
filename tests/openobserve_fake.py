"""A stand-in for OpenObserve's search API on 127.0.0.1, and OpenObserve's stored shape of an exported span.

OpenObserve cannot run here. `FakeOpenObserve` records every request (path, headers, JSON body) so tests can assert
the SQL, the microsecond time range and the Authorization header; it answers with queued search responses whose
`hits` are rows in the stored traces/logs stream shape (protocols.md §1.3). `stored_row` turns a real exported span
into such a row by OpenObserve's documented flattening.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenObserve:
    """A 127.0.0.1 HTTP server: records requests; answers each with the next queued (status, body), else no hits."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, Any]] = []
        self.release = threading.Event()
        self.hang = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if fake.hang:
                    fake.release.wait(10)
                    return  # the client gave up long ago; answering would only meet a closed socket
                status, answer = fake.answers.pop(0) if fake.answers else (200, {"hits": []})
                raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self, hits: list[dict[str, Any]], status: int = 200) -> None:
        self.answers.append((status, {"took": 3, "hits": hits, "total": len(hits), "from": 0, "size": len(hits)}))

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def stored_row(span: Any, service_name: str = "shop") -> dict[str, Any]:
    """An exported span as OpenObserve stores it in a traces stream (protocols.md §1.3)."""
    parent = span.parent
    row = {
        "_timestamp": span.start_time // 1000,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "span_status": span.status.status_code.name,
        "span_kind": str(span.kind.value),
        "operation_name": span.name,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "duration": (span.end_time - span.start_time) // 1000,
        "service_name": service_name,
        "events": json.dumps(
            [{"name": e.name, "_timestamp": e.timestamp, "attributes": dict(e.attributes)} for e in span.events]
        ),
        "flags": 1,
    }
    if parent is not None:
        row |= {
            "reference_parent_span_id": format(parent.span_id, "016x"),
            "reference_parent_trace_id": row["trace_id"],
            "reference_ref_type": "CHILD_OF",
        }
    for key, value in span.attributes.items():
        row[re.sub(r"[^a-z0-9_]", "_", key.lower())] = list(value) if isinstance(value, tuple) else value
    return row
