"""OpenObserve's own rules for LLM spans, restated from its source (openobserve/openobserve at fbab9b80) so the tests
can apply them to the bytes the `openobserve` destination really sends. Written from reading, not from our code:

- ingest (`src/core/src/traces/otel/`): keys are flattened to columns (`[^a-z0-9_]` → `_`); any key beginning
  `gen_ai.prompt` or `gen_ai.completion` is legacy Traceloop content that replaces the messages
  (`extractors/input_output.rs`); tokens, cache read/creation, cost and its input/output split, user and session are
  read from the names below (`extractors/usage.rs`, `metadata.rs`); nothing writes `gen_ai_completion_start_time`.
- the trace sidebar (`web/src/plugins/traces/TraceDetailsSidebar.vue`, `LLMContentRenderer.vue`): each message shows
  its `content` only (a string, or `{"type": "text", "text": ...}` parts; any other part is shown as raw JSON); the
  parameters panel shows `llm_request_parameters`; TTFT = `gen_ai_completion_start_time` − `start_time` in µs.
- the first user message, as the session list's preview shows it (`src/api/search/src/traces/session.rs`).
"""

from __future__ import annotations

import json
import re
from typing import Any

LEGACY_PREFIXES = ("gen_ai.prompt", "gen_ai.completion")
_CACHE_CREATION = ("gen_ai.usage.cache_creation.input_tokens", "cache_creation_input_tokens",
                   "gen_ai.usage.cache_write_tokens")  # fmt: skip
_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "cache_read_input_tokens",
               "gen_ai.usage.prompt_tokens_details.cached_tokens", "gen_ai.usage.cache_read_tokens")  # fmt: skip


def column(key: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", key.lower())


def _first(attrs: dict[str, Any], names: tuple[str, ...]) -> Any:
    return next((attrs[n] for n in names if n in attrs), None)


def ingest(attrs: dict[str, Any], start_ns: int) -> dict[str, Any]:
    """The stored row's LLM columns for a span with these attributes."""
    legacy = [k for k in attrs if k.startswith(LEGACY_PREFIXES)]
    row: dict[str, Any] = {
        "start_time": start_ns,
        "legacy_content_keys": legacy,
        "gen_ai_input_messages": None if legacy else attrs.get("gen_ai.input.messages"),
        "gen_ai_output_messages": None if legacy else attrs.get("gen_ai.output.messages"),
        "gen_ai_provider_name": _first(attrs, ("gen_ai.provider.name", "gen_ai.system")),
        "gen_ai_response_model": _first(attrs, ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")),
        "gen_ai_usage_input_tokens": _first(attrs, ("gen_ai.usage.input_tokens", "llm.token_count.prompt")),
        "gen_ai_usage_output_tokens": _first(attrs, ("gen_ai.usage.output_tokens", "llm.token_count.completion")),
        "gen_ai_usage_cache_read_input_tokens": _first(attrs, _CACHE_READ),
        "gen_ai_usage_cache_creation_input_tokens": _first(attrs, _CACHE_CREATION),
        "gen_ai_usage_cost": attrs.get("gen_ai.usage.cost"),
        "gen_ai_usage_cost_input": attrs.get("gen_ai.usage.cost.input"),
        "gen_ai_usage_cost_output": attrs.get("gen_ai.usage.cost.output"),
        "user_id": attrs.get("user.id"),
        "session_id": _first(attrs, ("session.id", "gen_ai.conversation.id")),
        "llm_request_parameters": attrs.get("llm.request.parameters"),
        "gen_ai_completion_start_time": attrs.get("gen_ai_completion_start_time"),  # only this exact key
    }
    tokens = [row["gen_ai_usage_input_tokens"], row["gen_ai_usage_output_tokens"]]
    row["gen_ai_usage_total_tokens"] = attrs.get("gen_ai.usage.total_tokens") or (
        sum(tokens) if None not in tokens else None
    )
    return row


def _content_text(content: Any) -> str:
    """`formatContent`: a string as it is; text parts' `text`; any other part (or object) as JSON."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"] if isinstance(p, dict) and p.get("type") == "text" and "text" in p else json.dumps(p)
            for p in content
        )
    return "" if content is None else json.dumps(content)


def sidebar_messages(encoded: str | None) -> list[tuple[str, str]]:
    """(role, the text shown) per message, as the sidebar renders a messages column."""
    if not encoded:
        return []
    messages = json.loads(encoded)
    return [(m.get("role", ""), _content_text(m.get("content"))) for m in messages if isinstance(m, dict)]


def sidebar_ttft_us(row: dict[str, Any]) -> float | None:
    start = row["gen_ai_completion_start_time"]
    return None if start is None else start - row["start_time"] / 1000


def first_user_message(encoded: str | None) -> str | None:
    """The session list's preview: the first user message's `content`, `text`, or its text `parts`."""
    for message in json.loads(encoded) if encoded else ():
        if isinstance(message, dict) and message.get("role") in ("user", "human"):
            if isinstance(message.get("content"), str):
                return str(message["content"])[:400]
            if isinstance(message.get("text"), str):
                return str(message["text"])[:400]
            parts = [p.get("content") or p.get("text") for p in message.get("parts") or () if p.get("type") == "text"]
            return "\n".join(str(p) for p in parts)[:400] if parts else None
    return None
