"""Synthetic spans for `bench/store.py`: real chat spans, captured once, cloned fast with varied values.

Each template is a span the real instrumentation made for a real `openai` client call through the in-process gateway
simulator (the demo's chat call: `max_tokens=80`, one user message): per model, a plain call, a streamed call and two
failing calls (HTTP 429 and 502). A clone keeps the template's attribute names and shapes — whatever this version of
the package records — and varies only values: ids, times, the prompt and answer text (replaced wherever the template
carries them, in both conventions), tokens, cost, latency, time to first token. So a store built from clones has the
bytes per span of the package's real row format, without 1,000,000 calls through the client.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

DEMO_PROMPT = "In one sentence: why do LLM calls need tracing?"
"""The demo's prompt (`gateway-otel demo`): the reference measured call."""
MODELS: tuple[tuple[str, float, float, float], ...] = (
    # (model, share of calls, $ per 1M input tokens, $ per 1M output tokens)
    ("openai/gpt-4o-mini", 0.40, 0.15, 0.60),
    ("anthropic/claude-3.5-haiku", 0.20, 0.80, 4.00),
    ("google/gemini-2.0-flash-001", 0.20, 0.10, 0.40),
    ("meta-llama/llama-3.3-70b-instruct", 0.10, 0.13, 0.40),
    ("deepseek/deepseek-r1", 0.10, 0.55, 2.19),
)
KINDS = ("ok", "stream", "error-429", "error-502")
STREAM_SHARE = 0.10
ERROR_SHARE = 0.03
RECENT_SHARE = 0.90
"""Share of spans started in the last 24 hours; the rest in the 48 hours before (3 days in all)."""
DAY_NS = 86_400 * 10**9
_WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "that",
    "on",
    "with",
    "as",
    "request",
    "model",
    "latency",
    "token",
    "cost",
    "trace",
    "span",
    "answer",
    "prompt",
    "user",
    "system",
    "gateway",
    "provider",
    "stream",
    "chunk",
    "error",
    "retry",
    "budget",
    "window",
    "query",
    "store",
    "index",
    "row",
    "column",
    "batch",
    "write",
    "read",
    "cache",
    "summary",
    "report",
    "invoice",
    "customer",
    "order",
    "shipping",
    "refund",
    "policy",
    "account",
    "password",
    "reset",
    "email",
    "meeting",
    "schedule",
    "translate",
    "explain",
    "compare",
    "list",
    "steps",
    "code",
    "function",
    "python",
    "error",
    "message",
    "stack",
    "table",
    "chart",
    "data",
]


def text_pool(rng: random.Random, size: int, median_words: float, sigma: float, cap: int) -> list[str]:
    """`size` texts of log-normally distributed word counts (median `median_words`), plain words only (JSON-safe)."""
    pool = []
    for _ in range(size):
        words = min(cap, max(1, round(rng.lognormvariate(math.log(median_words), sigma))))
        pool.append(" ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + ".")
    return pool


def capture_templates(resource_attributes: Mapping[str, str]) -> dict[tuple[str, str], ReadableSpan]:
    """(model, kind) → the span the real instrumentation made for that call; instruments, calls, uninstruments."""
    import openai
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import gateway_otel
    from gateway_otel.simulator import SCENARIO_HEADER, GatewaySimulator, http_client

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=Resource.create(dict(resource_attributes)))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    gateway_otel.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider())
    client = openai.OpenAI(
        base_url="https://openrouter.ai/api/v1",
        api_key="sk-or-bench-not-a-key",
        http_client=http_client(GatewaySimulator()),
        max_retries=0,
    )
    messages = [{"role": "user", "content": DEMO_PROMPT}]
    templates = {}
    try:
        for model, *_ in MODELS:
            for kind in KINDS:
                exporter.clear()
                try:
                    if kind == "stream":
                        for _ in client.chat.completions.create(
                            model=model, messages=messages, max_tokens=80, stream=True
                        ):
                            pass
                    else:
                        headers = {SCENARIO_HEADER: kind} if kind.startswith("error") else None
                        client.chat.completions.create(
                            model=model, messages=messages, max_tokens=80, extra_headers=headers
                        )
                except openai.APIStatusError:
                    pass
                (span,) = exporter.get_finished_spans()
                templates[model, kind] = span
    finally:
        gateway_otel.uninstrument()
        tracer_provider.shutdown()
    return templates


@dataclass(frozen=True)
class _Template:
    """A template span and where its variable values are."""

    span: ReadableSpan
    prompt: str
    answer: str | None
    content_keys: tuple[str, ...]


def _prepare(span: ReadableSpan) -> _Template:
    attrs = span.attributes or {}
    answer = attrs.get("output.value")
    answer = answer if isinstance(answer, str) and DEMO_PROMPT in answer else None
    keys = tuple(k for k, v in attrs.items() if isinstance(v, str) and DEMO_PROMPT in v)
    return _Template(span, DEMO_PROMPT, answer, keys)


def _tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 1.33))


class SpanFactory:
    """Clones of the templates: `batch(start, count)` gives spans number `start`.. of a deterministic sequence, so
    any process can build any part of a store. `vary=False` clones the demo's call itself (only ids and times vary):
    the reference for bytes per span."""

    def __init__(
        self, templates: Mapping[tuple[str, str], ReadableSpan], now_ns: int, *, seed: int = 17, vary: bool = True
    ) -> None:
        self.templates = {key: _prepare(span) for key, span in templates.items()}
        self.now_ns = now_ns
        self.seed = seed
        self.vary = vary
        rng = random.Random(seed)
        self.prompts = text_pool(rng, 512, median_words=14, sigma=1.0, cap=400)
        self.answers = text_pool(rng, 512, median_words=45, sigma=0.8, cap=600)
        self.prices = {model: (p_in / 1e6, p_out / 1e6) for model, _, p_in, p_out in MODELS}
        self.models = [model for model, *_ in MODELS]
        self.weights = [share for _, share, *_ in MODELS]

    def batch(self, start: int, count: int) -> list[ReadableSpan]:
        rng = random.Random(f"{self.seed}:{start}")
        return [self._one(rng) for _ in range(count)]

    def spans(self, start: int, count: int, batch_size: int = 512) -> Iterator[list[ReadableSpan]]:
        for offset in range(start, start + count, batch_size):
            yield self.batch(offset, min(batch_size, start + count - offset))

    def _when(self, rng: random.Random, duration_ns: int) -> int:
        if rng.random() < RECENT_SHARE:
            return self.now_ns - duration_ns - int(rng.random() * (DAY_NS - 60 * 10**9)) - 60 * 10**9
        return self.now_ns - DAY_NS - int(rng.random() * 2 * DAY_NS)

    def _one(self, rng: random.Random) -> ReadableSpan:
        if not self.vary:
            return self._clone(rng, self.templates[self.models[0], "ok"], None, None, None)
        model = rng.choices(self.models, self.weights)[0]
        draw = rng.random()
        kind = "stream" if draw < STREAM_SHARE else "ok"
        if draw > 1 - ERROR_SHARE:
            kind = "error-429" if draw > 1 - ERROR_SHARE / 2 else "error-502"
        prompt = rng.choice(self.prompts)
        answer = rng.choice(self.answers)
        return self._clone(rng, self.templates[model, kind], model, prompt, answer)

    def _clone(
        self, rng: random.Random, t: _Template, model: str | None, prompt: str | None, answer: str | None
    ) -> ReadableSpan:
        template = t.span
        attrs = dict(template.attributes or {})
        ttft_ns = None
        if model is None:  # the reference call: the template's own values
            duration_ns = int(rng.lognormvariate(math.log(1.2), 0.6) * 1e9)
        else:
            assert prompt is not None and answer is not None
            for key in t.content_keys:
                value = attrs[key]
                if t.answer is not None:
                    value = value.replace(t.answer, answer)
                attrs[key] = value.replace(t.prompt, prompt)
            tokens_in, tokens_out = _tokens(prompt) + 8, _tokens(answer)
            price_in, price_out = self.prices[model]
            _set_usage(attrs, tokens_in, tokens_out, tokens_in * price_in, tokens_out * price_out)
            if "gen_ai.response.id" in attrs:
                attrs["gen_ai.response.id"] = f"gen-{rng.getrandbits(80):020x}"
            if template.status.is_ok:
                duration_ns = int(rng.lognormvariate(math.log(1.2), 0.6) * 1e9)
            else:
                duration_ns = int(rng.lognormvariate(math.log(0.3), 0.8) * 1e9)
            if "gen_ai.response.time_to_first_chunk" in attrs:
                ttft_ns = int(rng.lognormvariate(math.log(0.45), 0.5) * 1e9)
                duration_ns += ttft_ns
                attrs["gen_ai.response.time_to_first_chunk"] = ttft_ns / 1e9
                if "gateway.stream.chunks" in attrs:
                    attrs["gateway.stream.chunks"] = tokens_out + 2
        start = self._when(rng, duration_ns)
        end = start + duration_ns
        events = [
            Event(e.name, e.attributes, start + ttft_ns if ttft_ns is not None and e.name != "exception" else end)
            for e in template.events
        ]
        context = SpanContext(rng.getrandbits(128) or 1, rng.getrandbits(64) or 1, False, TraceFlags(1))
        return ReadableSpan(
            name=template.name,
            context=context,
            parent=None,
            resource=template.resource,
            attributes=attrs,
            events=events,
            kind=template.kind,
            status=template.status,
            start_time=start,
            end_time=end,
            instrumentation_scope=template.instrumentation_scope,
        )


_USAGE_KEYS: dict[str, Any] = {
    "gen_ai.usage.input_tokens": lambda i, o, ci, co: i,
    "llm.token_count.prompt": lambda i, o, ci, co: i,
    "gen_ai.usage.output_tokens": lambda i, o, ci, co: o,
    "llm.token_count.completion": lambda i, o, ci, co: o,
    "llm.token_count.total": lambda i, o, ci, co: i + o,
    "gen_ai.usage.cost": lambda i, o, ci, co: round(ci + co, 9),
    "llm.cost.total": lambda i, o, ci, co: round(ci + co, 9),
    "llm.cost.prompt": lambda i, o, ci, co: round(ci, 9),
    "llm.cost.completion": lambda i, o, ci, co: round(co, 9),
    "gateway.cost.upstream_inference_prompt": lambda i, o, ci, co: round(ci, 9),
    "gateway.cost.upstream_inference_completions": lambda i, o, ci, co: round(co, 9),
}


def _set_usage(attrs: dict[str, Any], tokens_in: int, tokens_out: int, cost_in: float, cost_out: float) -> None:
    """Tokens and cost, under whichever of the known names the template carries (never a name it does not)."""
    for key, value in _USAGE_KEYS.items():
        if key in attrs:
            attrs[key] = value(tokens_in, tokens_out, cost_in, cost_out)
