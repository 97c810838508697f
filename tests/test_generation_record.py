"""The parts of the OpenRouter generation record that need no worker: the simulator's endpoint, the record's
attributes, the option's setting, the local store's row update (whichever of the span and the record is written
first), and a destination's sampling of log records."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.trace import SpanContext, TraceFlags

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogs
except ImportError:  # SDK < 1.39
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogs  # type: ignore[attr-defined,no-redef]

from conftest import API_KEY, OPENROUTER_URL, chat_span
from gateway_otel import ConfigurationError, Settings
from gateway_otel.destinations._processor import OnceLogProcessor
from gateway_otel.instrumentation._logs import GenerationLog
from gateway_otel.openrouter._generation import generation_attributes
from gateway_otel.simulator import GatewaySimulator, transport
from gateway_otel.simulator._transport import httpx_module
from gateway_otel.store import StoreConfig, StoreWriter, attributes_of

G = "gateway.openrouter.generation."
DOCUMENTED = {  # /work/shared/reference/protocols.md, "Generation stats" (the SDK's GenerationResponseData)
    "id", "request_id", "session_id", "model", "provider_name", "created_at", "data_region", "api_type", "streamed",
    "cancelled", "finish_reason", "native_finish_reason", "tokens_prompt", "tokens_completion", "native_tokens_prompt",
    "native_tokens_completion", "native_tokens_reasoning", "native_tokens_cached", "native_tokens_completion_images",
    "total_cost", "usage", "upstream_inference_cost", "cache_discount", "is_byok", "latency", "generation_time",
    "moderation_latency", "origin", "http_referer", "app_id", "external_user", "user_agent", "router", "preset_id",
    "provider_responses", "upstream_id", "service_tier", "num_media_prompt", "num_media_completion",
    "num_input_audio_prompt", "num_search_results", "num_fetches", "web_search_engine", "workspace_id",
    "response_cache_source_id",
}  # fmt: skip


def reader(sim: GatewaySimulator) -> Any:
    """An httpx client answered in-process by `sim`, for the generation endpoint."""
    return httpx_module().Client(transport=transport(sim), base_url=OPENROUTER_URL)


def call(sim: GatewaySimulator, model: str = "anthropic/claude-sonnet-4", **extra: Any) -> Any:
    client = openai.OpenAI(base_url=OPENROUTER_URL, api_key=API_KEY, http_client=reader(sim), max_retries=0)
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "word " * 80}], **extra)


def test_the_simulator_serves_the_record_only_after_its_delay() -> None:
    waiting, ready = GatewaySimulator(generation_delay=600), GatewaySimulator(generation_delay=0)
    for sim in (waiting, ready):
        call(sim)
    auth = {"Authorization": f"Bearer {API_KEY}"}
    not_yet = reader(waiting).get("/generation", params={"id": "gen-sim-000001"}, headers=auth)
    assert (not_yet.status_code, not_yet.json()) == (404, {"error": {"code": 404, "message": "Generation not found"}})
    answer = reader(ready).get("/generation", params={"id": "gen-sim-000001"}, headers=auth)
    data = answer.json()["data"]
    assert (answer.status_code, set(data)) == (200, DOCUMENTED)
    assert {k: data[k] for k in ("id", "model", "provider_name", "total_cost", "usage", "finish_reason")} == {
        "id": "gen-sim-000001",
        "model": "anthropic/claude-sonnet-4",
        "provider_name": "Anthropic",
        "total_cost": 8.775e-05,  # the call's own usage.cost
        "usage": 8.775e-05,
        "finish_reason": "stop",
    }
    assert (data["native_finish_reason"], data["native_tokens_cached"], data["cache_discount"]) == (
        "end_turn",
        42,  # half the 84-token prompt read from the cache, a quarter (21) written: 42 × 0.75 − 21 × 0.25 tokens saved
        2.625e-05,
    )
    assert [(a["provider_name"], a["status"]) for a in data["provider_responses"]] == [("Anthropic", 200)]


def test_the_generation_endpoint_answers_as_openrouter_does() -> None:
    sim = GatewaySimulator(generation_delay=0)
    call(sim, model="sim/fallback")
    assert call(sim).id == "gen-sim-000002"  # reading records takes no generation id
    http = reader(sim)
    auth = {"Authorization": "Bearer k-0123456789"}
    answers = [
        http.get("/generation", params={"id": "gen-sim-000001"}),
        http.get("/generation", headers=auth),
        http.get("/generation", params={"id": "gen-unknown"}, headers=auth),
        http.post("/generation", params={"id": "gen-sim-000001"}, headers=auth),
    ]
    assert [a.status_code for a in answers] == [401, 400, 404, 405]
    data = http.get("/generation", params={"id": "gen-sim-000001"}, headers=auth).json()["data"]
    assert [(a["provider_name"], a["status"]) for a in data["provider_responses"]] == [
        ("Together", 429),
        ("DeepInfra", 200),
    ]
    assert (call(sim).id, sim.requests[-2].headers["Authorization"]) == ("gen-sim-000003", "Bearer [REDACTED]")


def test_the_record_s_attributes_keep_what_is_set_and_the_attempts_as_parallel_arrays() -> None:
    data = {
        "id": "gen-1",
        "total_cost": 0.0012,
        "cache_discount": None,  # null: absent
        "upstream_inference_cost": 0,
        "provider_name": "Anthropic",
        "latency": 1200,
        "is_byok": True,
        "finish_reason": "stop",
        "native_tokens_prompt": 120,
        "tokens_prompt": 118,  # not kept: the normalised count is the span's
        "usage": 0.0012,
        "native_finish_reason": {"odd": "shape"},  # not a primitive: left out, never guessed at
        "provider_responses": [
            {"provider_name": "Together", "status": 429, "latency": 80},
            {"provider_name": "Anthropic", "status": None},
            "not an attempt",
        ],
    }
    assert generation_attributes(data) == {
        "gen_ai.response.id": "gen-1",
        G + "total_cost": 0.0012,
        G + "upstream_inference_cost": 0,
        G + "provider_name": "Anthropic",
        G + "latency": 1200,
        G + "native_tokens_prompt": 120,
        G + "is_byok": True,
        G + "finish_reason": "stop",
        G + "attempts.provider": ["Together", "Anthropic"],
        G + "attempts.status": [429, None],
        G + "attempts.latency": [80.0, None],
    }
    assert generation_attributes({}) == {}


def test_the_option_is_read_and_checked_like_the_others() -> None:
    assert Settings.load({}).openrouter_generation is False
    assert Settings.load({"GATEWAY_OTEL_OPENROUTER_GENERATION": "true"}).openrouter_generation is True
    assert (
        Settings.load({"GATEWAY_OTEL_OPENROUTER_GENERATION": "on"}, openrouter_generation=False).openrouter_generation
        is False
    )
    with pytest.raises(ConfigurationError) as env:
        Settings.load({"GATEWAY_OTEL_OPENROUTER_GENERATION": "maybe"})
    with pytest.raises(ConfigurationError) as option:
        Settings.load({}, openrouter_generation="yes")
    assert str(env.value) == "GATEWAY_OTEL_OPENROUTER_GENERATION='maybe' is not valid: expected true or false"
    assert str(option.value) == "openrouter_generation='yes' is not valid: expected True or False"


def generation_record(trace_id: int, span_id: int, cost: float) -> Any:
    """A generation record as the local destination's exporter receives it, emitted by the real `GenerationLog`."""
    exporter = InMemoryLogs()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    attributes = {G + "total_cost": cost, G + "native_tokens_prompt": 9, G + "latency": 184.0}
    GenerationLog(provider).emit(SpanContext(trace_id, span_id, False, TraceFlags(1)), attributes)
    [item] = exporter.get_finished_logs()
    return item


@pytest.mark.parametrize("span_first", [True, False], ids=["span-first", "record-first"])
def test_the_store_puts_the_final_cost_on_the_row_whichever_comes_first(tmp_path: Path, span_first: bool) -> None:
    spans, logs = (
        StoreWriter(StoreConfig(tmp_path / "t.db", None, None)),
        StoreWriter(StoreConfig(tmp_path / "t.db", None, None)),
    )
    now = time.time_ns()
    writes = [
        lambda: spans.write_spans([chat_span(7, now), chat_span(8, now)]),
        lambda: logs.write_logs([generation_record(7, 7, 0.5)]),
    ]
    for write in writes if span_first else writes[::-1]:
        write()
    spans.close()
    logs.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    rows = conn.execute("SELECT span_id, cost, attributes, cost_source FROM spans ORDER BY span_id").fetchall()
    conn.close()
    assert [(span_id, cost, source) for span_id, cost, _, source in rows] == [
        ("0000000000000007", 0.5, "gateway"),  # the gateway's final figure
        ("0000000000000008", None, None),
    ]
    assert attributes_of(rows[0][2]) == {
        "gen_ai.request.model": "m",
        "gen_ai.operation.name": "chat",
        G + "total_cost": 0.5,
        G + "native_tokens_prompt": 9,
    }
    assert attributes_of(rows[1][2]) == {"gen_ai.request.model": "m", "gen_ai.operation.name": "chat"}


def test_a_destination_keeps_the_log_records_of_the_traces_it_samples() -> None:
    """Sampling 0.5 keeps the traces whose low 64 bits are below half their range, for records as for spans."""
    exporter = InMemoryLogs()
    provider = LoggerProvider()
    processor = OnceLogProcessor(exporter, sampling_rate=0.5, schedule_delay_millis=10)
    provider.add_log_record_processor(processor)
    kept, left_out = (1 << 62) | 7, (3 << 62) | 7
    for trace_id in (kept, left_out):
        GenerationLog(provider).emit(SpanContext(trace_id, 1, False, TraceFlags(1)), {G + "total_cost": 1.0})
    provider.force_flush()
    assert [getattr(i, "log_record", i).trace_id for i in exporter.get_finished_logs()] == [kept]
    assert processor.sampled_out == 1
    provider.shutdown()
