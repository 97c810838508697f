"""One odd response never costs the other calls their telemetry: every value put on a span, a log record or a metric
point is encodable (strings cleaned of lone surrogates, integers within int64), and a store batch with one row SQLite
refuses keeps the others."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

import gateway_otel
from conftest import OPENROUTER_URL, Captured, chat_span
from gateway_otel.simulator import GatewaySimulator, SimulatedResponse, http_client
from gateway_otel.store import StoreConfig, StoreWriter

# Each poison as the raw JSON a gateway could send: `\ud800` is a lone surrogate once decoded.
POISONS = {
    "id": ('"id":"gen-sim-000005"', '"id":"gen-\\ud800"'),
    "model": ('"model":"openai/gpt-4o-mini"', '"model":"openai/gpt-4o-mini\\udfff"'),
    "provider": ('"provider":"OpenAI"', '"provider":"Open\\ud800AI"'),
    "finish_reason": ('"finish_reason":"stop"', '"finish_reason":"st\\ud800op"'),
    "tokens": ('"prompt_tokens":', f'"prompt_tokens":{2**70},"_was":'),
    "completion_tokens": ('"completion_tokens":', f'"completion_tokens":{-(2**70)},"_was":'),
}


class PoisoningGateway(GatewaySimulator):
    """OpenRouter's answers, except that the `poisoned`-th call's body carries one poison."""

    poison: tuple[str, str] = ("", "")
    poisoned: int = 5

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> SimulatedResponse:
        answer = super().handle(method, path, headers, body)
        if len(self.requests) == self.poisoned and answer.body:
            old, new = self.poison
            text = answer.body.decode()
            assert old in text, (old, text)
            answer = SimulatedResponse(answer.status, answer.headers, body=text.replace(old, new, 1).encode())
        return answer


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_ten_calls_with_one_poisoned_answer_store_and_encode_ten_spans(
    poison: str, make_telemetry: Any, tmp_path: Path
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    path = tmp_path / "t.db"
    providers = gateway_otel.configure("local", environ={"GATEWAY_OTEL_LOCAL_PATH": str(path)}, set_global=False)
    reader = InMemoryMetricReader()
    captured: Captured = make_telemetry()  # in-memory copy, to encode as OTLP
    gateway_otel.uninstrument()
    providers.tracer_provider.add_span_processor(captured.tracer_provider._active_span_processor)
    gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=MeterProvider([reader]))
    gateway = PoisoningGateway()
    gateway.poison = POISONS[poison]
    transport = http_client(gateway)
    client = openai.OpenAI(base_url=OPENROUTER_URL, api_key="sk-or-v1-x", max_retries=0, http_client=transport)
    try:
        for i in range(10):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": f"{i}"}])
    finally:
        gateway_otel.uninstrument()
        providers.shutdown()
    spans = captured.spans()
    assert len(spans) == 10
    encode_spans(spans).SerializeToString()  # raised UnicodeEncodeError / ValueError for the whole batch before
    encode_metrics(reader.get_metrics_data()).SerializeToString()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM spans").fetchone() == (10,)
    conn.close()
    attrs = dict(spans[4].attributes or {})
    if poison == "tokens":
        assert "gen_ai.usage.input_tokens" not in attrs and attrs["gen_ai.usage.output_tokens"] > 0
    elif poison == "id":
        assert attrs["gen_ai.response.id"] == "gen-\ufffd"


def test_a_poisoned_request_model_still_names_an_encodable_span(telemetry: Captured, sim: GatewaySimulator) -> None:
    client = openai.OpenAI(base_url=OPENROUTER_URL, api_key="sk-or-v1-x", max_retries=0, http_client=http_client(sim))
    with contextlib.suppress(UnicodeEncodeError):  # openai 3 cannot send it; 1 and 2 escape it: the span either way
        client.chat.completions.create(
            model="openai/gpt-4o-mini\ud800", messages=[{"role": "user", "content": "hi"}], max_tokens=2**70,
            n=2**65, user="u\udc00",
            extra_body={"session_id": "s\ud800", "metadata": {"k": "v\ud800"}, "stop": ["\udfff"]},
        )  # fmt: skip
    span = telemetry.span()
    assert span.name == "chat openai/gpt-4o-mini\ufffd"
    attrs = dict(span.attributes or {})
    assert "gen_ai.request.max_tokens" not in attrs and "gen_ai.request.choice.count" not in attrs
    assert (attrs["user.id"], attrs["session.id"]) == ("u\ufffd", "s\ufffd")
    encode_spans([span]).SerializeToString()




def test_a_store_batch_keeps_every_row_but_the_one_sqlite_refuses(tmp_path: Path) -> None:
    """A span starting beyond int64 nanoseconds (SQLite refuses the value) is dropped alone and counted."""
    writer = StoreWriter(StoreConfig(tmp_path / "t.db", None, None))
    now = time.time_ns()
    writer.write_spans([chat_span(1, now), chat_span(2, 2**70), chat_span(3, now + 1)])
    assert writer.dropped == 1
    writer.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    assert [r[0] for r in conn.execute("SELECT name FROM spans ORDER BY start_ns")] == ["chat m 1", "chat m 3"]
    conn.close()


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40),
    number=st.integers(min_value=-(2**80), max_value=2**80),
)
def test_any_response_value_gives_encodable_attributes(text: str, number: int) -> None:
    """Whatever text (lone surrogates included) or integer the gateway puts in id, model, provider, finish reason and
    token counts, the span's attributes encode as OTLP."""
    from gateway_otel.instrumentation import _attributes as A
    from gateway_otel.instrumentation._endpoints import find_endpoint
    from gateway_otel.instrumentation._response import map_chat

    body = {
        "id": text, "model": text, "provider": text,
        "choices": [{"finish_reason": text, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": number, "completion_tokens": number, "total_tokens": number, "cost": 0.1},
    }  # fmt: skip
    record = map_chat(json.loads(json.dumps(body)), True, 100).clean()
    endpoint = find_endpoint("post", "/chat/completions")
    gateway = gateway_otel.gateways.detect_gateway("openrouter.ai")
    attrs = A.response_attributes(record, endpoint, gateway)
    attrs.update(A.request_attributes(endpoint, {"model": text, "max_tokens": number}, gateway, "openrouter.ai", 443))
    span = ReadableSpan(name="chat", context=SpanContext(1, 1, False), attributes=attrs)
    encode_spans([span]).SerializeToString()


def _exit_code_of(pid: int, within: float = 20.0) -> int:
    """The forked child's exit code; the test fails (and the child is killed) when it has not exited `within` s."""
    import os

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)  # polling a child's exit, not timing anything
    os.kill(pid, 9)
    pytest.fail("the forked child did not exit")


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork() is POSIX")
def test_a_child_forked_mid_write_stores_its_own_spans_and_exits(tmp_path: Path) -> None:
    """The parent holds the store's lock (a write in progress) when it forks: the child writes through a lock and a
    connection of its own, and the parent's connection is untouched by the child's exit."""
    import os

    writer = StoreWriter(StoreConfig(tmp_path / "t.db", None, None))
    now = time.time_ns()
    writer.write_spans([chat_span(1, now)])  # the parent's connection is open
    with writer._lock:  # as if a write were in progress on another thread
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                writer.write_spans([chat_span(2, now + 1)])
                writer.close()
                code = 0
            finally:
                os._exit(code)
    assert _exit_code_of(pid) == 0
    writer.write_spans([chat_span(3, now + 2)])  # the parent's own connection still works
    writer.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    names = [r[0] for r in conn.execute("SELECT name FROM spans ORDER BY start_ns")]
    assert names == ["chat m 1", "chat m 2", "chat m 3"]
    conn.close()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork() is POSIX")
def test_a_child_forked_while_the_queue_is_full_exports_its_own_spans(tmp_path: Path) -> None:
    """The parent's destination queue is full (its exporter hangs) when it forks: the child's queue is its own and
    empty, so the child's spans are exported, and it exits promptly."""
    import os
    import threading

    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from gateway_otel.destinations._processor import DestinationProcessor

    parent, release = os.getpid(), threading.Event()
    out = tmp_path / "child-spans.txt"

    class Exporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            if os.getpid() == parent:
                release.wait(30)  # the parent's backend hangs: its queue fills up
            else:
                with out.open("a") as file:
                    file.writelines(f"{s.name}\n" for s in spans)
            return SpanExportResult.SUCCESS

    processor = DestinationProcessor("test", Exporter(), max_queue_size=4, schedule_delay=0.01, shutdown_timeout=2)
    now = time.time_ns()
    try:
        for i in range(12):
            processor.on_end(chat_span(i + 1, now + i))
        deadline = time.monotonic() + 10
        while processor.dropped == 0 and time.monotonic() < deadline:
            processor.on_end(chat_span(100, now))
        assert processor.dropped > 0  # the parent's queue is full
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for i in range(3):
                    processor.on_end(chat_span(200 + i, now))
                processor.shutdown()
                code = 0 if processor.dropped == 0 else 2
            finally:
                os._exit(code)
        assert _exit_code_of(pid) == 0
        assert out.read_text().splitlines() == ["chat m 200", "chat m 201", "chat m 202"]
    finally:
        release.set()
        processor.shutdown()


def test_a_span_otlp_cannot_encode_is_left_out_and_its_batch_sent(tmp_path: Path) -> None:
    """Another library's span OTLP cannot encode (a lone surrogate in its name; the SDK skips a bad attribute alone,
    not a bad name) in the same batch as four good ones: the four reach the collector, the one is counted."""
    from otlp_receiver import OtlpReceiver, decode_spans

    with OtlpReceiver() as receiver:
        providers = gateway_otel.configure(
            "otlp", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}, set_global=False
        )
        tracer = providers.tracer_provider.get_tracer("another-library")
        for i in range(5):
            with tracer.start_as_current_span(f"work {i}" + ("\ud800" if i == 2 else "")):
                pass
        providers.shutdown()
    received = [s["name"] for p, _, b in receiver.requests if p == "/v1/traces" for s in decode_spans(b)]
    assert sorted(received) == ["work 0", "work 1", "work 3", "work 4"]
    assert providers.stats()["otlp"] == {"exported": 4, "failed": 0, "dropped": 0, "sampled_out": 0, "unencodable": 1}
