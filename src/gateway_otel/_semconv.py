"""Attribute names that more than one module must agree on, and the one lift from span attributes to a row.

- **Content**: which attributes carry prompts, completions, tool schemas and embeddings input. Privacy mode (the
  destination processor, the failure log records) drops exactly these, so a content attribute added to the producers
  is private as soon as its name is covered here, and nowhere else needs to know.
- **The lift**: the LLM fields of a stored or queried span (model, provider, tokens, cost, time to first token,
  session), read from the GenAI names first, then the OpenInference ones. The local store's writer and the
  OpenObserve and Phoenix readers all use it, so one span gives the same row wherever it is read from.

Attribute names used by one module only stay literals where they are used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CONTENT_KEYS",
    "CONTENT_PREFIXES",
    "FAILURE_LOG_CONTENT",
    "GENERATION_EVENT",
    "GENERATION_PREFIX",
    "INPUT_MESSAGES",
    "LIFTED_FIELDS",
    "OUTPUT_MESSAGES",
    "is_content",
    "lift",
    "project_of",
    "without_content",
]

# --- content ------------------------------------------------------------------------------------------------------

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"

CONTENT_KEYS = frozenset(
    {
        INPUT_MESSAGES,
        OUTPUT_MESSAGES,
        SYSTEM_INSTRUCTIONS,
        TOOL_DEFINITIONS,
        "input.value",
        "output.value",
        "input.mime_type",
        "output.mime_type",
    }
)
"""Attributes that are content (or only describe content) in themselves."""
CONTENT_PREFIXES = ("llm.input_messages.", "llm.output_messages.", "llm.tools.", "embedding.embeddings.")
"""OpenInference's flattened content: every attribute under these prefixes is content."""
FAILURE_LOG_CONTENT = (INPUT_MESSAGES, SYSTEM_INSTRUCTIONS, OUTPUT_MESSAGES)
"""The content a failed call's log record carries (the prompt that failed, what a broken stream delivered)."""


GENERATION_EVENT = "gateway.openrouter.generation"
"""The event name (and body) of the log record that carries OpenRouter's final record of a generation; the
instrumentation emits it, the local store reads it to update the call's row."""
GENERATION_PREFIX = "gateway.openrouter.generation."
"""The prefix of that record's attribute names (`...total_cost`, `...native_tokens_prompt`...)."""


def is_content(key: str) -> bool:
    """True for an attribute that carries a prompt, a completion, a tool schema or embeddings input."""
    return key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES)


def without_content(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """`attributes` minus every content attribute (privacy mode)."""
    return {k: v for k, v in attributes.items() if not is_content(k)}


# --- the lift -----------------------------------------------------------------------------------------------------

_MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "embedding.model_name")
_PROVIDER = ("gateway.upstream.provider", "gen_ai.provider.name", "llm.provider")
_INPUT_TOKENS = ("gen_ai.usage.input_tokens", "llm.token_count.prompt")
_OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "llm.token_count.completion")
_COST = ("gen_ai.usage.cost", "llm.cost.total")
COST_SOURCE = "gateway.cost.source"
"""Where a call's cost came from: `gateway` (reported) or `price_table` (priced by us, `_prices`)."""
_SESSION = ("session.id", "gen_ai.conversation.id")
_TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk",)
_INT64 = 1 << 63

LIFTED_FIELDS = (
    "operation",
    "model",
    "request_model",
    "provider",
    "gateway",
    "input_tokens",
    "output_tokens",
    "cost",
    "time_to_first_token_ms",
    "session_id",
    "cost_source",
)
"""The fields `lift` returns, in this order (the `SpanRow` fields of the same names)."""


def _same(name: str) -> str:
    return name


def _first(attrs: Mapping[str, Any], key: Callable[[str], str], names: tuple[str, ...]) -> Any:
    for name in names:
        value = attrs.get(name if key is _same else key(name))  # the store's own names: no call per name
        if value is not None and value != "":
            return value
    return None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, int) else int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if -_INT64 <= number < _INT64 else None  # a count SQLite could not store is no count


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def lift(attrs: Mapping[str, Any], key: Callable[[str], str] = _same) -> dict[str, Any]:
    """The LLM fields of a span (`LIFTED_FIELDS`) from its attributes; `key` spells an attribute name the way a
    backend stores it (OpenObserve flattens `gen_ai.usage.input_tokens` to `gen_ai_usage_input_tokens`)."""
    ttft_seconds = _float(_first(attrs, key, _TTFT_SECONDS))
    cost = _float(_first(attrs, key, _COST))
    return {
        "operation": _str(_first(attrs, key, ("gen_ai.operation.name",))),
        "model": _str(_first(attrs, key, _MODEL)),
        "request_model": _str(_first(attrs, key, ("gen_ai.request.model",))),
        "provider": _str(_first(attrs, key, _PROVIDER)),
        "gateway": _str(_first(attrs, key, ("gateway.name",))),
        "input_tokens": _int(_first(attrs, key, _INPUT_TOKENS)),
        "output_tokens": _int(_first(attrs, key, _OUTPUT_TOKENS)),
        "cost": cost,
        "time_to_first_token_ms": None if ttft_seconds is None else ttft_seconds * 1000,
        "session_id": _str(_first(attrs, key, _SESSION)),
        "cost_source": _str(_first(attrs, key, (COST_SOURCE,))) if cost is not None else None,
    }


def project_of(attributes: Mapping[str, Any], resource: Mapping[str, Any]) -> str | None:
    """The project a span or log record belongs to: OpenInference's project name, else the service name."""
    for value in (
        attributes.get("openinference.project.name"),
        resource.get("openinference.project.name"),
        resource.get("service.name"),
    ):
        if isinstance(value, str) and value:
            return value
    return None
