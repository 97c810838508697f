"""Our `gen_ai.*` names are the conventions' own: the released registry (`opentelemetry-semantic-conventions`) or
the names the latest `opentelemetry-util-genai` emits, never invented — only `gen_ai.usage.cost` stands outside both
(OpenObserve and openlit read it; a cost attribute is still a proposal upstream). A rename upstream fails here."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest

from conftest import Captured, make_client
from gateway_otel.instrumentation._attributes import cost_split
from gateway_otel.instrumentation._response import Usage

OUTSIDE_BOTH = frozenset({"gen_ai.usage.cost"})
LEGACY_PREFIXES = ("gen_ai.prompt", "gen_ai.completion")
"""OpenObserve takes any key so named as legacy Traceloop content that overrides the messages (see docs/backends.md)."""


def _registry_names() -> set[str]:
    """Every `gen_ai.*` attribute and metric name the released semantic conventions define."""
    names: set[str] = set()
    for module in (
        "opentelemetry.semconv._incubating.attributes.gen_ai_attributes",
        "opentelemetry.semconv._incubating.metrics.gen_ai_metrics",
    ):
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, str) and value.startswith("gen_ai."):
                names.add(value)
    return names


def _util_genai_names() -> set[str]:
    """Every `gen_ai.*` string literal in `opentelemetry-util-genai`'s source (the names it emits)."""
    package = Path(importlib.import_module("opentelemetry.util.genai").__file__).parent
    names: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("gen_ai."):
                names.add(node.value)
    return names


def _rich_workload(sim: Any) -> None:
    """Tools, cache read and write, reasoning, parameters, a session, a stream, embeddings and the Responses API."""
    client = make_client(sim)
    long_prompt = "please " * 80
    tool = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    client.chat.completions.create(
        model="anthropic/claude-3.5-haiku",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": long_prompt}],
        tools=[tool],
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        seed=7,
        stop=["END"],
        n=1,
        presence_penalty=0.1,
        frequency_penalty=0.1,
        response_format={"type": "json_object"},
        extra_body={"session_id": "session-1", "top_k": 5},
        user="user-1",
    )
    for _ in client.chat.completions.create(
        model="openai/gpt-oss-20b",
        stream=True,
        reasoning_effort="low",
        messages=[{"role": "user", "content": long_prompt}],
    ):
        pass
    client.embeddings.create(model="openai/text-embedding-3-small", input=["a", "b"], dimensions=8)
    client.responses.create(model="openai/gpt-4o-mini", input="respond", instructions="be kind")


def test_every_gen_ai_name_we_emit_is_in_the_registry_or_util_genai(telemetry: Captured, sim: Any) -> None:
    _rich_workload(sim)
    spans = telemetry.spans()
    emitted = {key for span in spans for key in span.attributes if key.startswith("gen_ai.")}
    emitted |= {event.name for span in spans for event in span.events if event.name.startswith("gen_ai.")}
    metrics = telemetry.metrics()
    emitted |= {name for name in metrics if name.startswith("gen_ai.")}
    emitted |= {key for points in metrics.values() for p in points for key in p.attributes if key.startswith("gen_ai.")}
    # the workload really is rich: cache read and write, reasoning, parameters, session, embeddings, streams
    for name in (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.request.reasoning.level",
        "gen_ai.request.temperature",
        "gen_ai.request.top_k",
        "gen_ai.conversation.id",
        "gen_ai.tool.definitions",
        "gen_ai.embeddings.dimension.count",
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.client.operation.time_to_first_chunk",
    ):
        assert name in emitted, name
    known = _registry_names() | _util_genai_names()
    assert sorted(emitted - known - OUTSIDE_BOTH) == []
    assert [name for name in emitted if name.startswith(LEGACY_PREFIXES)] == []


def test_the_two_generations_of_cache_write_names_are_known_upstream() -> None:
    """The registry still has the old name OpenObserve reads; util-genai emits the new one we put on every span."""
    assert "gen_ai.usage.cache_creation.input_tokens" in _registry_names()
    assert "gen_ai.usage.cache_write.input_tokens" in _util_genai_names()


# --- the cost split -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "split"),
    [
        (Usage(cost=3e-5, upstream_prompt_cost=1e-5, upstream_completion_cost=2e-5), (1e-5, 2e-5)),
        (Usage(cost=3e-5, upstream_prompt_cost=1e-5, upstream_completion_cost=2e-5, is_byok=False), (1e-5, 2e-5)),
        # BYOK: the upstream's own charge, not a split of what OpenRouter billed
        (Usage(cost=1.5e-6, upstream_prompt_cost=1e-5, upstream_completion_cost=2e-5, is_byok=True), None),
        (Usage(cost=3e-5, upstream_prompt_cost=1e-5, upstream_completion_cost=2e-5, is_byok=True), None),
        (Usage(cost=5e-5, upstream_prompt_cost=1e-5, upstream_completion_cost=2e-5), None),  # does not add up
        (Usage(cost=3e-5, upstream_prompt_cost=1e-5), None),  # half a split
        (Usage(upstream_prompt_cost=1e-5, upstream_completion_cost=2e-5), None),  # no total
        (Usage(cost=0.0, upstream_prompt_cost=0.0, upstream_completion_cost=0.0), None),  # free: nothing to split
        (Usage(cost=1e-5, upstream_prompt_cost=-1e-5, upstream_completion_cost=2e-5), None),
    ],
)
def test_a_cost_split_only_when_it_adds_up_to_the_total(usage: Usage, split: Any) -> None:
    assert cost_split(usage) == split


def test_openrouter_calls_carry_the_openinference_cost_split(telemetry: Captured, sim: Any) -> None:
    make_client(sim).chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    attrs = telemetry.span().attributes
    assert attrs["llm.cost.prompt"] == attrs["gateway.cost.upstream_inference_prompt"]
    assert attrs["llm.cost.completion"] == attrs["gateway.cost.upstream_inference_completions"]
    assert attrs["llm.cost.prompt"] > 0 and attrs["llm.cost.completion"] > 0
    assert attrs["llm.cost.prompt"] + attrs["llm.cost.completion"] == pytest.approx(attrs["llm.cost.total"])
