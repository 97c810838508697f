"""Span rows read as traces: one summary per trace, its root, and what a call said (prompt, answer, error).

Pure functions of `SpanRow`s, the same for every backend, for the commands that show traces to a person. A row's
attributes are spelled as its backend stores them (dotted, or OpenObserve's flattened column names); both are read.
Content is absent in privacy mode or without `detail`: then the excerpts are None, never an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._prices import PRICE_TABLE
from .._semconv import INPUT_MESSAGES, OUTPUT_MESSAGES
from ._metrics import is_inference
from ._model import CostSources, SpanRow, total_tokens
from ._openobserve import column

__all__ = ["TraceSummary", "answer_text", "error_type", "matches", "prompt_text", "root_of", "summarize"]


@dataclass(frozen=True)
class TraceSummary:
    """One trace: when it started, how long it ran, its root, and its LLM calls added up."""

    trace_id: str
    start_time: datetime
    duration_ms: float  # from the first span's start to the last span's end
    root: str  # the root span's name; an LLM call's operation (`chat`) when the call is the root
    spans: int
    calls: int  # LLM calls (spans with a model or a GenAI operation)
    models: tuple[str, ...]  # the calls' models, in the order first called
    errors: int  # spans with status error
    error_types: tuple[str, ...]  # their `error.type`s, when the rows carry attributes
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    cost_sources: CostSources = field(default_factory=CostSources)
    """Where `cost` came from: the gateway, the price table, or both."""

    @property
    def status(self) -> str:
        return "error" if self.errors else "ok"

    @property
    def total_tokens(self) -> int | None:
        return total_tokens(self.input_tokens, self.output_tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "start_time": self.start_time.isoformat(),
            "duration_ms": self.duration_ms,
            "root": self.root,
            "spans": self.spans,
            "calls": self.calls,
            "models": list(self.models),
            "status": self.status,
            "errors": self.errors,
            "error_types": list(self.error_types),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            "cost_sources": self.cost_sources.to_dict(),
        }


def attribute(row: SpanRow, name: str) -> Any:
    """An attribute of `row` by its dotted name, whichever spelling its backend keeps; None when absent."""
    value = row.attributes.get(name)
    return row.attributes.get(column(name)) if value is None else value


def error_type(row: SpanRow) -> str | None:
    value = attribute(row, "error.type")
    return None if value in (None, "") else str(value)


def root_of(spans: Sequence[SpanRow]) -> SpanRow:
    """The earliest span of a trace whose parent is not among its spans (its parent may live in another service)."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_span_id not in ids] or list(spans)
    return min(roots, key=lambda s: s.start_time)


def _sum(values: Iterable[float | None]) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def summary(spans: Sequence[SpanRow]) -> TraceSummary:
    """The summary of one trace's spans (at least one)."""
    ordered = sorted(spans, key=lambda s: s.start_time)
    calls = [s for s in ordered if is_inference(s)]
    errors = [s for s in ordered if s.status == "error"]
    root = root_of(ordered)
    start, end = ordered[0].start_time, max(s.end_time for s in ordered)
    return TraceSummary(
        trace_id=root.trace_id,
        start_time=start,
        duration_ms=(end - start).total_seconds() * 1000,
        root=(root.operation or root.name) if is_inference(root) else root.name,
        spans=len(ordered),
        calls=len(calls),
        models=tuple(dict.fromkeys(s.model for s in calls if s.model)),
        errors=len(errors),
        error_types=tuple(dict.fromkeys(t for t in map(error_type, errors) if t)),
        input_tokens=_sum(s.input_tokens for s in calls),
        output_tokens=_sum(s.output_tokens for s in calls),
        cost=_sum(s.cost for s in calls),
        cost_sources=cost_sources_of(calls),
    )


def cost_sources_of(calls: Iterable[SpanRow]) -> CostSources:
    """Where the cost of `calls` came from (`SpanRow.cost_source`; a cost that does not say is the gateway's)."""
    costed = [s for s in calls if s.cost is not None]
    priced = [s.cost for s in costed if s.cost_source == PRICE_TABLE]
    return CostSources(len(costed), len(priced), float(sum(priced)))  # type: ignore[arg-type]


def group(spans: Iterable[SpanRow]) -> dict[str, list[SpanRow]]:
    """Spans by trace id, in the order each trace first appears."""
    traces: dict[str, list[SpanRow]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    return traces


def summarize(spans: Iterable[SpanRow]) -> list[TraceSummary]:
    """One summary per trace among `spans`, newest first (by the trace's first span)."""
    summaries = [summary(members) for members in group(spans).values()]
    return sorted(summaries, key=lambda t: (t.start_time, t.trace_id), reverse=True)


def matches(spans: Sequence[SpanRow], model: str | None, status: str | None) -> bool:
    """True when one LLM call of the trace is of `model` and has `status` (each when given)."""
    if model is None and status is None:
        return True
    return any(
        is_inference(s) and model in (None, s.model, s.request_model) and status in (None, s.status) for s in spans
    )


# --- what a call said ---------------------------------------------------------------------------------------------


def _messages(row: SpanRow, genai: str, flattened: str) -> list[Mapping[str, Any]]:
    """A call's messages in the GenAI shape (`{"role", "parts": [...]}`), from the GenAI attribute, else from
    OpenInference's flattened `llm.*_messages.<i>.message.role/content` (kept when the JSON was cut short)."""
    raw = attribute(row, genai)
    if isinstance(raw, str):
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if isinstance(decoded, list):
            return [m for m in decoded if isinstance(m, dict)]
    messages = []
    for i in range(10_000):
        role, content = (attribute(row, f"{flattened}.{i}.message.{key}") for key in ("role", "content"))
        if role is None and content is None:
            break
        messages.append({"role": role, "parts": [{"type": "text", "content": content}]})
    return messages


def _text(message: Mapping[str, Any]) -> str | None:
    """A message's text parts joined, else the tools it calls (`get_weather({"city": "Paris"})`)."""
    parts = [p for p in message.get("parts") or () if isinstance(p, dict)]
    texts = [p["content"] for p in parts if p.get("type") == "text" and isinstance(p.get("content"), str)]
    if any(t.strip() for t in texts):
        return " ".join(texts)
    calls = [f"{p.get('name')}({p.get('arguments') or ''})" for p in parts if p.get("type") == "tool_call"]
    return "calls " + ", ".join(calls) if calls else None


def prompt_text(row: SpanRow) -> str | None:
    """The last user message of the call, when its content was recorded."""
    users = [m for m in _messages(row, INPUT_MESSAGES, "llm.input_messages") if m.get("role") == "user"]
    return _text(users[-1]) if users else None


def answer_text(row: SpanRow) -> str | None:
    """The call's first answer (choice), when its content was recorded."""
    answers = _messages(row, OUTPUT_MESSAGES, "llm.output_messages")
    return _text(answers[0]) if answers else None
