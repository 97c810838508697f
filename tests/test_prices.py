"""Cost from the price table (genai-prices, the `prices` extra) when the gateway reports none, and its source.

Real calls through the openai client into the gateway simulator, which answers a direct call to OpenAI as OpenAI
does (tokens, no cost); the expected costs are genai-prices' own figures for the same model and usage, computed here
through its API. The tests that need the extra skip without it; the one that hides it runs everywhere.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import gateway_otel
from conftest import instrument_into, make_client, run
from gateway_otel import Telemetry, _prices
from gateway_otel._settings import ConfigurationError, Settings
from gateway_otel.cli import main as cli
from gateway_otel.destinations._processor import DestinationProcessor
from gateway_otel.query._charts import usd
from gateway_otel.simulator import GatewaySimulator
from gateway_otel.simulator._transport import httpx_module

OPENAI_URL = "https://api.openai.com/v1"
# 64+ tokens: the simulator reports cached tokens, so the price includes cache reads
LONG_PROMPT = [{"role": "user", "content": " ".join(["word"] * 80)}]
COST_KEYS = ("gen_ai.usage.cost", "llm.cost.total", "gateway.cost.source")


def needs_the_extra() -> None:
    pytest.importorskip("genai_prices", reason="the prices extra (genai-prices) is not installed")


def table_price(model: str, provider: str, **usage: int) -> float:
    """genai-prices' own figure, through its public API."""
    from genai_prices import Usage, calc_price

    return float(calc_price(Usage(**usage), model, provider_id=provider).total_price)


class Pipeline:
    """instrument() onto a tracer provider with one destination processor (exporting to memory) beside the
    application's own processor, and an in-memory metric reader."""

    def __init__(self, **options: Any) -> None:
        self.exported, self.own = InMemorySpanExporter(), InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.own))
        self.provider.add_span_processor(DestinationProcessor("memory", self.exported, schedule_delay=0.01))
        self.reader = InMemoryMetricReader()
        gateway_otel.instrument(
            tracer_provider=self.provider, meter_provider=MeterProvider(metric_readers=[self.reader]), **options
        )

    def span(self) -> ReadableSpan:
        self.provider.force_flush()
        (span,) = self.exported.get_finished_spans()
        return span

    def costs(self) -> list[tuple[float, dict[str, Any]]]:
        data = self.reader.get_metrics_data()
        return [
            (point.value, dict(point.attributes))
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == "gateway.client.cost"
            for point in metric.data.data_points
        ]


@pytest.fixture
def pipeline() -> Any:
    made: list[Pipeline] = []

    def make(**options: Any) -> Pipeline:
        made.append(Pipeline(**options))
        return made[-1]

    yield make
    gateway_otel.uninstrument()
    for p in made:
        p.provider.shutdown()


def cost_attributes(span: ReadableSpan) -> dict[str, Any]:
    return {k: v for k, v in (span.attributes or {}).items() if k in COST_KEYS}


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_a_direct_openai_call_costs_what_genai_prices_says(pipeline: Any, sim: GatewaySimulator, mode: str) -> None:
    needs_the_extra()
    telemetry = pipeline()
    client = make_client(sim, asynchronous=mode == "async", base_url=OPENAI_URL)
    if mode == "stream":
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=LONG_PROMPT, stream=True, stream_options={"include_usage": True}
            )
        )
        usage = chunks[-1].usage
    else:
        usage = run(client.chat.completions.create(model="gpt-4o-mini", messages=LONG_PROMPT)).usage
    assert usage.model_extra.get("cost") is None  # OpenAI reports tokens, no cost
    cached = usage.prompt_tokens_details.cached_tokens
    assert cached > 0  # so the price includes cache reads
    expected = table_price(
        "gpt-4o-mini",
        "openai",
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cache_read_tokens=cached,
    )
    assert expected > 0
    span = telemetry.span()
    assert cost_attributes(span) == {
        "gen_ai.usage.cost": expected,
        "llm.cost.total": expected,
        "gateway.cost.source": "price_table",
    }
    assert (span.attributes["gateway.name"], span.attributes["gen_ai.usage.cache_read.input_tokens"]) == (
        "openai",
        cached,
    )
    # Priced on the destination's exporting thread: the span the application's own processor got carries none.
    (own,) = telemetry.own.get_finished_spans()
    assert cost_attributes(own) == {}
    assert telemetry.costs() == [(expected, telemetry.costs()[0][1])]
    assert telemetry.costs()[0][1]["gateway.cost.source"] == "price_table"


def test_an_openrouter_call_keeps_the_gateways_figure(pipeline: Any, sim: GatewaySimulator) -> None:
    telemetry = pipeline()
    usage = make_client(sim).chat.completions.create(model="openai/gpt-4o-mini", messages=LONG_PROMPT).usage
    reported = usage.model_extra["cost"]
    span = telemetry.span()
    assert cost_attributes(span) == {
        "gen_ai.usage.cost": reported,
        "llm.cost.total": reported,
        "gateway.cost.source": "gateway",
    }
    ((value, attributes),) = telemetry.costs()
    assert (value, attributes["gateway.cost.source"]) == (reported, "gateway")


def test_a_model_the_table_does_not_know_gets_no_cost(pipeline: Any, sim: GatewaySimulator) -> None:
    needs_the_extra()
    telemetry = pipeline()
    make_client(sim, base_url=OPENAI_URL).chat.completions.create(model="gpt-no-such-model", messages=LONG_PROMPT)
    span = telemetry.span()
    assert span.attributes["gen_ai.usage.input_tokens"] > 0
    assert cost_attributes(span) == {}
    assert telemetry.costs() == []


def test_without_the_extra_nothing_changes_and_nothing_fails(
    pipeline: Any, sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # `import genai_prices` fails, find_spec finds nothing
    _prices.available.cache_clear()
    _prices.price.cache_clear()
    try:
        telemetry = pipeline()
        reply = make_client(sim, base_url=OPENAI_URL).chat.completions.create(model="gpt-4o-mini", messages=LONG_PROMPT)
        assert reply.choices[0].message.content
        span = telemetry.span()
        assert span.attributes["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
        assert cost_attributes(span) == {}
        assert telemetry.costs() == []
    finally:
        _prices.available.cache_clear()


@pytest.mark.parametrize(
    ("host", "provider", "model"),
    [
        ("api.openai.com", "openai", "gpt-4o-mini"),
        ("my-resource.openai.azure.com", "azure", "gpt-4o-mini"),
        ("api.groq.com", "groq", "llama-3.3-70b-versatile"),
        ("api.together.xyz", "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("api.deepseek.com", "deepseek", "deepseek-chat"),
        ("api.mistral.ai", "mistral", "mistral-small-latest"),
    ],
)
def test_each_direct_provider_is_priced_by_its_own_table(host: str, provider: str, model: str) -> None:
    needs_the_extra()
    from gateway_otel.gateways import detect_gateway

    gateway = detect_gateway(host).name
    request = _prices.price_request(gateway, model, (1000, 100, 200, None, None, None), None)
    assert request is not None and request[0] == provider
    assert _prices.price(request) == table_price(
        model, provider, input_tokens=1000, output_tokens=100, cache_read_tokens=200
    )


@pytest.mark.parametrize(
    ("gateway", "model", "counts"),
    [
        ("openrouter", "openai/gpt-4o-mini", (10, 5, None, None, None, None)),  # a gateway reports its own
        ("litellm", "gpt-4o-mini", (10, 5, None, None, None, None)),
        ("openai_compatible", "gpt-4o-mini", (10, 5, None, None, None, None)),
        ("openai", None, (10, 5, None, None, None, None)),  # no model
        ("openai", "gpt-4o-mini", (None, None, None, None, None, None)),  # no usage
    ],
)
def test_what_is_never_priced(gateway: str, model: Any, counts: tuple[Any, ...]) -> None:
    assert _prices.price_request(gateway, model, counts, 0) is None


def test_usage_the_table_refuses_gets_no_cost() -> None:
    needs_the_extra()
    refused = _prices.price_request("openai", "gpt-4o-mini", (10, 5, 50, None, None, None), 0)  # cache > input
    assert refused is not None and _prices.price(refused) is None


def test_pricing_downloads_nothing_and_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    needs_the_extra()

    def no_network(*_: Any, **__: Any) -> None:
        raise AssertionError("genai-prices reached for the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    _prices.price.cache_clear()
    before = {t.name for t in threading.enumerate()}
    request = _prices.price_request("openai", "gpt-4o-mini", (1000, 100, None, None, None, None), 0)
    assert request is not None and _prices.price(request) == table_price(
        "gpt-4o-mini", "openai", input_tokens=1000, output_tokens=100
    )
    from genai_prices import data_snapshot

    assert {t.name for t in threading.enumerate()} - before == set()  # no `genai_prices:update` thread
    assert data_snapshot.get_snapshot().from_auto_update is False  # the prices bundled in the wheel


# --- local models ------------------------------------------------------------------------------------------------

OLLAMA_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "llama3.2",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


def ollama(base_url: str) -> openai.OpenAI:
    """A client of an Ollama server (its answers: tokens, no cost)."""
    httpx = httpx_module()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=OLLAMA_ANSWER))
    return openai.OpenAI(base_url=base_url, api_key="ollama", http_client=httpx.Client(transport=transport))


@pytest.mark.parametrize(
    ("free", "base_url", "expected"),
    [
        (True, "http://localhost:11434/v1", {"gen_ai.usage.cost": 0.0, "llm.cost.total": 0.0,
                                             "gateway.cost.source": "price_table"}),
        (False, "http://localhost:11434/v1", {}),  # nobody said it is free
        (True, "http://ollama:11434/v1", {"gen_ai.usage.cost": 0.0, "llm.cost.total": 0.0,
                                          "gateway.cost.source": "price_table"}),  # a compose service
        (True, "https://ollama.com/v1", {}),  # Ollama's cloud is not local
        (True, "http://localhost:4000/v1", {}),  # LiteLLM on localhost forwards to paid providers
    ],
)  # fmt: skip
def test_a_local_model_is_free_only_when_the_user_says_so(
    pipeline: Any, free: bool, base_url: str, expected: dict[str, Any]
) -> None:
    telemetry = pipeline(local_models_free=free)
    ollama(base_url).chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    span = telemetry.span()
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert cost_attributes(span) == expected
    assert cost_attributes(telemetry.own.get_finished_spans()[0]) == expected  # set on the span itself: no lookup


def test_the_local_models_free_setting_is_checked() -> None:
    assert Settings.load({"GATEWAY_OTEL_LOCAL_MODELS_FREE": "true"}).local_models_free is True
    assert Settings.load({}).local_models_free is False
    with pytest.raises(ConfigurationError, match="GATEWAY_OTEL_LOCAL_MODELS_FREE='maybe' is not valid"):
        Settings.load({"GATEWAY_OTEL_LOCAL_MODELS_FREE": "maybe"})
    with pytest.raises(ConfigurationError, match="local_models_free='yes' is not valid: expected True or False"):
        Settings.load({}, local_models_free="yes")


# --- the local store, the commands and the query API ------------------------------------------------------------


def test_the_store_and_the_commands_say_where_each_cost_came_from(
    tmp_path: Path, sim: GatewaySimulator, capsys: Any
) -> None:
    needs_the_extra()
    path = tmp_path / "telemetry.db"
    providers = gateway_otel.configure("local", environ={"GATEWAY_OTEL_LOCAL_PATH": str(path)}, set_global=False)
    instrument_into(providers)
    try:
        openai_client = make_client(sim, base_url=OPENAI_URL)
        direct = openai_client.chat.completions.create(model="gpt-4o-mini", messages=LONG_PROMPT)
        routed = make_client(sim).chat.completions.create(model="openai/gpt-4o-mini", messages=LONG_PROMPT)
        openai_client.chat.completions.create(model="gpt-no-such-model", messages=LONG_PROMPT)
    finally:
        gateway_otel.uninstrument()
        providers.shutdown()
    priced = table_price(
        "gpt-4o-mini",
        "openai",
        input_tokens=direct.usage.prompt_tokens,
        output_tokens=direct.usage.completion_tokens,
        cache_read_tokens=direct.usage.prompt_tokens_details.cached_tokens,
    )
    reported = routed.usage.model_extra["cost"]
    with Telemetry("local", path=path) as telemetry:
        spans = telemetry.traces.query(time_window="1h").spans
        assert sorted((s.model, s.cost, s.cost_source) for s in spans) == [
            ("gpt-4o-mini", priced, "price_table"),
            ("gpt-no-such-model", None, None),
            ("openai/gpt-4o-mini", reported, "gateway"),
        ]
        cost = telemetry.metrics.query("cost", time_window="1h")
        assert cost.value == pytest.approx(priced + reported)
        assert cost.cost_sources is not None
        assert (cost.cost_sources.source, cost.cost_sources.priced_cost) == ("mixed", priced)
    assert cli(["stats", "--path", str(path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert f"${priced:.6f} (price table)" in lines["gpt-4o-mini"]
    assert f"${reported:.6f}" in lines["openai/gpt-4o-mini"] and "(" not in lines["openai/gpt-4o-mini"]
    assert lines["gpt-no-such-model"].split()[5] == "-"  # no cost, not $0
    total = f"${priced + reported:.6f} (gateway ${(priced + reported) - priced:.6f} + price table ${priced:.6f})"
    assert total in lines["all"]
    assert cli(["stats", "--path", str(path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total"]["cost_sources"] == {
        "costed_calls": 2, "priced_calls": 1, "priced_cost": priced, "source": "mixed",
    }  # fmt: skip
    assert cli(["metrics", "cost", "--path", str(path)]) == 0
    assert "in all: gateway $" in capsys.readouterr().out.splitlines()[-1]
    assert cli(["report", "--path", str(path), "--html", str(tmp_path / "r.html")]) == 0
    split = f"gateway {usd((priced + reported) - priced)} + price table {usd(priced)}"  # the report's own format
    page = (tmp_path / "r.html").read_text()
    assert f'<span data-key="cost_sources" title="{split}">incl. price table</span>' in page
