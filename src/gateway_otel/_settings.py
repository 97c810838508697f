"""Settings, parsed once into a frozen object: explicit argument > environment variable > default.

The hot path reads these fields and never the environment. A bad value fails here, at set-up, with a message
that names the setting and says what it expects.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ._env import FALSE, TRUE, environment, parse_bool, parse_positive_int
from ._errors import ConfigurationError
from .gateways import GATEWAY_NAMES

__all__ = ["TRACE_NAME_KEYS", "ConfigurationError", "Settings"]

TRACE_NAME_KEYS = ("trace_name", "span_name", "generation_name")
"""The names OpenRouter's request field `trace` takes from the `trace_metadata` setting."""

# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT also takes the experimental GenAI modes.
_GENAI_CONTENT_MODES = {"no_content": False, "span_only": True, "event_only": True, "span_and_event": True}


@dataclass(frozen=True)
class Settings:
    """What the instrumentation does, decided once at `instrument()` time.

    Each field documents the environment variable it is read from when not passed explicitly.
    """

    capture_content: bool = True
    """Record prompts, completions, tool arguments and embeddings input.
    Env: ``GATEWAY_OTEL_CAPTURE_CONTENT``, else ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (each takes
    true/false or the GenAI modes ``NO_CONTENT``, ``SPAN_ONLY``, ``EVENT_ONLY``, ``SPAN_AND_EVENT``)."""

    max_content_length: int = 32_768
    """Longest captured text value, in characters; longer values are cut with a visible marker.
    Env: ``GATEWAY_OTEL_MAX_CONTENT_LENGTH``."""

    gateway: str | None = None
    """Force the gateway (one of `gateways.GATEWAY_NAMES`: ``openrouter``, ``litellm``, ``azure``...) instead of
    detecting it from the base URL and the response headers. Env: ``GATEWAY_OTEL_GATEWAY``."""

    metrics: bool = True
    """Record the GenAI metrics (duration, token usage, cost, time to first chunk). Each measurement costs about as
    much as a span in the OpenTelemetry SDK; turn them off when spans are all you use.
    Env: ``GATEWAY_OTEL_METRICS``."""

    stream_usage: bool = False
    """Add `stream_options.include_usage` to streamed chat and completions requests that do not set it, for
    gateways that send usage only when asked. Off by default: the extra final chunk has an empty `choices`, which
    breaks code that reads `chunk.choices[0]`. Env: ``GATEWAY_OTEL_STREAM_USAGE``."""

    openrouter_trace: bool | None = None
    """Trace join: add OpenRouter's request field `trace` (the LLM span's `trace_id` and `parent_span_id`, plus
    `trace_metadata` names) so that Broadcast's spans nest under the application's. `None` (``auto``) = on for calls
    to OpenRouter only; `True` = on every gateway (e.g. a proxy that forwards to OpenRouter); `False` = never.
    Env: ``GATEWAY_OTEL_OPENROUTER_TRACE`` (``auto``, ``true``, ``false``)."""

    propagate_traceparent: bool = False
    """Send the W3C `traceparent` (and `tracestate`) headers of the LLM span, for gateways that continue W3C trace
    context (LiteLLM proxy). Env: ``GATEWAY_OTEL_TRACEPARENT``."""

    trace_metadata: tuple[tuple[str, str], ...] = ()
    """Default `trace_name` / `span_name` / `generation_name` for the `trace` field (a `trace_metadata()` block
    overrides them). Option: a mapping; env ``GATEWAY_OTEL_TRACE_METADATA``: ``trace_name=checkout,span_name=llm``."""

    openrouter_generation: bool = False
    """After each OpenRouter call, fetch OpenRouter's final record of the generation (`GET /generation?id=...`, with
    the call's own key, off the caller's path) and emit it as a `gateway.openrouter.generation` log record in the
    call's trace; the local store's row gets the final cost. One more request per call, counted against the key's
    rate limits. Env: ``GATEWAY_OTEL_OPENROUTER_GENERATION``."""
    local_models_free: bool = False
    """A call to a local Ollama or vLLM server (localhost, a loopback address or a service name without a dot) that
    reports no cost costs 0, marked `price_table`; off, such a call has no cost (nobody said it is free).
    Env: ``GATEWAY_OTEL_LOCAL_MODELS_FREE``."""

    @property
    def trace_join(self) -> str:
        """`openrouter_trace` as people say it: ``auto``, ``true`` or ``false``."""
        return "auto" if self.openrouter_trace is None else str(self.openrouter_trace).lower()

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Settings:
        """Build settings from keyword options, then the environment (over the `.env` file), then defaults."""
        env = environment(environ)  # over `.env`, as configure() and doctor read it
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                f"expected any of {', '.join(sorted(known))}"
            )
        return cls(
            capture_content=_capture_content(options.get("capture_content"), env),
            max_content_length=_max_content_length(options.get("max_content_length"), env),
            gateway=_gateway(options.get("gateway"), env),
            metrics=_bool_setting("metrics", options.get("metrics"), "GATEWAY_OTEL_METRICS", env, default=True),
            stream_usage=_bool_setting(
                "stream_usage", options.get("stream_usage"), "GATEWAY_OTEL_STREAM_USAGE", env, default=False
            ),
            openrouter_trace=_openrouter_trace(options.get("openrouter_trace"), env),
            propagate_traceparent=_bool_setting(
                "propagate_traceparent",
                options.get("propagate_traceparent"),
                "GATEWAY_OTEL_TRACEPARENT",
                env,
                default=False,
            ),
            trace_metadata=_trace_metadata(options.get("trace_metadata"), env),
            openrouter_generation=_bool_setting(
                "openrouter_generation",
                options.get("openrouter_generation"),
                "GATEWAY_OTEL_OPENROUTER_GENERATION",
                env,
                default=False,
            ),
            local_models_free=_bool_setting(
                "local_models_free",
                options.get("local_models_free"),
                "GATEWAY_OTEL_LOCAL_MODELS_FREE",
                env,
                default=False,
            ),
        )


def _capture_content(explicit: Any, env: Mapping[str, str]) -> bool:
    """`GATEWAY_OTEL_CAPTURE_CONTENT` wins over the GenAI variable; both take true/false and the GenAI modes."""
    if explicit is not None:
        return _bool_setting("capture_content", explicit, "GATEWAY_OTEL_CAPTURE_CONTENT", env, default=True)
    for variable in ("GATEWAY_OTEL_CAPTURE_CONTENT", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"):
        raw = env.get(variable)
        if raw is not None and raw.strip():
            return parse_bool(variable, raw, extra=_GENAI_CONTENT_MODES)
    return True


def _bool_setting(name: str, explicit: Any, variable: str, env: Mapping[str, str], *, default: bool) -> bool:
    if explicit is not None:
        if not isinstance(explicit, bool):
            raise ConfigurationError(f"{name}={explicit!r} is not valid: expected True or False")
        return explicit
    raw = env.get(variable)
    if raw is not None and raw.strip():
        return parse_bool(variable, raw)
    return default


def _max_content_length(explicit: Any, env: Mapping[str, str]) -> int:
    if explicit is not None:
        return parse_positive_int("max_content_length", explicit)
    raw = env.get("GATEWAY_OTEL_MAX_CONTENT_LENGTH")
    if raw is not None and raw.strip():
        return parse_positive_int("GATEWAY_OTEL_MAX_CONTENT_LENGTH", raw)
    return Settings.max_content_length


def _gateway(explicit: Any, env: Mapping[str, str]) -> str | None:
    """A known gateway name (any case); a typo fails naming the allowed ones, as every other setting does."""
    name, raw = (
        ("gateway", explicit) if explicit is not None else ("GATEWAY_OTEL_GATEWAY", env.get("GATEWAY_OTEL_GATEWAY"))
    )
    if raw is None or (isinstance(raw, str) and not raw.strip() and name != "gateway"):
        return None
    value = raw.strip().lower() if isinstance(raw, str) else None
    if value not in GATEWAY_NAMES:
        close = difflib.get_close_matches(value or "", GATEWAY_NAMES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigurationError(f"{name}={raw!r} is not valid: expected one of {', '.join(GATEWAY_NAMES)}{hint}")
    return value


def _openrouter_trace(explicit: Any, env: Mapping[str, str]) -> bool | None:
    if explicit is not None:
        if isinstance(explicit, bool):
            return explicit
        if isinstance(explicit, str) and explicit.strip().lower() == "auto":
            return None
        raise ConfigurationError(f"openrouter_trace={explicit!r} is not valid: expected 'auto', True or False")
    raw = env.get("GATEWAY_OTEL_OPENROUTER_TRACE")
    if raw is None or not raw.strip() or raw.strip().lower() == "auto":
        return None
    value = raw.strip().lower()
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise ConfigurationError(f"GATEWAY_OTEL_OPENROUTER_TRACE={raw!r} is not valid: expected auto, true or false")


def _trace_metadata(explicit: Any, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    expected = f"expected {', '.join(TRACE_NAME_KEYS)} with non-empty text values"
    if explicit is not None:
        name = "trace_metadata"
        if not isinstance(explicit, Mapping):
            raise ConfigurationError(f"trace_metadata={explicit!r} is not valid: {expected} (a mapping)")
        pairs = list(explicit.items())
    else:
        name = "GATEWAY_OTEL_TRACE_METADATA"
        raw = env.get(name, "")
        pairs = []
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigurationError(f"{name}={raw!r} is not valid: expected key=value pairs separated by commas")
            pairs.append((key.strip(), value.strip()))
    for key, value in pairs:
        if key not in TRACE_NAME_KEYS or not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{name} has {key!s}={value!r}: {expected}")
    return tuple((key, value) for key, value in pairs)
