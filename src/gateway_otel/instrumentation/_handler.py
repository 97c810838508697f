"""What one `instrument()` call set up: the tracer, the metric instruments, the failure log and the settings.

`InstrumentationHandler.start` decides whether a request is ours and opens its span, returning the `Invocation`
that ends it. It caches what repeats from call to call: each client's host, port and gateway (and the gateway a
server named in its response headers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .._internal import internal_error
from .._settings import Settings
from ..gateways import Gateway, detect_gateway, gateway_by_name
from . import _attributes as A
from ._endpoints import Endpoint, find_endpoint
from ._invocation import Invocation
from ._logs import FailureLog, GenerationLog
from ._metrics import MetricRecorder
from ._propagation import restore_options

try:  # the key moved between OTel releases; both spellings are honoured
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY
except ImportError:  # pragma: no cover
    from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY

RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
_CACHE_SIZE = 256
"""Entries kept per cache below; a full cache is emptied and refilled (distinct clients and models are few)."""


class InstrumentationHandler:
    """What one `instrument()` call set up, built together: the tracer, the metric recorder (None with metrics
    off), the failure log, the generation log (None unless `openrouter_generation`) and the settings.

    It also caches what repeats from call to call: the host, port and gateway of each client's base URL.
    """

    __slots__ = ("_learned", "_origins", "failure_log", "generation_log", "metrics", "settings", "tracer")

    def __init__(
        self,
        tracer: trace.Tracer,
        metrics: MetricRecorder | None,
        failure_log: FailureLog,
        settings: Settings,
        generation_log: GenerationLog | None = None,
    ) -> None:
        self.tracer = tracer
        self.metrics = metrics
        self.failure_log = failure_log
        self.settings = settings
        self.generation_log = generation_log
        self._origins: dict[int, tuple[Any, str | None, int | None, Gateway]] = {}
        self._learned: dict[tuple[Any, Any], Gateway] = {}

    def start(self, client: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Invocation | None:
        """Open the span for a `request(cast_to, options, ...)` call, or return None when it is not traced."""
        try:
            options = args[1] if len(args) > 1 else kwargs.get("options")
            restore_options(options)  # options used for an earlier call: without that call's trace join
            if otel_context.get_value(_SUPPRESS_KEY):
                return None
            endpoint = find_endpoint(getattr(options, "method", None), getattr(options, "url", None))
            if endpoint is None:
                return None
            headers = getattr(options, "headers", None)
            headers = headers if isinstance(headers, Mapping) else {}
            raw_mode = headers.get(RAW_RESPONSE_HEADER)
            stream = kwargs.get("stream") is True
            if stream and self.settings.stream_usage:
                _request_stream_usage(endpoint, options)
            return self._open(client, endpoint, options, headers, raw_mode, stream)
        except Exception:
            internal_error("start")
            return None

    def _open(
        self, client: Any, endpoint: Endpoint, options: Any, headers: Mapping[str, Any], raw_mode: Any, stream: bool
    ) -> Invocation:
        body = getattr(options, "json_data", None)
        body = body if isinstance(body, Mapping) else {}
        extra = getattr(options, "extra_json", None)
        if isinstance(extra, Mapping) and extra:
            body = {**body, **extra}
        base_url = getattr(client, "base_url", None)
        origin = self._origins.get(id(base_url))
        if origin is None or origin[0] is not base_url:
            origin = self._origin(base_url)
        _, host, port, gateway = origin
        attrs = A.request_attributes(endpoint, body, gateway, host, port)
        default_headers = getattr(client, "_custom_headers", None)
        if isinstance(default_headers, Mapping) and default_headers:
            attrs.update(A.app_attributes(default_headers))
        if headers:
            attrs.update(A.app_attributes(headers))
        model = attrs.get("gen_ai.request.model")
        name = f"{endpoint.operation} {model}" if model else endpoint.operation
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        return Invocation(self, span, endpoint, body, gateway, attrs, raw_mode, stream, client, headers)

    def _origin(self, base_url: Any) -> tuple[Any, str | None, int | None, Gateway]:
        """Host, port and gateway of a base URL, cached by identity (the cache holds the URL, so ids stay unique)."""
        host = getattr(base_url, "host", None) or None
        port = getattr(base_url, "port", None)
        if port is None and host:
            port = 443 if getattr(base_url, "scheme", "https") == "https" else 80
        forced = self.settings.gateway
        if forced:
            gateway = gateway_by_name(forced)
        else:
            gateway = self._learned.get((host, port)) or detect_gateway(host or "", port)
        origin = (base_url, host, port, gateway)
        if len(self._origins) >= _CACHE_SIZE:
            self._origins.clear()
        self._origins[id(base_url)] = origin
        return origin

    def fetch_generation(self, client: Any, generation_id: str, span_context: trace.SpanContext) -> None:
        """Queue OpenRouter's record of this call's generation for the worker (`openrouter_generation`), with the
        client's base URL and key; a client without a key has nothing to ask with."""
        try:
            log = self.generation_log
            key = getattr(client, "api_key", None)
            if log is None or not isinstance(key, str) or not key:
                return
            from ..openrouter._generation_worker import generation_worker

            generation_worker().put(generation_id, span_context, str(client.base_url), key, log.emit)
        except Exception:
            internal_error("generation")

    def learn_gateway(self, host: Any, port: Any, gateway: Gateway) -> None:
        """A server named its gateway in a response's headers: its next calls are that gateway's from the request
        on (the OpenRouter trace join, the provider name on the span's start)."""
        if self._learned.get((host, port)) is not gateway:
            if len(self._learned) >= _CACHE_SIZE:
                self._learned.clear()
            self._learned[(host, port)] = gateway
            self._origins.clear()


def _request_stream_usage(endpoint: Endpoint, options: Any) -> None:
    """Opt-in: ask the gateway for the final usage chunk (`stream_options.include_usage`), unless the caller chose.

    The request body is the SDK's own per-call copy; it is replaced, never mutated, so the caller's objects stay
    as they were.
    """
    if endpoint.operation not in ("chat", "text_completion") or endpoint.path == "/responses":
        return
    body = getattr(options, "json_data", None)
    if not isinstance(body, Mapping):
        return
    stream_options = body.get("stream_options")
    if isinstance(stream_options, Mapping) and "include_usage" in stream_options:
        return
    merged = (
        {**stream_options, "include_usage": True} if isinstance(stream_options, Mapping) else {"include_usage": True}
    )
    options.json_data = {**body, "stream_options": merged}
