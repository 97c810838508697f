"""Out-of-range input gets a clear error naming it, never a traceback: URL settings that cannot be parsed, huge
windows and limits on the command line, a damaged store cell, a backend that pages without end."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import gateway_otel
from gateway_otel import ConfigurationError, cli
from gateway_otel.query import QueryError
from gateway_otel.query._model import SpanQuery


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPENOBSERVE_URL", "http://[::1"),
        ("PHOENIX_COLLECTOR_ENDPOINT", "http://[::1"),
        ("ARIZE_COLLECTOR_ENDPOINT", "http://[::1"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:99999"),
        ("OPENOBSERVE_URL", "ftp://user:hunter2-password@host"),
        ("PHOENIX_COLLECTOR_ENDPOINT", "http://user:hunter2-password@[::1/x?token=hunter2-token"),
    ],
)
def test_a_url_setting_that_cannot_be_used_fails_at_set_up_naming_it(variable: str, value: str) -> None:
    preset = {"OPENOBSERVE_URL": "openobserve", "PHOENIX_COLLECTOR_ENDPOINT": "phoenix",
              "ARIZE_COLLECTOR_ENDPOINT": "arize", "OTEL_EXPORTER_OTLP_ENDPOINT": "otlp"}[variable]  # fmt: skip
    env = {variable: value, "OPENOBSERVE_AUTH_TOKEN": "Basic x", "ARIZE_API_KEY": "k", "ARIZE_SPACE_ID": "s"}
    with pytest.raises(ConfigurationError) as caught:
        gateway_otel.configure(preset, environ=env, set_global=False)
    message = str(caught.value)
    assert message.startswith(f"{variable}=") and "is not valid: expected an http:// or https:// URL" in message
    assert "hunter2" not in message


def test_a_path_too_long_for_the_file_system_is_a_clear_error(tmp_path: Path) -> None:
    env = {"GATEWAY_OTEL_LOCAL_PATH": str(tmp_path / ("x" * 5000))}
    with pytest.raises(ConfigurationError, match=r"^GATEWAY_OTEL_LOCAL_PATH=.* is not valid"):
        gateway_otel.configure("local", environ=env, set_global=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["traces", "--since", "200000w"], "--since='200000w' is not valid: expected at most 100 years"),
        (["stats", "--window", "200000w"], "--window='200000w' is not valid: expected at most 100 years"),
        (["traces", "--limit", "100000000000000000000"], "--limit=100000000000000000000 is not valid"),
        (["logs", "--limit", "0"], "--limit=0 is not valid: expected a whole number from 1 to 1,000,000,000"),
    ],
)
def test_huge_windows_and_limits_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main([*argv, "--path", str(tmp_path / "none.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gateway-otel: {message}") and err.count("\n") == 1


def test_a_damaged_attributes_cell_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    gateway_otel.store.StoreWriter(gateway_otel.store.StoreConfig(path, None, None)).close()
    import io

    from gateway_otel.cli import _demo

    _demo.run_demo(path=path, environ={}, out=io.StringIO())
    conn = sqlite3.connect(path)
    conn.execute("UPDATE spans SET attributes = '{not json', events = 'nope' WHERE rowid = 1")
    conn.commit()
    conn.close()
    with gateway_otel.Telemetry(path=path) as telemetry:
        spans = telemetry.traces.query(limit=100).spans
    assert len(spans) == 11 and sum(1 for s in spans if s.attributes == {} and s.events == ()) == 1


class _RepeatingCursor(BaseHTTPRequestHandler):
    """A Phoenix that answers every page with no spans and the same `next_cursor`."""

    pages = 0

    def do_GET(self) -> None:
        type(self).pages += 1
        body = json.dumps({"data": [], "next_cursor": "c-1"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def repeating_phoenix() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RepeatingCursor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_phoenix_that_repeats_its_cursor_is_not_paged_without_end(repeating_phoenix: str) -> None:
    from gateway_otel.query._phoenix import PhoenixBackend

    _RepeatingCursor.pages = 0
    backend = PhoenixBackend.from_env({"PHOENIX_COLLECTOR_ENDPOINT": repeating_phoenix})
    now = datetime.now(timezone.utc)
    with pytest.raises(QueryError, match=r"^Phoenix repeated a page cursor \(c-1\): stopped paging"):
        backend.spans(SpanQuery(start=now - timedelta(hours=1), end=now, limit=None))
    assert _RepeatingCursor.pages == 2


def _client_of(answer: Any) -> Any:
    import openai

    from gateway_otel.simulator import GatewaySimulator, SimulatedResponse, http_client

    class Gateway(GatewaySimulator):
        def handle(self, method: str, path: str, headers: Any, body: bytes) -> SimulatedResponse:
            return answer()

    return openai.OpenAI(
        base_url="https://openrouter.ai/api/v1", api_key="sk-or-v1-x", max_retries=0, http_client=http_client(Gateway())
    )


def test_a_200_with_an_html_page_is_a_failed_call_not_an_ok_one(telemetry: Any) -> None:
    from gateway_otel.simulator import SimulatedResponse

    page = b"<html><body>502 Bad Gateway</body></html>"
    client = _client_of(lambda: SimulatedResponse(200, {"content-type": "text/html"}, body=page))
    returned = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert returned == page.decode()  # the caller gets exactly what the SDK gives, as without instrumentation
    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert (span.status.status_code.name, attrs["error.type"]) == ("ERROR", "invalid_response")
    assert attrs["gateway.error.message"] == f"not JSON: {page.decode()}"


# A chunk the openai stream helper cannot apply (a choice index past its list): it raises IndexError to the caller.
_BAD_CHUNK = (
    b'data: {"id":"g","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":1,"delta":{"content":"x"}}]}\n\n'
)


def test_the_callers_error_inside_a_stream_helper_is_recorded_on_the_span(telemetry: Any) -> None:
    from gateway_otel.simulator import SimulatedResponse

    client = _client_of(
        lambda: SimulatedResponse(200, {"content-type": "text/event-stream"}, chunks=[_BAD_CHUNK, b"data: [DONE]\n\n"])
    )
    with pytest.raises(IndexError), client.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for _ in stream:
            pass
    span = telemetry.span()
    attrs = dict(span.attributes or {})
    assert (span.status.status_code.name, attrs["error.type"], attrs["gateway.stream.outcome"]) == (
        "ERROR", "IndexError", "error",
    )  # fmt: skip


def test_a_stream_closed_without_an_error_in_flight_stays_closed(telemetry: Any, sim: Any) -> None:
    from conftest import make_client

    stream = make_client(sim).chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    try:
        raise ValueError("handled by the caller, unrelated to the stream")
    except ValueError:
        pass
    next(iter(stream))
    stream.close()
    attrs = dict(telemetry.span().attributes or {})
    assert attrs["gateway.stream.outcome"] == "closed" and "error.type" not in attrs


@pytest.mark.parametrize("by_anext", [False, True], ids=["loop", "anext"])
def test_an_async_stream_whose_task_is_cancelled_ends_as_cancelled(telemetry: Any, by_anext: bool) -> None:
    """The reader's task is cancelled while it awaits the next chunk: the span ends at once, as `cancelled`."""
    import asyncio

    import openai

    from gateway_otel.simulator._transport import httpx_module

    httpx = httpx_module()
    first = (
        b'data: {"id":"g","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
    )

    async def body() -> Any:
        yield first
        await asyncio.Event().wait()  # the gateway goes quiet
        yield b""

    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())
    )
    client = openai.AsyncOpenAI(
        base_url="https://openrouter.ai/api/v1", api_key="sk-or-v1-x", max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(transport=transport),
    )  # fmt: skip

    async def main() -> None:
        got_one = asyncio.Event()

        async def read() -> None:
            stream = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                          stream=True)  # fmt: skip
            if by_anext:
                while True:
                    await stream.__anext__()
                    got_one.set()
            async for _ in stream:
                got_one.set()

        task = asyncio.create_task(read())
        await got_one.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    attrs = dict(telemetry.span().attributes or {})
    assert (attrs["gateway.stream.outcome"], attrs["gateway.stream.chunks"]) == ("cancelled", 1)


def test_cache_read_and_cache_write_counts_each_land_in_their_own_attribute(telemetry: Any, sim: Any) -> None:
    """A long prompt to an Anthropic model: OpenRouter reports both a cache read (half the prompt) and a cache write
    (a quarter) — different numbers, so a swap shows."""
    from conftest import make_client

    reply = make_client(sim).chat.completions.create(
        model="anthropic/claude-3.5-haiku", messages=[{"role": "user", "content": "word " * 200}]
    )
    details = reply.usage.prompt_tokens_details.model_dump()
    read, write = details["cached_tokens"], details["cache_write_tokens"]
    assert 0 < write < read  # the simulator's answer: the premise of this test
    attrs = dict(telemetry.span().attributes or {})
    assert (attrs["gen_ai.usage.cache_read.input_tokens"], attrs["gen_ai.usage.cache_write.input_tokens"]) == (
        read, write,
    )  # fmt: skip
    openinference = "llm.token_count.prompt_details.cache_read", "llm.token_count.prompt_details.cache_write"
    assert (attrs[openinference[0]], attrs[openinference[1]]) == (read, write)


@pytest.mark.parametrize("cost", [True, False, "0.5", None, [1]])
def test_a_cost_that_is_not_a_number_is_no_cost(cost: Any) -> None:
    from gateway_otel.instrumentation._response import map_usage

    usage = map_usage({"prompt_tokens": 1, "completion_tokens": 1, "cost": cost})
    assert usage is not None and usage.cost is None
