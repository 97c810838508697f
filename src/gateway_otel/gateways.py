"""Which gateway a client talks to, from its base URL.

`gen_ai.provider.name` is "set based on the instrumentation's best knowledge" (GenAI conventions): for a call
through OpenRouter that is `openrouter`, and the upstream provider that really served it (OpenRouter's response
`provider`) goes to `gateway.upstream.provider`. Detection is a host-suffix table plus a few well-known local ports;
the `gateway` option overrides it. A gateway that says who it is in its response headers (LiteLLM's `x-litellm-*`,
or any server's `x-gateway-otel-gateway: <name>`, which the simulator sends as `openrouter`) is recognised there
too, wherever it runs, and its headers carry facts the body lacks (`header_facts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "GATEWAY_HEADER",
    "GATEWAY_NAMES",
    "Gateway",
    "HeaderFacts",
    "detect_gateway",
    "gateway_by_name",
    "header_facts",
    "is_local_host",
    "reads_headers",
]


@dataclass(frozen=True)
class Gateway:
    """A known gateway or provider endpoint and the names the two conventions give it."""

    name: str
    """Our name for it, recorded as `gateway.name`."""
    provider_name: str
    """Value of `gen_ai.provider.name` (GenAI well-known values where one exists)."""
    openinference_provider: str
    """Value of `llm.provider` (OpenInference well-known values where one exists)."""


def _g(name: str, provider: str | None = None, oi: str | None = None) -> Gateway:
    return Gateway(name, provider or name, oi or name)


OPENROUTER = _g("openrouter")
OPENAI = _g("openai")
GENERIC = _g("openai_compatible")

_KNOWN = {
    g.name: g
    for g in (
        OPENROUTER,
        OPENAI,
        GENERIC,
        _g("litellm"),
        _g("azure", "azure.ai.openai", "azure"),
        _g("groq"),
        _g("together", "together", "together"),
        _g("fireworks"),
        _g("deepseek"),
        _g("mistral", "mistral_ai", "mistralai"),
        _g("xai", "x_ai", "xai"),
        _g("perplexity"),
        _g("cerebras"),
        _g("anthropic"),
        _g("gemini", "gcp.gemini", "google"),
        _g("ollama"),
        _g("vllm"),
        _g("helicone"),
        _g("portkey"),
        _g("cloudflare"),
    )
}

GATEWAY_NAMES = tuple(sorted(_KNOWN))
"""The names the `gateway` setting takes (`GATEWAY_OTEL_GATEWAY`)."""

# Host suffix -> gateway name; the longest matching suffix wins.
_HOST_SUFFIXES = {
    "openrouter.ai": "openrouter",
    "api.openai.com": "openai",
    "openai.azure.com": "azure",
    "cognitiveservices.azure.com": "azure",
    "services.ai.azure.com": "azure",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral",
    "api.x.ai": "xai",
    "api.perplexity.ai": "perplexity",
    "api.cerebras.ai": "cerebras",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gemini",
    "ollama.com": "ollama",
    "oai.helicone.ai": "helicone",
    "ai.helicone.ai": "helicone",
    "api.portkey.ai": "portkey",
    "gateway.ai.cloudflare.com": "cloudflare",
}
# The default ports of self-hosted servers, for hosts that say nothing (localhost, a service name).
_LOCAL_PORTS = {11434: "ollama", 4000: "litellm", 8000: "vllm"}


def is_local_host(host: str) -> bool:
    """Whether `host` names this machine or a service beside it (localhost, a loopback address, a name without a
    dot such as a compose service, not an IPv6 address): where a self-hosted server (Ollama, vLLM) runs the user's
    own models."""
    host = host.lower().rstrip(".")
    return host in ("localhost", "127.0.0.1", "::1", "[::1]", "host.docker.internal") or not any(
        mark in host for mark in ".:"
    )


def gateway_by_name(name: str) -> Gateway:
    """The gateway called `name` (settings only take `GATEWAY_NAMES`; an unknown name is kept as given)."""
    return _KNOWN.get(name) or _g(name)


@lru_cache(maxsize=256)
def detect_gateway(host: str, port: int | None = None) -> Gateway:
    """The gateway behind `host:port`; `openai_compatible` when nothing is known about it."""
    host = host.lower().rstrip(".")
    best = ""
    for suffix in _HOST_SUFFIXES:
        if (host == suffix or host.endswith("." + suffix)) and len(suffix) > len(best):
            best = suffix
    if best:
        return _KNOWN[_HOST_SUFFIXES[best]]
    for word in ("litellm", "ollama", "vllm"):  # self-hosted service names
        if word in host:
            return _KNOWN[word]
    if is_local_host(host) and port in _LOCAL_PORTS:
        return _KNOWN[_LOCAL_PORTS[port]]
    return GENERIC


LITELLM = _KNOWN["litellm"]
_LITELLM_PREFIX = "x-litellm-"
_LITELLM_PREFIX_BYTES = _LITELLM_PREFIX.encode()
_PREFIX_LENGTH = len(_LITELLM_PREFIX)
GATEWAY_HEADER = "x-gateway-otel-gateway"
"""A response header naming the gateway a server speaks as (one of `GATEWAY_NAMES`): a self-hosted server, or the
simulator (`openrouter`), is then labelled like the real one, from that call on (see `reads_headers`)."""
_GATEWAY_HEADER_BYTES = GATEWAY_HEADER.encode()
_SELF_HOSTED = frozenset({GENERIC.name, "litellm", "vllm", "ollama"})


@dataclass(frozen=True)
class HeaderFacts:
    """What a gateway's response headers say about a call (LiteLLM puts neither model nor cost in the body)."""

    gateway: Gateway
    served_model: str | None = None
    """The deployment's model (`x-litellm-model-name`, `openai/gpt-4o-mini`), where the body repeats the alias."""
    upstream_provider: str | None = None
    """The provider LiteLLM routed the call to: the served model's `provider/` prefix."""
    cost: float | None = None
    """The call's cost in USD (`x-litellm-response-cost`), recorded like OpenRouter's `usage.cost`."""
    call_id: str | None = None
    """The proxy's id for the call (`x-litellm-call-id`), to find it in LiteLLM's own logs and spans."""


def reads_headers(gateway: Gateway) -> bool:
    """Whether a response's headers may name the gateway or carry its facts: unknown hosts and the self-hosted
    servers recognised by a port or a service name (LiteLLM, vLLM, Ollama), never a known public endpoint."""
    return gateway.name in _SELF_HOSTED


def _cost(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        cost = float(value)
    except ValueError:
        return None
    return cost if cost >= 0 and cost != float("inf") else None


def header_facts(headers: object) -> HeaderFacts | None:
    """What a response's headers say (an httpx `Headers` or any name → value mapping); None when they say nothing.

    One pass over the raw header pairs (no decoding of the others), keeping only the `x-litellm-*` names and
    `x-gateway-otel-gateway`: on a response from any other server this is a loop over a dozen byte strings.
    """
    raw = getattr(headers, "raw", None)
    if isinstance(raw, list):
        pairs: Iterable[tuple[Any, Any]] = raw
    else:
        items = getattr(headers, "items", None)
        pairs = items() if callable(items) else ()
    found: dict[str, str] | None = None
    for name, value in pairs:
        if type(name) is bytes and type(value) is bytes:
            if name[:_PREFIX_LENGTH].lower() == _LITELLM_PREFIX_BYTES or name.lower() == _GATEWAY_HEADER_BYTES:
                if found is None:
                    found = {}
                found[name.decode("latin-1").lower()] = value.decode("latin-1")
        elif (
            type(name) is str
            and type(value) is str
            and (name[:_PREFIX_LENGTH].lower() == _LITELLM_PREFIX or name.lower() == GATEWAY_HEADER)
        ):
            if found is None:
                found = {}
            found[name.lower()] = value
    if not found:
        return None
    named = _KNOWN.get(found.pop(GATEWAY_HEADER, "").strip().lower())
    if not found:
        return HeaderFacts(gateway=named) if named is not None else None
    served = found.get("x-litellm-model-name") or None
    provider, slash, _ = (served or "").partition("/")
    return HeaderFacts(
        gateway=named or LITELLM,
        served_model=served,
        upstream_provider=provider if slash and provider else None,
        cost=_cost(found.get("x-litellm-response-cost")),
        call_id=found.get("x-litellm-call-id") or None,
    )
