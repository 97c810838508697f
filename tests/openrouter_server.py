"""A local stand-in for OpenRouter's management API (observability destinations), on 127.0.0.1.

It serves the documented shapes (protocols.md §4, SDK 1.3.84): offset/limit pagination with `total_count`,
`{"data": {...}}` for one destination, OpenRouter's error body `{"error": {"code", "message"}}`, bearer auth, and
records every request so a test can assert what the SDK really asked for.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/v1/observability/destinations"
WORKSPACE = "550e8400-e29b-41d4-a716-446655440000"


def destination(number: int, kind: str, config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A destination exactly as the API returns it: every field of `ObservabilityDestination`."""
    return {
        "api_key_hashes": None,
        "broadcast_generation_cost": True,
        "broadcast_generation_cost_allocation": False,
        "broadcast_generation_identity": False,
        "broadcast_generation_request_context": False,
        "config": config,
        "created_at": "2026-08-24T10:30:00Z",
        "enabled": True,
        "filter_rules": None,
        "id": f"99999999-aaaa-bbbb-cccc-{number:012d}",
        "name": f"{kind} {number}",
        "privacy_mode": False,
        "regions": ["global"],
        "sampling_rate": 1,
        "type": kind,
        "updated_at": "2026-08-24T15:45:00Z",
        "workspace_id": WORKSPACE,
        **fields,
    }


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    authorization: str | None


@dataclass
class ManagementServer:
    key: str
    destinations: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None
    """Answer every request with this status (OpenRouter's error body; 5xx also `retry-after-ms: 20`)."""
    plain_error_body: bool = False
    """Send the error as text/plain instead of JSON (the SDK's `OpenRouterDefaultError` path)."""
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        self.requests.append(Recorded(path, query, authorization))
        if authorization != f"Bearer {self.key}":
            return 401, {"error": {"code": 401, "message": "Missing Authentication header"}}
        if self.fail_with is not None:
            return self.fail_with, {"error": {"code": self.fail_with, "message": "Internal Server Error"}}
        if path == PREFIX:
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 50))
            page = self.destinations[offset : offset + limit]
            return 200, {"data": page, "total_count": len(self.destinations)}
        if path.startswith(PREFIX + "/"):
            wanted = path.rsplit("/", 1)[-1]
            for item in self.destinations:
                if item.get("id") == wanted:
                    return 200, {"data": item}
        return 404, {"error": {"code": 404, "message": "Resource not found"}}


@contextmanager
def serve(server: ManagementServer) -> Iterator[ManagementServer]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            status, body = server.answer(parts.path, query, self.headers.get("authorization"))
            plain = status >= 400 and server.plain_error_body
            data = b"upstream exploded" if plain else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain" if plain else "application/json")
            self.send_header("content-length", str(len(data)))
            if status >= 500:
                self.send_header("retry-after-ms", "20")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/api/v1"
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
