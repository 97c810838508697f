"""Cost from a price table when the gateway reports none: genai-prices (the optional extra `gateway-otel[prices]`).

A direct call to OpenAI, Azure, Groq, Together, DeepSeek, Mistral... gets tokens and no cost from the provider.
genai-prices (pydantic's maintained price data, bundled in its wheel) prices it from the provider, the model (the
response's, else the request's) and the token counts, cache reads and writes included, with its own calculation.
The rules: the gateway's own figure always wins; a model the table does not know gets no cost, never a guess; every
cost says where it came from (`gateway.cost.source`: `gateway` or `price_table`).

One price costs ~85-100 µs (almost all of it genai-prices' arithmetic, not the model lookup, so a per-model cache
cannot make it cheap; a priced call's overhead on the caller's thread would grow by ~230 µs under load): the caller's
thread never prices. A destination prices its copy of a span on its exporting thread (`destinations/_processor.py`)
and the metric recorder its cost on its worker (`instrumentation/_metrics.py`); both ask `price`, whose cache makes
the second ask of the same call free (~0.2 µs), and a model the table does not know is looked up once. The first
price imports genai-prices (~250 ms of CPU, once, on that thread).

Nothing is downloaded: genai-prices fetches prices only when an application starts its `UpdatePrices` (this package
never does; an application that does gets those fresher prices here too).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from ._internal import internal_error
from ._semconv import COST_SOURCE
from .gateways import is_local_host

__all__ = [
    "GATEWAY",
    "LOCAL_SERVERS",
    "PRICE_TABLE",
    "PROVIDER_IDS",
    "SOURCE",
    "PriceRequest",
    "available",
    "free_locally",
    "price",
    "price_attributes",
    "price_request",
]

SOURCE = COST_SOURCE
"""Where a call's cost came from. The GenAI conventions have no landed name for it (the proposal for
`gen_ai.usage.cost.*`, semantic-conventions-genai#443, is open), so it lives in our `gateway.*` namespace."""
GATEWAY = "gateway"
"""The gateway (or provider) reported the cost: OpenRouter's `usage.cost`, LiteLLM's `x-litellm-response-cost`."""
PRICE_TABLE = "price_table"
"""gateway-otel priced the call: from genai-prices' table, or 0 for a local model by `local_models_free`."""

PROVIDER_IDS = {
    "openai": "openai",
    "azure": "azure",
    "groq": "groq",
    "together": "together",
    "deepseek": "deepseek",
    "mistral": "mistral",
    "fireworks": "fireworks",
    "xai": "x-ai",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "anthropic": "anthropic",
    "gemini": "google",
}
"""Our gateway name (`gateways.detect_gateway`, from the base URL's host) → genai-prices' provider id. Only direct
providers: a gateway that routes (OpenRouter, LiteLLM, Portkey...) reports its own cost or is not priced."""

LOCAL_SERVERS = frozenset({"ollama", "vllm"})
"""The self-hosted model servers whose calls `local_models_free` makes free, on a local host only: `ollama.com` is
Ollama's paid cloud, and LiteLLM on localhost forwards to paid providers."""


def free_locally(gateway: str, start_attributes: Mapping[str, Any]) -> bool:
    """Whether a call to `gateway` (our name) at the span's `server.address` is a local model server's."""
    host = start_attributes.get("server.address")
    return gateway in LOCAL_SERVERS and isinstance(host, str) and is_local_host(host)


PriceRequest = tuple[str, str, int, int, int, int, int, int, int]
"""(provider id, model, input tokens, output tokens, cache read, cache write, input audio, output audio, the
minute of the call in seconds since the epoch): what `price` is asked, hashable so its cache can answer twice."""


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether genai-prices is installed (asked once; the import itself waits for the first price)."""
    try:
        return importlib.util.find_spec("genai_prices") is not None
    except (ImportError, ValueError):
        return False


def price_request(gateway: Any, model: Any, counts: tuple[Any, ...], start_ns: Any) -> PriceRequest | None:
    """What to ask `price` for a call to `gateway` (our name) of `model` with `counts` (input, output, cache read,
    cache write, input audio, output audio tokens; None where not reported) started at `start_ns`; None when the
    call cannot be priced (not a direct provider, no model, no input or output count, the extra not installed)."""
    provider = PROVIDER_IDS.get(gateway) if isinstance(gateway, str) else None
    if provider is None or not isinstance(model, str) or not model or not available():
        return None
    input_tokens, output_tokens = counts[0], counts[1]
    if not _count(input_tokens) and not _count(output_tokens):
        return None
    values = [value if _count(value) else 0 for value in counts]
    minute = (start_ns // 60_000_000_000) * 60 if isinstance(start_ns, int) else 0
    return (provider, model, *values, minute)  # type: ignore[return-value]


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_INPUT = ("gen_ai.usage.input_tokens", "llm.token_count.prompt")
_OUTPUT = ("gen_ai.usage.output_tokens", "llm.token_count.completion")
_DETAILS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "llm.token_count.prompt_details.audio",
    "llm.token_count.completion_details.audio",
)


def price_attributes(attributes: Mapping[str, Any], start_ns: Any) -> dict[str, Any] | None:
    """The cost attributes to add to a finished span of ours that has tokens and no cost (None: nothing to add).
    A span that carries a cost, or is not a call to a direct provider, is never looked up."""
    if "gen_ai.usage.cost" in attributes or "llm.cost.total" in attributes:
        return None
    get = attributes.get
    model = get("gen_ai.response.model") or get("gen_ai.request.model")
    counts = (get(_INPUT[0], get(_INPUT[1])), get(_OUTPUT[0], get(_OUTPUT[1])), *(get(name) for name in _DETAILS))
    request = price_request(get("gateway.name"), model, counts, start_ns)
    cost = price(request) if request is not None else None
    if cost is None:
        return None
    return {"gen_ai.usage.cost": cost, "llm.cost.total": cost, SOURCE: PRICE_TABLE}


_UNKNOWN: set[tuple[str, str]] = set()
"""(provider, model) pairs the table does not know."""
_UNKNOWN_REMEMBERED = 1024


@lru_cache(maxsize=1024)
def price(request: PriceRequest) -> float | None:
    """genai-prices' own total for `request` in USD; None for a model or provider its table does not know, or usage
    it refuses (a cache count above the input count). Never raises."""
    provider, model, input_tokens, output_tokens, cache_read, cache_write, input_audio, output_audio, minute = request
    if (provider, model) in _UNKNOWN:
        return None
    try:
        from genai_prices import Usage, calc_price

        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read or None,
            cache_write_tokens=cache_write or None,
            input_audio_tokens=input_audio or None,
            output_audio_tokens=output_audio or None,
        )
        at = datetime.fromtimestamp(minute, timezone.utc) if minute else None
        total = calc_price(usage, model, provider_id=provider, genai_request_timestamp=at).total_price
    except LookupError:  # not in the table: not looked up again (genai-prices does not remember a miss, ~65 µs)
        if len(_UNKNOWN) >= _UNKNOWN_REMEMBERED:
            _UNKNOWN.clear()
        _UNKNOWN.add((provider, model))
        return None
    except (ValueError, ArithmeticError):  # usage its arithmetic refuses
        return None
    except Exception:
        internal_error("price table")
        return None
    return float(total)
