"""What tests/test_docs.py needs to run the documentation's code blocks: a Markdown reader, the environment a block
runs in (a fresh home, the simulator behind every openai client), and a Phoenix stand-in holding the demo's spans.

A fenced block runs unless its info string is `text` (output, not code) or the line before it says why not:
`<!-- not run: REASON -->`. Each block is self-contained and runs in its own copy of a home where `gateway-otel
demo` has run, so blocks neither see nor disturb each other.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
PYTHON, SHELL, OUTPUT = "python", "shell", "output"
KINDS = {"python": PYTHON, "bash": SHELL, "sh": SHELL, "text": OUTPUT}
EXAMPLE_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
"""The trace id the docs use in examples (W3C's sample); a block runs with the demo's failed trace in its place."""

_FENCE = re.compile(r"^```(\S*)\s*$")
_NOT_RUN = re.compile(r"^<!-- not run: (.+) -->$")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6}) (.+)$")

# Runs before a Python block: every openai client without an `http_client` of its own talks to one in-process
# simulator (except one pointed at a loopback server, which the block started itself); the requests it received
# are written to $DOCS_SIM_REQUESTS at exit, so a test can check what a block really sent.
BOOTSTRAP = """\
import atexit, json, os, runpy, sys
import openai
from gateway_otel import simulator

SIM = simulator.GatewaySimulator()


def route(cls, asynchronous):
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        loopback = str(kwargs.get("base_url") or "").startswith(("http://127.0.0.1", "http://localhost"))
        if not loopback:
            kwargs.setdefault("http_client", simulator.http_client(SIM, asynchronous=asynchronous))
        init(self, *args, **kwargs)

    cls.__init__ = __init__


route(openai.OpenAI, False)
route(openai.AsyncOpenAI, True)


@atexit.register
def record():
    with open(os.environ["DOCS_SIM_REQUESTS"], "w") as out:
        json.dump([request.body for request in SIM.requests], out)


runpy.run_path(sys.argv[1], run_name="__main__")
"""


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str  # relative to the repository's root
    line: int  # of the opening fence, 1-based
    info: str
    code: str
    not_run: str | None  # the reason the line before the fence gives

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str | None:
        return KINDS.get(self.info)

    @property
    def runs(self) -> bool:
        return self.not_run is None and self.kind in (PYTHON, SHELL)


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of `page`, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    start: int | None = None
    info = ""
    for number, line in enumerate(lines, 1):
        fence = _FENCE.match(line)
        if fence is None:
            continue
        if start is None:
            start, info = number, fence.group(1)
            continue
        before = lines[start - 2].strip() if start >= 2 else ""
        marker = _NOT_RUN.match(before)
        code = "\n".join(lines[start : number - 1]) + "\n"
        found.append(Block(str(page.relative_to(ROOT)), start, info, code, marker.group(1) if marker else None))
        start = None
    assert start is None, f"{page.name}: a fence opened on line {start} is never closed"
    return found


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters, digits, `-`, `_` and spaces kept),
    each space a hyphen."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, outside code blocks (a repeated heading gets -1, -2...)."""
    seen: dict[str, int] = {}
    inside = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            inside = not inside
            continue
        heading = None if inside else _HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
    return {base if n == 0 else f"{base}-{n}" for base, total in seen.items() for n in range(total)}


def links(page: Path) -> Iterator[str]:
    """The relative link targets of a page's prose (not inside code blocks)."""
    inside = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            for target in _LINK.findall(line):
                if not re.match(r"[a-z]+:", target):
                    yield unquote(target)


def environment(base: Mapping[str, str], **settings: str) -> dict[str, str]:
    """The process environment without any of our or our backends' variables (a fresh user's), plus `settings`."""
    prefixes = ("GATEWAY_OTEL_", "OTEL_", "OPENOBSERVE_", "PHOENIX_", "ARIZE_", "OPENROUTER_", "OPENAI_", "XDG_")
    env = {k: v for k, v in base.items() if not k.startswith(prefixes) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(settings)
    return env


def phoenix_span(row: Any) -> dict[str, Any]:
    """A query row as Phoenix's REST API returns the span (`GET /v1/projects/{project}/spans`)."""
    return {
        "context": {"trace_id": row.trace_id, "span_id": row.span_id},
        "parent_id": row.parent_span_id,
        "name": row.name,
        "start_time": row.start_time.isoformat(),
        "end_time": row.end_time.isoformat(),
        "status_code": row.status.upper(),
        "status_message": row.status_message or "",
        "attributes": dict(row.attributes),
        "events": [dict(event) for event in row.events],
    }


class PhoenixStandIn:
    """A 127.0.0.1 server answering Phoenix's span listing from a fixed list, filtered by trace id and status as
    Phoenix does on its side (one page, newest first)."""

    def __init__(self, spans: Sequence[dict[str, Any]]) -> None:
        held = list(spans)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                found = [
                    s
                    for s in held
                    if query.get("trace_id") in (None, s["context"]["trace_id"])
                    and query.get("status_code") in (None, s["status_code"])
                ]
                found = found[: int(query.get("limit", len(found)))]
                data = json.dumps({"data": found, "next_cursor": None}).encode()
                self.send_response(200 if parts.path.endswith("/spans") else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
