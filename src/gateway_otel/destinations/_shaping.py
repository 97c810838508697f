"""What one backend reads beyond the conventions, added to that destination's copy of a span only.

Every span carries the GenAI and OpenInference attributes; a backend that needs more gets it here, on its own
destination's copy (on the exporting thread), so other destinations and the application's call pay nothing for it.

**OpenObserve** (read from its source, openobserve/openobserve at fbab9b80; `docs/backends.md` has the details):

- Its trace sidebar renders each message's `content` only — a string, or a list of `{"type": "text", "text": ...}`
  parts (`web/src/plugins/traces/LLMContentRenderer.vue`, `formatContent`) — so a GenAI message carrying only
  `parts` shows an empty body. Each message of `gen_ai.input.messages` / `gen_ai.output.messages` gets a `content`
  string beside its `parts`: its text parts joined (a message with only tool calls names them).
- The cost split is read from `gen_ai.usage.cost.input` / `gen_ai.usage.cost.output` (`web/src/utils/llmUtils.ts`,
  cost input/output); ingest derives them only when it prices a call itself, never from a cost we send
  (`src/core/src/traces/otel/processor.rs`). They come from OpenInference's `llm.cost.prompt` / `llm.cost.completion`.
- Cache-creation tokens are read as `gen_ai.usage.cache_creation.input_tokens`, the released registry's name
  (`src/core/src/traces/otel/extractors/usage.rs`); util-genai's `gen_ai.usage.cache_write.input_tokens` is not read.
- The model-parameters panel reads the column `llm_request_parameters` (`TraceDetailsSidebar.vue`): the attribute
  `llm.request.parameters`, the request parameters as a JSON object.
- The sidebar's time to first token is `gen_ai_completion_start_time − start_time`, the column in absolute epoch
  microseconds (`TraceDetailsSidebar.vue`); nothing at ingest writes it, and an attribute of that exact key is stored
  as that column. (`langfuse.observation.completion_start_time` would be converted into epoch seconds by ingest.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .._semconv import INPUT_MESSAGES, OUTPUT_MESSAGES

__all__ = ["SHAPERS", "Shaper", "openobserve_attributes"]

Shaper = Callable[[Mapping[str, Any], int], dict[str, Any]]
"""(span attributes, span start in ns) → the attributes of the destination's copy."""

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_COPIED = (
    ("llm.cost.prompt", "gen_ai.usage.cost.input"),
    ("llm.cost.completion", "gen_ai.usage.cost.output"),
    ("gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens"),
    ("llm.invocation_parameters", "llm.request.parameters"),
)
OPENOBSERVE_TTFT = "gen_ai_completion_start_time"
"""The stored column OpenObserve's sidebar computes time to first token from (absolute epoch µs)."""


def _message_text(message: Mapping[str, Any]) -> str:
    """What a GenAI message says, as the text OpenObserve shows: its text parts, else the tools it calls."""
    texts, calls = [], []
    for part in message.get("parts") or ():
        if type(part) is not dict:  # `type` rather than `isinstance(.., Mapping)`: ~1 µs less per part
            continue
        kind = part.get("type")
        if kind == "text":
            content = part.get("content")
            if type(content) is str:
                texts.append(content)
        elif kind == "tool_call":
            arguments = part.get("arguments")
            text = arguments if isinstance(arguments, str) else "" if arguments is None else _JSON.encode(arguments)
            calls.append(f"{part.get('name')}({text})")
        elif kind == "tool_call_response" and part.get("response") is not None:
            response = part["response"]
            texts.append(response if isinstance(response, str) else _JSON.encode(response))
    if texts:
        return texts[0] if len(texts) == 1 else "\n".join(texts)
    return "calls " + ", ".join(calls) if calls else ""


def _with_content(encoded: Any) -> Any:
    """GenAI messages (JSON) with a `content` string beside each message's `parts`; as they were when they are
    not a JSON list of messages (cut at the content limit, or another shape)."""
    if not isinstance(encoded, str) or not encoded.startswith("["):
        return encoded
    try:
        messages = json.loads(encoded)
    except ValueError:
        return encoded
    if type(messages) is not list:
        return encoded
    for message in messages:
        if type(message) is not dict:
            return encoded
        if "content" not in message and type(message.get("parts")) is list:
            message["content"] = _message_text(message)
    return _JSON.encode(messages)


def openobserve_attributes(attributes: Mapping[str, Any], start_ns: int) -> dict[str, Any]:
    """`attributes` with what OpenObserve's LLM views read added (see the module's docstring)."""
    shaped = dict(attributes)
    for key in (INPUT_MESSAGES, OUTPUT_MESSAGES):
        if key in shaped:
            shaped[key] = _with_content(shaped[key])
    for source, target in _COPIED:
        value = shaped.get(source)
        if value is not None and target not in shaped:
            shaped[target] = value
    ttft = shaped.get("gen_ai.response.time_to_first_chunk")
    if isinstance(ttft, (int, float)) and not isinstance(ttft, bool) and ttft >= 0 and start_ns:
        shaped[OPENOBSERVE_TTFT] = round(start_ns / 1000 + ttft * 1_000_000)  # the first chunk, epoch µs
    return shaped


SHAPERS: dict[str, Shaper] = {"openobserve": openobserve_attributes}
"""Destination types whose copy of a span is shaped, by preset name."""
