"""OpenRouter's final record of one generation: one fetch of `GET {base}/generation?id=<id>`, and its `data` as the
attributes of a `gateway.openrouter.generation` log record.

A few seconds after a call, the endpoint (the caller's own key) has what the inline `usage` lacks: the final
`total_cost`, `cache_discount`, the upstream's own token counts (`native_tokens_*`), the latencies, and every upstream
attempt (`provider_responses`), so a fallback after a 429 shows. Until then it answers 404. The worker that retries
and emits is `_generation_worker`; this module is pure but for the one request.

The attempts are three parallel arrays (`...attempts.provider`, `...attempts.status`, `...attempts.latency`, in
OpenRouter's order, null where it gave none): an OpenTelemetry attribute holds a homogeneous array of primitives, and
parallel arrays keep each field typed and filterable in every backend, where one JSON string would need parsing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from .._secrets import Scrubber, url_without_credentials
from .._semconv import GENERATION_PREFIX

logger = logging.getLogger("gateway_otel")

__all__ = ["Answer", "fetch", "generation_attributes", "generation_url"]

FIELDS = (
    "total_cost",
    "cache_discount",
    "upstream_inference_cost",
    "provider_name",
    "latency",
    "generation_time",
    "moderation_latency",
    "native_tokens_prompt",
    "native_tokens_completion",
    "native_tokens_reasoning",
    "native_tokens_cached",
    "is_byok",
    "finish_reason",
    "native_finish_reason",
)
"""The fields of the generation record kept, each as `gateway.openrouter.generation.<field>` (absent when null)."""
ATTEMPTS = (("provider", "provider_name", str), ("status", "status", int), ("latency", "latency", float))
"""(attribute suffix after `attempts.`, field of a `provider_responses` item, its type)."""
RETRIED = frozenset({404, 408, 425, 429, 500, 502, 503, 504, 524, 529})
"""Statuses asked again later: 404 (not ready yet) and the transient ones."""


def _value(value: Any) -> Any:
    """A primitive attribute value, or None (nested values are left out: never a guess at their meaning)."""
    return value if isinstance(value, (bool, int, float, str)) else None


def _typed(value: Any, kind: type) -> Any:
    """`value` as `kind` (an int latency as a float, so the array stays homogeneous), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if kind is float and isinstance(value, (int, float)):
        return float(value)
    return value if isinstance(value, kind) else None


def generation_attributes(data: Mapping[str, Any]) -> dict[str, Any]:
    """The log record's attributes from the endpoint's `data` object: its id, each of `FIELDS` that is set, and
    the attempts as parallel arrays."""
    attrs: dict[str, Any] = {}
    if isinstance(data.get("id"), str):
        attrs["gen_ai.response.id"] = data["id"]
    for field in FIELDS:
        value = _value(data.get(field))
        if value is not None:
            attrs[GENERATION_PREFIX + field] = value
    attempts = data.get("provider_responses")
    if isinstance(attempts, list):
        items = [item for item in attempts if isinstance(item, Mapping)]
        for suffix, field, kind in ATTEMPTS:
            attrs[f"{GENERATION_PREFIX}attempts.{suffix}"] = [_typed(item.get(field), kind) for item in items]
    return attrs


def generation_url(base_url: str) -> str:
    """`GET` this with `params={"id": ...}`: the generation endpoint under the client's base URL."""
    return f"{base_url.rstrip('/')}/generation"


@dataclass(frozen=True)
class Answer:
    """One fetch's outcome: the record's `attributes`, or `retry` (a status to ask again later), or a `failure` in
    words, what the details cannot be (no credential in it), with its `kind`, the key of the once-per-cause
    warning."""

    attributes: dict[str, Any] | None = None
    retry: int | None = None
    failure: str | None = None
    kind: str = ""


def fetch(client: Any, base_url: str, generation_id: str, key: str, timeout: float) -> Answer:
    """One `GET {base}/generation?id=...` with the caller's `key`, through `client` (an httpx client of our own),
    with instrumentation suppressed so that the request makes no span of anyone's."""
    from opentelemetry.instrumentation.utils import suppress_http_instrumentation, suppress_instrumentation

    url = generation_url(base_url)
    try:
        with suppress_instrumentation(), suppress_http_instrumentation():
            response = client.get(url, params={"id": generation_id}, headers={"Authorization": f"Bearer {key}"})
    except Exception as error:  # the network, a timeout: said once, in words
        return _failed(error, url, key, timeout)
    status = response.status_code
    if status == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, Mapping):
            return Answer(failure=f"cannot be read: {_shown(url)} answered without a `data` object", kind="body")
        return Answer(attributes=generation_attributes(data))
    if status in RETRIED:
        return Answer(retry=status)
    return Answer(failure=_status_text(status, url), kind=f"http {status}")


def _shown(url: str) -> str:
    return url_without_credentials(url, query="drop")


def _status_text(status: int, url: str) -> str:
    from ..destinations._causes import from_status

    if status in (401, 403):
        return (
            f"cannot be fetched from {_shown(url)}: it refused the call's API key (HTTP {status} "
            f"{HTTPStatus(status).phrase}): the generation endpoint takes the key the call was made with"
        )
    return f"cannot be fetched from {_shown(url)}: {from_status(status, url).text}"


def _failed(error: Exception, url: str, key: str, timeout: float) -> Answer:
    """A request that got no answer, in the destinations' words (`_causes.classify`), scrubbed of the key."""
    from ..destinations._causes import classify

    cause = classify([error], endpoint=url, timeout=timeout)
    scrub = Scrubber([key])
    logger.debug("gateway_otel: generation fetch raised %s: %s", type(error).__name__, scrub(str(error)))
    return Answer(failure=scrub(f"cannot be fetched from {_shown(url)}: {cause.text}"), kind=cause.kind)
