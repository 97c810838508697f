"""The real-Phoenix harness works end to end: a span exported over OTLP/HTTP is read back through Phoenix's REST API."""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from phoenix_server import PhoenixServer


def test_span_exported_to_phoenix_is_read_back(phoenix: PhoenixServer) -> None:
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": "smoke"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=phoenix.traces_endpoint, timeout=10)))
    try:
        with provider.get_tracer("smoke").start_as_current_span("chat m") as span:
            span.set_attribute("openinference.span.kind", "LLM")
            span.set_attribute("llm.model_name", "m")
            span.set_attribute("gen_ai.usage.input_tokens", 3)
        trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        provider.shutdown()

    (stored,) = phoenix.wait_for_spans("smoke", 1, trace_id=trace_id)
    assert stored["name"] == "chat m"
    assert stored["context"]["trace_id"] == trace_id
    assert stored["context"]["span_id"] == format(span.get_span_context().span_id, "016x")
    assert stored["span_kind"] == "LLM"
    assert stored["attributes"]["llm.model_name"] == "m"
    assert stored["attributes"]["gen_ai.usage.input_tokens"] == 3


def test_phoenix_preset_against_a_real_phoenix(phoenix: PhoenixServer, sim: Any) -> None:
    """The `phoenix` preset, configured by env vars only, exports instrumented calls that a real Phoenix stores."""
    import gateway_otel
    from conftest import make_client

    env = {
        "GATEWAY_OTEL_DESTINATIONS": "phoenix",
        "PHOENIX_COLLECTOR_ENDPOINT": phoenix.url,
        "PHOENIX_PROJECT_NAME": "gateway-otel-preset",
    }
    providers = gateway_otel.configure(environ=env, set_global=False)
    gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
    try:
        client = make_client(sim)
        reply = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hello phoenix"}]
        )
        for _ in client.chat.completions.create(
            model="openai/gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "stream to phoenix"}]
        ):
            pass
    finally:
        gateway_otel.uninstrument()
    providers.shutdown()
    stored = phoenix.wait_for_spans("gateway-otel-preset", 2)
    assert len(stored) == 2
    by_input = {s["attributes"]["llm.input_messages.0.message.content"]: s for s in stored}
    plain = by_input["hello phoenix"]
    assert plain["name"] == "chat openai/gpt-4o-mini"
    assert plain["span_kind"] == "LLM"
    assert plain["status_code"] == "OK"
    assert plain["attributes"]["llm.token_count.prompt"] == reply.usage.prompt_tokens
    assert plain["attributes"]["gen_ai.usage.cost"] == reply.usage.cost
    assert plain["attributes"]["gateway.upstream.provider"] == "OpenAI"
    assert by_input["stream to phoenix"]["attributes"]["gateway.stream.outcome"] == "completed"
