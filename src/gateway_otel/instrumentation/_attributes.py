"""Records → span attributes, both conventions at once: OpenTelemetry GenAI (`gen_ai.*`) and OpenInference
(`llm.*`, `openinference.span.kind`, `input.value`...), plus the gateway facts no convention defines (`gateway.*`).

Small pure functions, each returning a dict in the order of importance. Values that were not sent or received are
left out, never invented.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .. import _secrets
from .._prices import SOURCE as COST_SOURCE
from ..gateways import Gateway, HeaderFacts
from ._content import Message, cap, encodable, get, openinference_messages
from ._endpoints import Endpoint
from ._response import ResponseRecord, Usage, int64

Attributes = dict[str, Any]

# Request parameters: body key → GenAI attribute. Numbers only; a value of another type is left out.
_NUMERIC_PARAMS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
)
_MAX_TOKENS_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# Keys of the request body that are content or routing, not invocation parameters.
_NOT_PARAMETERS = frozenset(
    {
        "messages",
        "prompt",
        "input",
        "instructions",
        "tools",
        "functions",
        "model",
        "metadata",
        "user",
        "session_id",
        "trace",
        "prediction",
        "suffix",
    }
)
_NUMERIC = {**dict(_NUMERIC_PARAMS), **dict.fromkeys(_MAX_TOKENS_KEYS, "gen_ai.request.max_tokens")}
_MAX_TOKENS_RANK = {key: rank for rank, key in enumerate(_MAX_TOKENS_KEYS)}
# Keys read by `_special_attributes` (content and routing keys among them are not parameters).
_SPECIAL = frozenset(
    {
        "stop",
        "n",
        "reasoning_effort",
        "reasoning",
        "response_format",
        "text",
        "encoding_format",
        "dimensions",
        "session_id",
        "user",
        "metadata",
    }
)
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def to_json(value: Any) -> str:
    return _JSON.encode(value)


# Credentials a request body may carry for the gateway to use upstream (LiteLLM's client-side `api_key`,
# `aws_secret_access_key`, `vertex_credentials`, a `user_config` full of them, a PEM key, a JWT): their values never
# reach a span (`_secrets.redact`).
_CREDENTIAL_HINTS = (
    r"key|secret|pass|pwd|credential|auth|token[^s]|bearer|cookie|signature|sas|jwt"
    r"|-----begin|eyj|sk-|pk-|rk-|akia|asia|aiza|gh[pousr]_|github_pat|xox|hf_|basic"
)
_MAY_HOLD_CREDENTIAL = re.compile(_CREDENTIAL_HINTS, re.IGNORECASE)
_MAY_HOLD_CREDENTIAL_LOWERED = re.compile(_CREDENTIAL_HINTS)
"""The same search over text lowered first: ~10x faster than `re.IGNORECASE` (which defeats the engine's check of
each position's first character against the alternatives'), and the same answer for ASCII text."""
REDACTED = _secrets.REDACTED


def may_hold_credential(text: str) -> bool:
    """One search clears an ordinary body (model, max_tokens, temperature...) in a few µs; only a body that may
    hold a credential is walked again. Non-ASCII text keeps the case-insensitive search: Unicode case folding
    matches more than `lower()` does (`ſ` is an `s` to it)."""
    if text.isascii():
        return _MAY_HOLD_CREDENTIAL_LOWERED.search(text.lower()) is not None
    return _MAY_HOLD_CREDENTIAL.search(text) is not None


def safe_json(value: Any) -> str:
    """`value` as JSON with credential-named fields at any depth and credential-shaped values replaced."""
    encoded = _JSON.encode(value)
    if may_hold_credential(encoded):
        encoded = _JSON.encode(_secrets.redact(value))
    return encodable(encoded)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def request_attributes(
    endpoint: Endpoint, body: Mapping[str, Any], gateway: Gateway, host: str | None, port: int | None
) -> Attributes:
    """Attributes known before the call; the first few are the ones a sampler may look at."""
    model = body.get("model")
    if isinstance(model, str) and not model.isascii():
        model = encodable(model)  # it names the span too: a lone surrogate would fail the export of its batch
    attrs: Attributes = {
        "gen_ai.operation.name": endpoint.operation,
        "gen_ai.provider.name": gateway.provider_name,
    }
    if isinstance(model, str):
        attrs["gen_ai.request.model"] = model
    if host:
        attrs["server.address"] = host
        if port:
            attrs["server.port"] = port
    attrs["gateway.name"] = gateway.name
    attrs["openinference.span.kind"] = endpoint.span_kind
    if isinstance(model, str):
        attrs["embedding.model_name" if endpoint.span_kind == "EMBEDDING" else "llm.model_name"] = model
    attrs["llm.system"] = "openai"
    attrs["llm.provider"] = gateway.openinference_provider

    # One pass over the body: each key is looked up in small tables rather than the body in each of ~20 names.
    params: Attributes = {}
    special: Attributes = {}
    max_tokens_rank = len(_MAX_TOKENS_KEYS)
    for key, value in body.items():
        if key in _SPECIAL:
            special[key] = value
        if key in _NOT_PARAMETERS:
            continue
        params[key] = value
        numeric = _NUMERIC.get(key)
        if numeric is None or not _number(value):
            continue
        if isinstance(value, int) and int64(value) is None:
            continue  # a count OTLP cannot carry
        rank = _MAX_TOKENS_RANK.get(key)
        if rank is None:
            attrs[numeric] = value
        elif rank < max_tokens_rank:  # max_tokens wins over max_completion_tokens over max_output_tokens
            max_tokens_rank = rank
            attrs[numeric] = value
    attrs["gen_ai.request.stream"] = params.get("stream") is True
    if special:
        attrs.update(_special_attributes(endpoint, special))
    attrs["llm.invocation_parameters"] = safe_json(params)
    return attrs


def _special_attributes(endpoint: Endpoint, body: Mapping[str, Any]) -> Attributes:
    """The request keys that need more than a number check; only present ones are passed."""
    attrs: Attributes = {}
    stop = body.get("stop")
    if isinstance(stop, str):
        attrs["gen_ai.request.stop_sequences"] = [encodable(stop)]
    elif isinstance(stop, (list, tuple)) and stop and all(isinstance(s, str) for s in stop):
        attrs["gen_ai.request.stop_sequences"] = [encodable(s) for s in stop]
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and int64(n) is not None:
        attrs["gen_ai.request.choice.count"] = n
    effort = body.get("reasoning_effort") or get(body.get("reasoning"), "effort")
    if isinstance(effort, str):
        attrs["gen_ai.request.reasoning.level"] = encodable(effort)
    response_format = get(body.get("response_format"), "type") or get(get(body.get("text"), "format"), "type")
    if isinstance(response_format, str):
        attrs["gen_ai.output.type"] = "json" if response_format.startswith("json") else encodable(response_format)
    if endpoint.operation == "embeddings":
        fmt = body.get("encoding_format")
        if isinstance(fmt, str):
            attrs["gen_ai.request.encoding_formats"] = [encodable(fmt)]
        dims = body.get("dimensions")
        if isinstance(dims, int) and not isinstance(dims, bool) and int64(dims) is not None:
            attrs["gen_ai.embeddings.dimension.count"] = dims
    session = body.get("session_id")
    if isinstance(session, str):
        attrs["session.id"] = attrs["gen_ai.conversation.id"] = encodable(session)
    user = body.get("user")
    if isinstance(user, str):
        attrs["user.id"] = encodable(user)
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and metadata:
        attrs["metadata"] = safe_json(metadata)
    return attrs


_APP_HEADERS = {
    "http-referer": "gateway.app.referer",
    "x-openrouter-title": "gateway.app.title",
    "x-title": "gateway.app.title",
}


def app_attributes(headers: Mapping[str, Any]) -> Attributes:
    """OpenRouter's app attribution headers (HTTP-Referer, X-OpenRouter-Title / X-Title, X-OpenRouter-Categories).

    Only these named headers are read: Authorization and every other header never reach the span.
    """
    attrs: Attributes = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        lowered = name.lower()
        key = _APP_HEADERS.get(lowered)
        if key is not None:
            if lowered != "x-title" or key not in attrs:  # X-OpenRouter-Title wins over the legacy X-Title
                attrs[key] = cap(value, 1024)
        elif lowered == "x-openrouter-categories":
            attrs["gateway.app.categories"] = [encodable(c.strip()) for c in value.split(",") if c.strip()]
    return attrs


def response_attributes(record: ResponseRecord, endpoint: Endpoint, gateway: Gateway) -> Attributes:
    attrs: Attributes = {}
    if record.model:
        attrs["gen_ai.response.model"] = record.model
    if record.id:
        attrs["gen_ai.response.id"] = record.id
    if record.usage is not None:
        attrs.update(usage_attributes(record.usage))
    if record.upstream_provider:
        attrs["gateway.upstream.provider"] = record.upstream_provider
    if record.finish_reasons:
        attrs["gen_ai.response.finish_reasons"] = record.finish_reasons
    if record.embedding_count is not None:
        attrs["gateway.embeddings.count"] = record.embedding_count  # in neither GenAI registry
    if record.embedding_dimensions is not None:
        attrs["gen_ai.embeddings.dimension.count"] = record.embedding_dimensions
    return attrs


def merge_header_facts(record: ResponseRecord, facts: HeaderFacts) -> None:
    """Put what the gateway said in its headers into the record: the served model replaces the alias the body
    repeats, its provider prefix names the upstream provider, and the header cost fills in a cost the body did not
    report (the body's own `usage.cost` wins)."""
    if facts.served_model:
        record.model = facts.served_model
    if facts.upstream_provider and not record.upstream_provider:
        record.upstream_provider = facts.upstream_provider
    if facts.cost is not None:
        if record.usage is None:
            record.usage = Usage(cost=facts.cost)
        elif record.usage.cost is None:
            record.usage.cost = facts.cost


def gateway_attributes(gateway: Gateway) -> Attributes:
    """The gateway's names in both conventions, for a gateway recognised only from the response."""
    return {
        "gen_ai.provider.name": gateway.provider_name,
        "gateway.name": gateway.name,
        "llm.provider": gateway.openinference_provider,
    }


def header_attributes(facts: HeaderFacts) -> Attributes:
    return {"gateway.call_id": facts.call_id} if facts.call_id else {}


def usage_attributes(usage: Usage) -> Attributes:
    attrs: Attributes = {}
    if usage.input_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
        attrs["llm.token_count.prompt"] = usage.input_tokens
    if usage.output_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
        attrs["llm.token_count.completion"] = usage.output_tokens
    total = usage.total_tokens
    if total is None and usage.input_tokens is not None and usage.output_tokens is not None:
        total = usage.input_tokens + usage.output_tokens
    if total is not None:
        attrs["llm.token_count.total"] = total
    if usage.cost is not None:
        attrs["gen_ai.usage.cost"] = usage.cost
        attrs["llm.cost.total"] = usage.cost
        attrs[COST_SOURCE] = usage.cost_source
        split = cost_split(usage)
        if split is not None:
            attrs["llm.cost.prompt"], attrs["llm.cost.completion"] = split
    # Detail counts are recorded when there is something to count: a zero says nothing a missing key does not.
    if usage.cache_read_tokens:
        attrs["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
        attrs["llm.token_count.prompt_details.cache_read"] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        attrs["gen_ai.usage.cache_write.input_tokens"] = usage.cache_write_tokens
        attrs["llm.token_count.prompt_details.cache_write"] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        attrs["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
        attrs["llm.token_count.completion_details.reasoning"] = usage.reasoning_tokens
    if usage.input_audio_tokens:
        attrs["llm.token_count.prompt_details.audio"] = usage.input_audio_tokens
    if usage.output_audio_tokens:
        attrs["llm.token_count.completion_details.audio"] = usage.output_audio_tokens
    if usage.is_byok is not None:
        attrs["gateway.cost.is_byok"] = usage.is_byok
    if usage.upstream_cost is not None:
        attrs["gateway.cost.upstream_inference"] = usage.upstream_cost
    if usage.upstream_prompt_cost is not None:
        attrs["gateway.cost.upstream_inference_prompt"] = usage.upstream_prompt_cost
    if usage.upstream_completion_cost is not None:
        attrs["gateway.cost.upstream_inference_completions"] = usage.upstream_completion_cost
    return attrs


_SPLIT_TOLERANCE = 1e-9
"""How far (USD) the two parts may be from the total and still be its split: rounding in the gateway's JSON."""


def cost_split(usage: Usage) -> tuple[float, float] | None:
    """(prompt, completion) cost when the gateway reports a split that adds up to the call's cost; else None.

    OpenRouter's `cost_details.upstream_inference_prompt_cost` / `..._completions_cost` add up to `usage.cost` for
    calls it bills; for BYOK calls they are the upstream's own charge, not the cost, and are not a split of it.
    """
    total, prompt, completion = usage.cost, usage.upstream_prompt_cost, usage.upstream_completion_cost
    if not total or prompt is None or completion is None or usage.is_byok:  # a free call has nothing to split
        return None
    if prompt < 0 or completion < 0 or abs(prompt + completion - total) > _SPLIT_TOLERANCE + 1e-6 * abs(total):
        return None
    return prompt, completion


def input_content_attributes(
    endpoint: Endpoint, body: Mapping[str, Any], messages: list[Message], limit: int
) -> Attributes:
    """The captured request content, except the flattened per-message keys (those are budgeted separately)."""
    attrs: Attributes = {}
    if endpoint.operation == "embeddings":
        texts = [p["content"] for m in messages for p in m["parts"]]
        attrs["input.value"] = texts[0] if len(texts) == 1 else cap(to_json(texts), limit)
        attrs["input.mime_type"] = "text/plain" if len(texts) == 1 else "application/json"
        return attrs
    encoded = cap(to_json(messages), limit)
    attrs["gen_ai.input.messages"] = encoded
    attrs["input.value"] = encoded
    attrs["input.mime_type"] = "application/json"
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        attrs["gen_ai.system_instructions"] = cap(to_json([{"type": "text", "content": instructions}]), limit)
    tools = body.get("tools")
    if isinstance(tools, (list, tuple)) and tools:
        attrs["gen_ai.tool.definitions"] = cap(to_json(tools), limit)
    return attrs


def tool_schema_attributes(body: Mapping[str, Any], limit: int, budget: int) -> Attributes:
    tools = body.get("tools")
    if not isinstance(tools, (list, tuple)):
        return {}
    return {f"llm.tools.{i}.tool.json_schema": cap(to_json(tool), limit) for i, tool in enumerate(tools[:budget])}


def output_content_attributes(record: ResponseRecord, limit: int) -> Attributes:
    output = record.output
    if not output:
        return {}
    encoded = cap(to_json(output), limit)
    attrs: Attributes = {"gen_ai.output.messages": encoded}
    answer = output_answer(output)
    if answer is not None:
        attrs["output.value"] = answer
        attrs["output.mime_type"] = "text/plain"
    else:
        attrs["output.value"] = encoded
        attrs["output.mime_type"] = "application/json"
    return attrs


def output_answer(output: list[Message]) -> str | None:
    """OpenInference's `output.value` as text: one message whose one part besides reasoning is text; else None (the
    messages' JSON is the value). The store rebuilds `output.value` with it."""
    answer = [p for p in output[0]["parts"] if p["type"] != "reasoning"]
    return answer[0]["content"] if len(output) == 1 and len(answer) == 1 and answer[0]["type"] == "text" else None


def flattened_messages(prefix: str, messages: list[Message], budget: int) -> Attributes:
    """`llm.input_messages.*` / `llm.output_messages.*` within `budget` attributes; says how many were left out."""
    if not messages or budget <= 0:
        return {}
    omitted_key = f"gateway.{prefix.rsplit('.', 1)[-1]}.omitted"
    attrs, omitted = openinference_messages(prefix, messages, budget - 1)
    if omitted:
        attrs[omitted_key] = omitted
    return attrs


def embedding_texts(messages: list[Message], budget: int) -> Attributes:
    texts = [p["content"] for m in messages for p in m["parts"]]
    return {f"embedding.embeddings.{i}.embedding.text": t for i, t in enumerate(texts[: max(budget, 0)])}


def error_type(exc: BaseException) -> str:
    """The HTTP status of an API status error, the gateway's code of an in-stream error, else the exception type."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return str(status)
    code = get(getattr(exc, "body", None), "code") if isinstance(getattr(exc, "body", None), Mapping) else None
    if isinstance(code, (str, int)) and not isinstance(code, bool) and str(code):
        return str(code)  # an error the gateway sent inside a stream: its own code
    cls = type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    if module.startswith("openai"):
        return f"openai.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def exception_type(exc: BaseException) -> str:
    """The exception's qualified class name, as `exception.type` wants it (`openai.APIError`, `TimeoutError`)."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def error_attributes(exc: BaseException) -> Attributes:
    """The gateway's error code, message and provider when the error carries OpenRouter's error body; uncut, so the
    caller scrubs credentials before it cuts."""
    attrs: Attributes = {}
    code = getattr(exc, "code", None)
    if isinstance(code, (str, int)) and not isinstance(code, bool):
        attrs["gateway.error.code"] = str(code)
    body = getattr(exc, "body", None)
    message = get(body, "message") if isinstance(body, Mapping) else None
    if not isinstance(message, str):
        message = getattr(exc, "message", None)
    if isinstance(message, str):
        attrs["gateway.error.message"] = message
    provider = get(get(body, "metadata"), "provider_name") if isinstance(body, Mapping) else None
    if isinstance(provider, str):
        attrs["gateway.upstream.provider"] = provider
    return attrs
