"""OpenRouter's generation records, as `GET /api/v1/generation?id=<id>` serves them: 404 until `delay` seconds after
the call, then `{"data": {...}}` with every field OpenRouter documents (`openrouter` SDK `GenerationResponseData`).

The figures agree with the call's answer: the same tokens (OpenRouter counts with the upstream's tokenizer, the
`native_tokens_*`, and reports those inline too), `total_cost` = `usage.cost`, the served provider. Latencies are
derived from the tokens, so records are deterministic. The `fallback` scenario's record has two attempts in
`provider_responses`: `FALLBACK_FIRST` answered 429, then the served provider 200.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import _shapes as shapes
from ._content import CACHE_READ_FACTOR, CACHE_WRITE_FACTOR, PROMPT_PRICE, SimulatedUsage, native_finish_reason

ROUTE = "/generation"
DEFAULT_DELAY = 1.5
"""Seconds after a call before its record is served (OpenRouter: about a second or two); 404 until then."""
FALLBACK_FIRST = "Together"
"""The provider that answers 429 first in the `fallback` scenario, before the served one answers."""
KEPT = 10_000
"""Records a simulator remembers; the oldest are forgotten (404 again) past that."""


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _cache_discount(usage: SimulatedUsage, free: bool) -> float | None:
    """What caching saved (cache reads at a quarter of the price), less what cache writes cost extra; null when the
    call touched no cache."""
    if not usage.cached_tokens and not usage.cache_write_tokens:
        return None
    price = 0.0 if free else PROMPT_PRICE
    saved = usage.cached_tokens * (1 - CACHE_READ_FACTOR) - usage.cache_write_tokens * (CACHE_WRITE_FACTOR - 1)
    return round(price * saved, 12)


def _attempts(meta: shapes.Meta, upstream_id: str, latency: float, fallback: bool) -> list[dict[str, Any]]:
    served = {
        "id": upstream_id,
        "endpoint_id": f"ep-{meta.provider.lower().replace(' ', '-')}",
        "model_permaslug": meta.model,
        "provider_name": meta.provider,
        "status": 200,
        "latency": latency,
        "is_byok": False,
    }
    if not fallback:
        return [served]
    refused = {
        "endpoint_id": f"ep-{FALLBACK_FIRST.lower()}",
        "model_permaslug": meta.model,
        "provider_name": FALLBACK_FIRST,
        "status": 429,
        "latency": 85.0,
        "is_byok": False,
    }
    return [refused, served]


def generation_record(
    meta: shapes.Meta,
    *,
    requested_model: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    usage: SimulatedUsage,
    finish_reason: str | None,
    api_type: str,
    fallback: bool,
) -> dict[str, Any]:
    """The `data` object of one generation, every documented field present (null where OpenRouter has nothing)."""
    latency = float(120 + 8 * usage.completion_tokens + (85 if fallback else 0))
    upstream_id = f"chatcmpl-{meta.id.removeprefix('gen-')}"
    session = body.get("session_id") if isinstance(body.get("session_id"), str) else headers.get("x-session-id")
    referer = headers.get("http-referer")
    return {
        "id": meta.id,
        "request_id": f"req-{meta.id.removeprefix('gen-')}",
        "session_id": session,
        "model": meta.model,
        "provider_name": meta.provider,
        "created_at": _iso(meta.created),
        "data_region": "global",
        "api_type": api_type,
        "streamed": body.get("stream") is True,
        "cancelled": False,
        "finish_reason": finish_reason,
        "native_finish_reason": native_finish_reason(meta.provider, finish_reason) if finish_reason else None,
        "tokens_prompt": usage.prompt_tokens,
        "tokens_completion": usage.completion_tokens,
        "native_tokens_prompt": usage.prompt_tokens,
        "native_tokens_completion": usage.completion_tokens,
        "native_tokens_reasoning": usage.reasoning_tokens,
        "native_tokens_cached": usage.cached_tokens,
        "native_tokens_completion_images": 0,
        "total_cost": usage.cost,
        "usage": usage.cost,
        "upstream_inference_cost": None,
        "cache_discount": _cache_discount(usage, requested_model.endswith(":free")),
        "is_byok": False,
        "latency": latency,
        "generation_time": latency - 40.0,
        "moderation_latency": 35.0 if meta.model.startswith("openai/") else None,
        "origin": referer or "",
        "http_referer": referer,
        "app_id": None,
        "external_user": body.get("user") if isinstance(body.get("user"), str) else None,
        "user_agent": headers.get("user-agent"),
        "router": "openrouter/auto" if requested_model == "openrouter/auto" else None,
        "preset_id": None,
        "provider_responses": _attempts(meta, upstream_id, latency - 25.0, fallback),
        "upstream_id": upstream_id,
        "service_tier": None,
        "num_media_prompt": None,
        "num_media_completion": None,
        "num_input_audio_prompt": None,
        "num_search_results": None,
        "num_fetches": None,
        "web_search_engine": None,
        "workspace_id": None,
        "response_cache_source_id": None,
    }


class Generations:
    """The records a simulator served calls for, each with the moment (monotonic seconds) it becomes ready."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def remember(self, data: dict[str, Any], ready_at: float) -> None:
        with self._lock:
            self._records[data["id"]] = (ready_at, data)
            if len(self._records) > KEPT:
                self._records.popitem(last=False)

    def ready(self, generation_id: str, now: float) -> dict[str, Any] | None:
        """The record of `generation_id` if it is ready at `now`, else None."""
        with self._lock:
            found = self._records.get(generation_id)
        return found[1] if found is not None and now >= found[0] else None

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def requested_id(path: str) -> str | None:
    """The `id` query parameter of a `GET /generation?id=...` path."""
    values = parse_qs(urlsplit(path).query).get("id")
    return values[0] if values and values[0] else None
