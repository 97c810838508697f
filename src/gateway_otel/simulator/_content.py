"""Deterministic content: what the simulated model says, how many tokens it used and what that cost.

Every value is a pure function of the request, so a test can predict what it asserts on and two runs of the same
script produce the same telemetry (only `created` follows the simulator's clock).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Upstream provider display name by model prefix, as OpenRouter reports it in the top-level `provider` field.
_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("openai/", "OpenAI"),
    ("anthropic/", "Anthropic"),
    ("google/", "Google AI Studio"),
    ("meta-llama/", "DeepInfra"),
    ("qwen/", "Chutes"),
)
DEFAULT_PROVIDER = "DeepInfra"

# OpenRouter reports the model slug without its routing variant (`openai/gpt-oss-20b:free` -> `openai/gpt-oss-20b`).
_VARIANTS = frozenset({"free", "nitro", "floor", "online", "extended", "thinking", "exacto"})
# Router models answer with the model they picked.
_ROUTED = {"openrouter/auto": "openai/gpt-4o-mini"}

# finish_reason is normalised by OpenRouter; native_finish_reason is what the upstream provider said.
_NATIVE_FINISH: dict[str, dict[str, str]] = {
    "Anthropic": {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"},
    "Google AI Studio": {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"},
}

PROMPT_PRICE = 1e-6  # USD per prompt token
COMPLETION_PRICE = 2e-6  # USD per completion token (reasoning included)
EMBEDDING_PRICE = 2e-8  # USD per embedded token
CACHE_READ_FACTOR = 0.25  # cached prompt tokens are billed at a quarter of the price
CACHE_WRITE_FACTOR = 1.25  # cache writes cost a quarter more
LONG_PROMPT_TOKENS = 64  # from this prompt size on, half of the prompt is reported as read from the cache
REASONING_TOKENS_PER_CHOICE = 16  # hidden reasoning reported by `gpt-oss` / `reasoning` models
TOKENS_PER_MESSAGE = 4  # the chat template's overhead per message
SNIPPET_CHARS = 60


def served_model(requested: str) -> str:
    """The model slug OpenRouter reports: routers resolved, the `:variant` suffix dropped."""
    base, sep, variant = requested.rpartition(":")
    model = base if sep and variant in _VARIANTS else requested
    return _ROUTED.get(model, model)


def provider_for(model: str) -> str:
    """The upstream provider display name for a served model slug."""
    return next((name for prefix, name in _PROVIDERS if model.startswith(prefix)), DEFAULT_PROVIDER)


def native_finish_reason(provider: str, finish_reason: str) -> str:
    """The provider's own spelling of a normalised finish reason."""
    return _NATIVE_FINISH.get(provider, {}).get(finish_reason, finish_reason)


def pieces(text: str) -> list[str]:
    """Split text into word-sized stream deltas that join back to the text; also the token unit."""
    return re.findall(r"\s*\S+", text)


def count_tokens(text: str) -> int:
    """Whitespace words: crude, but predictable."""
    return len(text.split())


def text_of(content: object) -> str:
    """The text of a message content: a string, or the `text` of its parts (multimodal parts are skipped)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return " ".join(p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def snippet(text: str) -> str:
    """The first characters of a text on one line, to echo it back in a reply."""
    return " ".join(text.split())[:SNIPPET_CHARS]


@dataclass(frozen=True)
class Conversation:
    """What a reply depends on, normalised from chat messages, a Responses API input or a completion prompt."""

    texts: tuple[str, ...]
    """Text of every message (for the prompt token count)."""
    last_role: str
    last_user_text: str
    last_tool_output: str

    @property
    def prompt_tokens(self) -> int:
        return sum(count_tokens(t) + TOKENS_PER_MESSAGE for t in self.texts)


def conversation_from_messages(messages: Sequence[Mapping[str, Any]]) -> Conversation:
    """Normalise chat messages; tool results are `role: tool` messages."""
    turns = [(str(m.get("role", "user")), text_of(m.get("content")) + _tool_call_text(m)) for m in messages]
    return _conversation(turns)


def conversation_from_input(items: str | Sequence[Any], instructions: str | None = None) -> Conversation:
    """Normalise a Responses API `input` (a string or a list of items) plus its `instructions`."""
    turns: list[tuple[str, str]] = [("system", instructions)] if instructions else []
    for item in [items] if isinstance(items, str) else items:
        if isinstance(item, str):
            turns.append(("user", item))
        elif isinstance(item, Mapping) and item.get("type") == "function_call_output":
            turns.append(("tool", text_of(item.get("output"))))
        elif isinstance(item, Mapping) and item.get("type") == "function_call":
            turns.append(("assistant", str(item.get("arguments", ""))))
        elif isinstance(item, Mapping):
            turns.append((str(item.get("role", "user")), text_of(item.get("content"))))
    return _conversation(turns)


def conversation_from_prompt(prompt: object) -> Conversation:
    """Normalise a legacy completion prompt: a string, a list of strings (joined) or token ids."""
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, Sequence):
        text = "\n".join(p if isinstance(p, str) else " ".join(map(str, _flatten(p))) for p in prompt)
    else:
        text = ""
    return _conversation([("user", text)])


def _conversation(turns: Sequence[tuple[str, str]]) -> Conversation:
    last_user = next((text for role, text in reversed(turns) if role == "user"), "")
    last_role, last_text = turns[-1] if turns else ("user", "")
    return Conversation(tuple(t for _, t in turns), last_role, last_user, last_text if last_role == "tool" else "")


def _tool_call_text(message: Mapping[str, Any]) -> str:
    calls = message.get("tool_calls") or []
    return "".join(f" {c.get('function', {}).get('arguments', '')}" for c in calls if isinstance(c, Mapping))


def _flatten(value: object) -> list[object]:
    return [value] if not isinstance(value, Sequence) or isinstance(value, str) else list(value)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Choice:
    """One generated choice: text or a single tool call, and the normalised finish reason."""

    index: int
    text: str | None
    tool_call: ToolCall | None
    finish_reason: str

    @property
    def tokens(self) -> int:
        if self.tool_call is not None:
            return len(pieces(self.tool_call.arguments)) + 1
        return len(pieces(self.text or ""))


def plan_choices(
    conversation: Conversation,
    *,
    call_id: str,
    n: int = 1,
    max_tokens: int | None = None,
    tools: Sequence[Mapping[str, Any]] = (),
    tool_choice: object = "auto",
    prefix: str = "Simulated reply",
) -> list[Choice]:
    """Decide what each of the `n` choices says: a tool call to answer a user turn when tools are offered, else text."""
    tool = _pick_tool(tools, tool_choice) if conversation.last_role == "user" else None
    choices = []
    for index in range(max(1, n)):
        if tool is not None:
            arguments = json.dumps(sample_object(tool.get("parameters") or {}))
            call = ToolCall(f"{call_id}_{index}", str(tool.get("name", "tool")), arguments)
            choices.append(Choice(index, None, call, "tool_calls"))
            continue
        text, finish = _reply_text(conversation, index, prefix), "stop"
        words = pieces(text)
        if max_tokens is not None and len(words) > max(1, max_tokens):
            text, finish = "".join(words[: max(1, max_tokens)]), "length"
        choices.append(Choice(index, text, None, finish))
    return choices


def _reply_text(conversation: Conversation, index: int, prefix: str) -> str:
    label = prefix if index == 0 else f"{prefix} #{index + 1}"
    if conversation.last_role == "tool":
        return f"{label} using the tool result: {snippet(conversation.last_tool_output)}"
    return f"{label} to: {snippet(conversation.last_user_text)}"


def _pick_tool(tools: Sequence[Mapping[str, Any]], tool_choice: object) -> Mapping[str, Any] | None:
    """The function a forced `tool_choice` names, else the first function tool; none for `tool_choice: none`."""
    if tool_choice == "none":
        return None
    functions = [
        t.get("function", t) for t in tools if isinstance(t, Mapping) and t.get("type", "function") == "function"
    ]
    if isinstance(tool_choice, Mapping):
        wanted = tool_choice.get("function", tool_choice).get("name")
        return next((f for f in functions if f.get("name") == wanted), None)
    return functions[0] if functions else None


_SAMPLE_STRINGS: tuple[tuple[str, str], ...] = (
    ("location", "Paris, France"),
    ("city", "Paris"),
    ("country", "France"),
    ("date", "2025-01-01"),
    ("time", "12:00"),
    ("email", "user@example.com"),
    ("url", "https://example.com"),
    ("unit", "celsius"),
    ("lang", "en"),
    ("name", "Ada Lovelace"),
    ("query", "OpenTelemetry"),
)


def sample_object(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Plausible arguments for a JSON schema object: every required property filled in."""
    properties = schema.get("properties") or {}
    required = schema.get("required") or []
    return {name: sample_value(name, properties.get(name) or {}) for name in required if isinstance(name, str)}


def sample_value(name: str, schema: Mapping[str, Any]) -> Any:
    """A plausible value for one property, from its enum, default, type and name."""
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return sample_object(schema)
    if kind == "array":
        return [sample_value(name, schema.get("items") or {})]
    simple: dict[str, Any] = {"integer": 1, "number": 1.5, "boolean": True, "null": None}
    if kind in simple:
        return simple[kind]
    return next((value for key, value in _SAMPLE_STRINGS if key in name.lower()), f"sample {name}")


@dataclass(frozen=True)
class SimulatedUsage:
    """Token counts and cost of one generation, in OpenRouter's terms."""

    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    prompt_cost: float
    completion_cost: float

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> float:
        return round(self.prompt_cost + self.completion_cost, 12)


def is_reasoning_model(model: str) -> bool:
    return "gpt-oss" in model or "reasoning" in model or "deepseek-r1" in model


def reasoning_spelling(model: str) -> str | None:
    """How a reasoning model's thinking is sent: `reasoning_content` (DeepSeek R1, as DeepSeek, vLLM and the LiteLLM
    proxy spell it), else OpenRouter's `reasoning` with `reasoning_details`; None for a model that does not reason."""
    if not is_reasoning_model(model):
        return None
    return "reasoning_content" if "deepseek-r1" in model else "reasoning"


def reasoning_for(text: str | None) -> str:
    """The simulated thinking that precedes an answer: deterministic, a few words per answer."""
    words = len(pieces(text or ""))
    return f"The user wants an answer. I will reply in {words} words, briefly and politely."


def usage_for(requested_model: str, prompt_tokens: int, choices: Sequence[Choice]) -> SimulatedUsage:
    """Count and price a generation: long prompts hit the cache, reasoning models think, `:free` costs nothing."""
    model = served_model(requested_model)
    reasoning = REASONING_TOKENS_PER_CHOICE * len(choices) if is_reasoning_model(model) else 0
    completion = sum(c.tokens for c in choices) + reasoning
    cached = prompt_tokens // 2 if prompt_tokens >= LONG_PROMPT_TOKENS else 0
    cache_write = prompt_tokens // 4 if cached and provider_for(model) == "Anthropic" else 0
    free = requested_model.endswith(":free")
    prompt_price, completion_price = (0.0, 0.0) if free else (PROMPT_PRICE, COMPLETION_PRICE)
    uncached = prompt_tokens - cached - cache_write
    prompt_cost = prompt_price * (uncached + cached * CACHE_READ_FACTOR + cache_write * CACHE_WRITE_FACTOR)
    return SimulatedUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        prompt_cost=round(prompt_cost, 12),
        completion_cost=round(completion_price * completion, 12),
    )


def embedding_inputs(value: object) -> list[tuple[str, int]]:
    """(text, tokens) per input: a string, a list of strings, a token list or a list of token lists."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value:
        return []
    if all(isinstance(v, int) for v in value):
        value = [value]
    items = []
    for item in value:
        if isinstance(item, str):
            items.append((item, max(1, count_tokens(item))))
        else:
            tokens = _flatten(item)
            items.append((" ".join(map(str, tokens)), max(1, len(tokens))))
    return items


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector from a hash of the text, rounded to float32 so the float and base64 forms agree."""
    raw = b"".join(hashlib.sha256(f"{i}:{text}".encode()).digest() for i in range(math.ceil(dimensions / 16)))
    values = [int.from_bytes(raw[2 * i : 2 * i + 2], "little") / 32767.5 - 1.0 for i in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(v / norm for v in values))))
