"""Failed calls as OpenTelemetry log records: exact records, in the failed span's trace, only for failures,
content only when captured, stripped for a destination in privacy mode, and stored by the `local` destination."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogs
except ImportError:  # SDK < 1.39
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogs  # type: ignore[attr-defined,no-redef]

import gateway_otel
from conftest import instrument_into, make_client, run
from gateway_otel.simulator import GatewaySimulator
from gateway_otel.store import attributes_of

PROMPT = [{"role": "user", "content": "Why is the sky blue?"}]
INPUT = '[{"role":"user","parts":[{"type":"text","content":"Why is the sky blue?"}]}]'


@pytest.fixture
def logs(make_telemetry: Any) -> Any:
    def make(**options: Any) -> tuple[Any, Any]:
        exporter = InMemoryLogs()
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        return make_telemetry(logger_provider=provider, **options), exporter

    return make


def records(exporter: Any) -> list[Any]:
    return [getattr(item, "log_record", item) for item in exporter.get_finished_logs()]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_failed_call_is_one_error_record_in_its_span(logs: Any, sim: GatewaySimulator, asynchronous: bool) -> None:
    telemetry, exporter = logs()
    client = make_client(sim, asynchronous=asynchronous)
    with pytest.raises(openai.RateLimitError) as raised:
        run(client.chat.completions.create(model="sim/error-429", messages=PROMPT))
    span = telemetry.span()
    [record] = records(exporter)
    assert (record.trace_id, record.span_id) == (span.context.trace_id, span.context.span_id)
    assert (record.severity_text, record.severity_number.value) == ("ERROR", 17)
    assert record.body == "chat sim/error-429 failed: 429: Provider returned error"
    assert dict(record.attributes) == {
        "event.name": "gateway.call.failed",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "sim/error-429",
        "gen_ai.provider.name": "openrouter",
        "gateway.name": "openrouter",
        "gateway.upstream.provider": "DeepInfra",
        "server.address": "openrouter.ai",
        "error.type": "429",
        "gateway.error.code": "429",
        "gateway.error.message": "Provider returned error",
        "gen_ai.input.messages": INPUT,
        "exception.message": str(raised.value),  # its wording differs between openai majors
        "exception.type": "openai.RateLimitError",
    }
    assert record.attributes["gen_ai.input.messages"] == span.attributes["gen_ai.input.messages"]


def test_successful_calls_log_nothing(logs: Any, sim: GatewaySimulator) -> None:
    telemetry, exporter = logs()
    client = make_client(sim)
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=PROMPT)
    for _ in client.chat.completions.create(model="openai/gpt-4o-mini", messages=PROMPT, stream=True):
        pass
    run(make_client(sim, asynchronous=True).embeddings.create(model="openai/text-embedding-3-small", input="hi"))
    assert len(telemetry.spans()) == 3
    assert records(exporter) == []


def test_a_stream_that_fails_midway_logs_what_it_had(logs: Any, sim: GatewaySimulator) -> None:
    telemetry, exporter = logs()
    stream = make_client(sim).chat.completions.create(model="sim/stream-error", messages=PROMPT, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    span = telemetry.span()
    [record] = records(exporter)
    assert record.span_id == span.context.span_id
    assert record.body == "chat sim/stream-error failed: server_error: Provider disconnected unexpectedly (simulated)"
    attributes = dict(record.attributes)
    assert {k: attributes[k] for k in ("error.type", "gateway.stream.outcome", "exception.type")} == {
        "error.type": "server_error",
        "gateway.stream.outcome": "error",
        "exception.type": "openai.APIError",
    }
    assert attributes["gen_ai.output.messages"] == span.attributes["gen_ai.output.messages"]


def test_no_content_without_capture_and_no_secret_ever(logs: Any, sim: GatewaySimulator) -> None:
    _, exporter = logs(capture_content=False)
    client = make_client(sim)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="sim/error-401", messages=PROMPT)
    [record] = records(exporter)
    assert not {"gen_ai.input.messages", "gen_ai.output.messages"} & set(record.attributes)
    assert record.attributes["error.type"] == "401"
    assert "SENTINEL" not in json.dumps({**record.attributes, "body": record.body})


def test_without_a_logger_provider_nothing_breaks(make_telemetry: Any, sim: GatewaySimulator) -> None:
    telemetry = make_telemetry()  # the global logger provider: a no-op unless configure() set one
    with pytest.raises(openai.InternalServerError):
        make_client(sim).chat.completions.create(model="sim/error-500", messages=PROMPT)
    assert telemetry.span().status.status_code.name == "ERROR"


def _stored_logs(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM logs ORDER BY time_ns")]
    finally:
        conn.close()


@pytest.mark.parametrize("privacy", [False, True])
def test_local_destination_stores_the_records_in_their_trace(
    tmp_path: Path, sim: GatewaySimulator, privacy: bool
) -> None:
    path = tmp_path / "t.db"
    env = {"GATEWAY_OTEL_LOCAL_PATH": str(path), "GATEWAY_OTEL_LOCAL_PRIVACY_MODE": str(privacy).lower()}
    providers = gateway_otel.configure("local", environ=env, set_global=False)
    instrument_into(providers)
    try:
        client = make_client(sim)
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=PROMPT)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="sim/error-429", messages=PROMPT)
    finally:
        gateway_otel.uninstrument()
        providers.shutdown()
    [log] = _stored_logs(path)
    conn = sqlite3.connect(path)
    [(trace_id, span_id, status)] = conn.execute(
        "SELECT trace_id, span_id, status FROM spans WHERE model = ?", ("sim/error-429",)
    )
    conn.close()
    assert (log["trace_id"], log["span_id"], status) == (trace_id, span_id, "error")
    assert (log["severity"], log["severity_number"]) == ("error", 17)
    assert log["body"] == "chat sim/error-429 failed: 429: Provider returned error"
    attributes = attributes_of(log["attributes"])
    assert attributes["error.type"] == "429"
    assert ("gen_ai.input.messages" in attributes) is not privacy
