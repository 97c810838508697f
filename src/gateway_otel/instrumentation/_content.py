"""Message content, normalised once into the GenAI "parts" shape, from which both conventions are written.

Requests arrive as the JSON body the openai client is about to send; responses as the SDK's pydantic objects or
as plain dicts (raw responses). `get` reads either. Text is cut to the configured cap with a visible marker, and
inline image or audio bytes are never kept: a placeholder says what was there and how big it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Message = dict[str, Any]
"""A message in the GenAI shape: ``{"role": ..., "parts": [...], "finish_reason"?: ..., "name"?: ...}``."""


def get(obj: Any, name: str, default: Any = None) -> Any:
    """`obj[name]` for a mapping, `obj.name` otherwise; `default` when absent.

    Hot path: the SDK's pydantic objects keep fields in `__dict__` and unknown keys (OpenRouter's `provider`,
    `usage.cost`) in `__pydantic_extra__`; reading those directly avoids pydantic's exception path for a key that
    is absent.
    """
    if type(obj) is dict:
        return obj.get(name, default)
    if obj is None:
        return default
    fields = getattr(obj, "__dict__", None)
    if fields is not None and name in fields:
        return fields[name]
    extra = getattr(obj, "__pydantic_extra__", _NOT_PYDANTIC)
    if extra is not _NOT_PYDANTIC:
        return extra.get(name, default) if extra else default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


_NOT_PYDANTIC = object()
_EMPTY: Mapping[str, Any] = {}


def fields(obj: Any) -> Mapping[str, Any]:
    """The declared fields of a pydantic object (its `__dict__`), a dict itself, else an empty mapping."""
    if type(obj) is dict:
        return obj
    found = getattr(obj, "__dict__", None)
    return found if type(found) is dict else _EMPTY


def cap(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a marker saying how much was dropped, and encodable (`encodable`)."""
    if len(text) <= limit:
        return encodable(text)
    return f"{encodable(text[:limit])}…[truncated {len(text) - limit} chars]"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD, so that it encodes as UTF-8.

    JSON can carry a lone `\\ud800` and Python decodes it into the string; the OTLP encoder then fails on it and
    drops the whole batch it was in, other calls' spans included. Only non-ASCII text pays for the check.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


def as_text(value: Any, limit: int) -> str:
    """Any content value as capped text (non-strings are shown with `str`)."""
    if not isinstance(value, str):
        value = "" if value is None else str(value)
    return cap(value, limit)


def _data_placeholder(url: str) -> str:
    """`data:image/png;base64,...` becomes a short description with the payload's decoded size."""
    head, _, payload = url.partition(",")
    mime = head[5:].split(";", 1)[0] or "application/octet-stream"
    size = len(payload) * 3 // 4 if ";base64" in head else len(payload)
    return f"[{mime} data omitted, {size} bytes]"


def _media_part(kind: str, url: Any, limit: int) -> dict[str, Any]:
    if isinstance(url, str) and url.startswith("data:"):
        mime = url[5:].split(";", 1)[0].split(",", 1)[0]
        return {"type": "blob", "modality": kind, "mime_type": mime, "content": _data_placeholder(url)}
    return {"type": "uri", "modality": kind, "uri": as_text(url, limit)}


def content_parts(content: Any, limit: int) -> list[dict[str, Any]]:
    """Chat or Responses content (a string or a list of typed parts) as GenAI parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": cap(content, limit)}]
    if not isinstance(content, (list, tuple)):
        return [{"type": "text", "content": as_text(content, limit)}]
    parts: list[dict[str, Any]] = []
    for item in content:
        kind = get(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append({"type": "text", "content": as_text(get(item, "text"), limit)})
        elif kind == "refusal":
            parts.append({"type": "text", "content": as_text(get(item, "refusal"), limit)})
        elif kind in ("image_url", "input_image"):
            image = get(item, "image_url")
            parts.append(_media_part("image", get(image, "url", image), limit))
        elif kind == "input_audio":
            audio = get(item, "input_audio")
            data = get(audio, "data") or ""
            size = len(data) * 3 // 4 if isinstance(data, str) else 0
            fmt = get(audio, "format") or "audio"
            parts.append(
                {
                    "type": "blob",
                    "modality": "audio",
                    "mime_type": f"audio/{fmt}",
                    "content": f"[audio omitted, {size} bytes]",
                }
            )
        elif kind in ("file", "input_file"):
            name = get(get(item, "file"), "filename") or get(item, "filename") or "file"
            parts.append({"type": "file", "modality": "file", "content": f"[file {as_text(name, 256)} omitted]"})
        else:
            parts.append({"type": str(kind or "unknown"), "content": f"[{kind or 'unknown'} part omitted]"})
    return parts


REASONING_KEYS = ("reasoning", "reasoning_content")
"""A message's (or delta's) reasoning text: OpenRouter's `reasoning`; DeepSeek's, vLLM's and LiteLLM's
`reasoning_content`."""
ENCRYPTED_REASONING = "[encrypted reasoning: not recorded]"
"""What an opaque `reasoning.encrypted` detail becomes: a placeholder that says so, never the blob."""


def reasoning_details_text(details: Any) -> tuple[str, bool]:
    """The text of OpenRouter's `reasoning_details` (`reasoning.text`'s `text`, `reasoning.summary`'s `summary`), and
    whether any detail was encrypted (`reasoning.encrypted`, opaque: its data is never read)."""
    texts: list[str] = []
    encrypted = False
    for detail in details if isinstance(details, (list, tuple)) else ():
        kind = get(detail, "type")
        if kind == "reasoning.encrypted":
            encrypted = True
            continue
        text = get(detail, "text") if kind == "reasoning.text" else get(detail, "summary")
        if isinstance(text, str) and text:
            texts.append(text)
    return "".join(texts), encrypted


def reasoning_part(message: Any, limit: int) -> dict[str, Any] | None:
    """The message's reasoning as a GenAI `reasoning` part, whichever spelling the gateway used; None without any.

    OpenRouter sends the text twice (`reasoning` and `reasoning.text` details): the string wins, the details fill in
    when it is absent; encrypted reasoning alone becomes `ENCRYPTED_REASONING`.
    """
    text: Any = None
    for key in REASONING_KEYS:
        text = get(message, key)
        if isinstance(text, str) and text:
            break
    else:
        text, encrypted = reasoning_details_text(get(message, "reasoning_details"))
        if not text:
            return {"type": "reasoning", "content": ENCRYPTED_REASONING} if encrypted else None
    return {"type": "reasoning", "content": as_text(text, limit)}


def tool_call_part(call_id: Any, name: Any, arguments: Any, limit: int) -> dict[str, Any]:
    return {
        "type": "tool_call",
        "id": as_text(call_id, 256),
        "name": as_text(name, 256),
        "arguments": as_text(arguments, limit),
    }


def chat_messages(messages: Any, limit: int) -> list[Message]:
    """Chat Completions request messages as GenAI messages."""
    if not isinstance(messages, (list, tuple)):
        return []
    out: list[Message] = []
    for message in messages:
        role = get(message, "role") or "user"
        if role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": as_text(get(message, "tool_call_id"), 256),
                    "response": as_text(_flat_text(get(message, "content")), limit),
                }
            ]
        else:
            parts = content_parts(get(message, "content"), limit)
            calls = get(message, "tool_calls")
            for call in calls if isinstance(calls, (list, tuple)) else ():
                function = get(call, "function")
                parts.append(tool_call_part(get(call, "id"), get(function, "name"), get(function, "arguments"), limit))
        normalised: Message = {"role": str(role), "parts": parts}
        name = get(message, "name")
        if isinstance(name, str):
            normalised["name"] = name
        out.append(normalised)
    return out


def _flat_text(content: Any) -> Any:
    if isinstance(content, (list, tuple)):
        return "".join(str(get(part, "text") or "") for part in content)
    return content


def prompt_messages(prompt: Any, limit: int) -> list[Message]:
    """A legacy completions prompt (a string or a list of strings) as user messages."""
    if isinstance(prompt, str):
        return [{"role": "user", "parts": [{"type": "text", "content": cap(prompt, limit)}]}]
    if isinstance(prompt, (list, tuple)) and all(isinstance(p, str) for p in prompt):
        return [{"role": "user", "parts": [{"type": "text", "content": cap(p, limit)}]} for p in prompt]
    if prompt is None:
        return []
    return [{"role": "user", "parts": [{"type": "text", "content": "[token ids omitted]"}]}]


def responses_input(items: Any, limit: int) -> list[Message]:
    """Responses API `input` (a string or a list of items) as GenAI messages."""
    if isinstance(items, str):
        return [{"role": "user", "parts": [{"type": "text", "content": cap(items, limit)}]}]
    if not isinstance(items, (list, tuple)):
        return []
    out: list[Message] = []
    for item in items:
        kind = get(item, "type")
        if kind == "function_call":
            out.append(
                {
                    "role": "assistant",
                    "parts": [tool_call_part(get(item, "call_id"), get(item, "name"), get(item, "arguments"), limit)],
                }
            )
        elif kind == "function_call_output":
            out.append(
                {
                    "role": "tool",
                    "parts": [
                        {
                            "type": "tool_call_response",
                            "id": as_text(get(item, "call_id"), 256),
                            "response": as_text(get(item, "output"), limit),
                        }
                    ],
                }
            )
        elif kind in (None, "message"):
            out.append({"role": str(get(item, "role") or "user"), "parts": content_parts(get(item, "content"), limit)})
        else:
            out.append({"role": "assistant", "parts": [{"type": str(kind), "content": f"[{kind} item]"}]})
    return out


def openinference_messages(prefix: str, messages: list[Message], budget: int) -> tuple[dict[str, Any], int]:
    """Flatten messages into `llm.input_messages.{i}.message.*` (or output) keys, at most `budget` keys.

    The latest messages matter most, so when the budget runs out the earliest ones are left out (they stay in
    the JSON of `gen_ai.input.messages`). Returns the attributes and how many messages were left out.
    """
    flattened: list[dict[str, Any]] = []
    used = 0
    for index in range(len(messages) - 1, -1, -1):
        attrs = _flatten_one(f"{prefix}.{index}.message.", messages[index])
        if used + len(attrs) > budget:
            return _merge_reversed(flattened), index + 1
        used += len(attrs)
        flattened.append(attrs)
    return _merge_reversed(flattened), 0


def _merge_reversed(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for chunk in reversed(chunks):
        merged.update(chunk)
    return merged


def _flatten_one(key: str, message: Message) -> dict[str, Any]:
    attrs: dict[str, Any] = {key + "role": message["role"]}
    if "name" in message:
        attrs[key + "name"] = message["name"]
    parts = message["parts"]
    content = [p for p in parts if p["type"] not in ("tool_call", "tool_call_response", "reasoning")]
    if len(content) == 1 and content[0]["type"] == "text":
        attrs[key + "content"] = content[0]["content"]
    else:
        for j, part in enumerate(content):
            part_key = f"{key}contents.{j}.message_content."
            if part["type"] == "text":
                attrs[part_key + "type"] = "text"
                attrs[part_key + "text"] = part["content"]
            elif part["type"] == "uri" and part.get("modality") == "image":
                attrs[part_key + "type"] = "image"
                attrs[part_key + "image.image.url"] = part["uri"]
            else:
                attrs[part_key + "type"] = "text"
                attrs[part_key + "text"] = str(part.get("content", ""))
    k = 0
    for part in parts:  # only the parts built here: a request's own part may claim one of these types
        if part["type"] == "tool_call" and "arguments" in part:
            call_key = f"{key}tool_calls.{k}.tool_call."
            attrs[call_key + "id"] = part["id"]
            attrs[call_key + "function.name"] = part["name"]
            attrs[call_key + "function.arguments"] = part["arguments"]
            k += 1
        elif part["type"] == "tool_call_response" and "response" in part:
            attrs[key + "tool_call_id"] = part["id"]
            attrs[key + "content"] = part["response"]
    return attrs
