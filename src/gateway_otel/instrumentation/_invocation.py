"""One span lifecycle per call, shared by the sync and async paths (and by streams).

`InstrumentationHandler.start` (`_handler`) decides whether a request is ours and opens the span; the returned
`Invocation` receives the result or the error and ends the span exactly once. Neither ever raises: every telemetry
step is guarded and reported through `internal_error`, while the user's call runs outside these guards.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from .._internal import internal_error
from .._prices import PRICE_TABLE, free_locally, price_request
from .._secrets import Scrubber
from .._settings import Settings
from ..gateways import Gateway, HeaderFacts, header_facts, reads_headers
from . import _attributes as A
from ._accumulate import ChatAccumulator, ResponsesAccumulator
from ._content import as_text
from ._endpoints import Endpoint
from ._logs import FailureLog
from ._metrics import Measurements, MetricRecorder
from ._raw import wrap_raw_response
from ._response import ResponseRecord
from ._span_attributes import set_span_attributes
from ._stream import StreamState, TracedAsyncStream, TracedStream


class Handler(Protocol):
    """What an invocation needs of the `InstrumentationHandler` that opened it (`_handler`, which imports this)."""

    settings: Settings
    failure_log: FailureLog
    metrics: MetricRecorder | None

    def learn_gateway(self, host: Any, port: Any, gateway: Gateway) -> None: ...

    def fetch_generation(self, client: Any, generation_id: str, span_context: trace.SpanContext) -> None: ...

_DEFAULT_ATTRIBUTE_LIMIT = 128
_RESERVED_ATTRIBUTES = 4
"""Room kept free under the span's attribute limit, so that nothing set later evicts an essential attribute."""
_OK = Status(StatusCode.OK)


class Invocation:
    """The life of one traced call: `complete(result)` or `fail(exc)` ends its span, once."""

    __slots__ = (
        "_credentials",
        "_ended",
        "_started",
        "_stream_state",
        "body",
        "context",
        "endpoint",
        "gateway",
        "handler",
        "header_facts",
        "raw_mode",
        "span",
        "start_attrs",
        "stream",
    )

    def __init__(
        self,
        handler: Handler,
        span: trace.Span,
        endpoint: Endpoint,
        body: Mapping[str, Any],
        gateway: Gateway,
        start_attrs: Mapping[str, Any],
        raw_mode: Any,
        stream: bool,
        client: Any,
        headers: Mapping[str, Any] | None,
    ) -> None:
        self.handler = handler
        self.span = span
        self.context = trace.set_span_in_context(span)
        self.endpoint = endpoint
        self.body = body
        self.gateway = gateway
        self.start_attrs = start_attrs
        self.raw_mode = raw_mode
        self.stream = stream
        self._credentials: tuple[Any, Mapping[str, Any] | None] | Scrubber = (client, headers)
        self.header_facts: HeaderFacts | None = None
        self._started = time.perf_counter()
        self._ended = False
        self._stream_state: StreamState | None = None

    def on_http_response(self, response: Any) -> None:
        """The HTTP response arrived (before it is parsed): keep what its headers say about the gateway."""
        try:
            if reads_headers(self.gateway):
                self.header_facts = header_facts(getattr(response, "headers", None))
        except Exception:
            internal_error("response headers")

    def complete(self, result: Any) -> Any:
        """Record a successful result and end the span, or hand a stream to a proxy that will.

        Returns `result` itself, or for a stream a proxy that behaves exactly like it.
        """
        try:
            if self.raw_mode is not None:
                return wrap_raw_response(self, result)
            if self.stream:
                return self.wrap_stream(result)
            self.record_response(result)
        except Exception:
            internal_error("complete")
            self.end_anyway()
        return result

    def record_response(self, response: Any) -> None:
        """End the span with a complete, non-streamed response (an SDK object or its JSON)."""
        settings = self.handler.settings
        if isinstance(response, (str, bytes)):  # a 200 whose body is not JSON (an HTML error page): the SDK's text
            text = response if isinstance(response, str) else response.decode("utf-8", "replace")
            self._end(ResponseRecord(error_code="invalid_response", error_message=f"not JSON: {text[:200]}"), None)
            return
        record = self.endpoint.map_response(response, settings.capture_content, settings.max_content_length)
        self._end(record, None)

    def wrap_stream(self, stream: Any) -> Any:
        """The proxy that records `stream` as the caller iterates it; `stream` itself when it is not one."""
        is_async = hasattr(stream, "__anext__")
        if not is_async and not hasattr(stream, "__next__"):
            self.end_anyway()
            return stream
        settings = self.handler.settings
        accumulator_type = ResponsesAccumulator if self.endpoint.path == "/responses" else ChatAccumulator
        state = StreamState(self, accumulator_type(settings.capture_content, settings.max_content_length))
        self._stream_state = state
        return TracedAsyncStream(stream, state) if is_async else TracedStream(stream, state)

    def close_stream(self) -> None:
        """The caller closed the response a stream was read from: the stream ends as closed (if not already)."""
        if self._stream_state is not None:
            self._stream_state.finish("closed")

    def end_stream(self, state: StreamState, record: ResponseRecord, outcome: str, exc: BaseException | None) -> None:
        """End the span of a stream: `outcome` is completed, closed, abandoned, cancelled or error."""
        extra: dict[str, Any] = {"gateway.stream.outcome": outcome, "gateway.stream.chunks": state.chunks}
        first = state.first_chunk_at
        if first is not None:
            extra["gen_ai.response.time_to_first_chunk"] = first - self._started
        if record.usage is None:
            extra["gateway.usage.reported"] = False
        self._end(record, exc, extra, state)

    def fail(self, exc: BaseException) -> None:
        """Record the error the call raised and end the span; the caller re-raises `exc` unchanged."""
        try:
            self._end(None, exc)
        except Exception:
            internal_error("fail")
            self.end_anyway()

    def end_unread(self) -> None:
        """End a call whose response the caller closed or dropped without reading it through the SDK."""
        self._end(None, None, {"gateway.stream.outcome": "abandoned"} if self.stream else None)

    def end_anyway(self) -> None:
        """End the span with whatever it has; the last resort when recording failed."""
        if not self._ended:
            self._ended = True
            try:
                self.span.end()
            except Exception:
                internal_error("end")

    def _end(
        self,
        record: ResponseRecord | None,
        exc: BaseException | None,
        extra: dict[str, Any] | None = None,
        stream: StreamState | None = None,
    ) -> None:
        if self._ended:
            return
        self._ended = True
        duration = time.perf_counter() - self._started
        span = self.span
        settings = self.handler.settings
        # The client, for OpenRouter's generation record, before scrubbing replaces it (`_scrub`) with its secrets.
        client = self._credentials[0] if settings.openrouter_generation and type(self._credentials) is tuple else None
        attrs: dict[str, Any] = {}
        error = None
        try:  # whatever goes wrong while recording, the span ends
            if record is not None:
                record.clean()
            limit = settings.max_content_length
            facts = self.header_facts
            if facts is None and exc is not None and reads_headers(self.gateway):
                facts = header_facts(getattr(getattr(exc, "response", None), "headers", None))
            if facts is not None:
                self._apply_header_facts(facts, record, attrs)
            if record is not None and settings.local_models_free:
                self._price_local_call(record)
            if record is not None:
                attrs.update(A.response_attributes(record, self.endpoint, self.gateway))
                if record.error_message is not None or record.error_code is not None:
                    error = str(record.error_code) if record.error_code is not None else "gateway_error"
                    attrs["error.type"] = error
                    if record.error_code is not None:
                        attrs["gateway.error.code"] = str(record.error_code)
                    if record.error_message:
                        attrs["gateway.error.message"] = self._clean(record.error_message, min(limit, 4096))
            if extra:
                attrs.update(extra)
            if exc is not None:
                error = A.error_type(exc)
                attrs["error.type"] = error
                for key, value in A.error_attributes(exc).items():
                    attrs[key] = self._clean(value, min(limit, 4096))
            if span.is_recording():
                if settings.capture_content:
                    attrs.update(self._content_attributes(record, len(attrs)))
                set_span_attributes(span, attrs)
                if stream is not None and stream.first_chunk_at is not None:
                    span.add_event("gateway.first_chunk", timestamp=stream.first_chunk_ns)
                if exc is not None:
                    self._record_exception(exc, error)
                elif error is not None:
                    span.set_status(Status(StatusCode.ERROR, attrs.get("gateway.error.message") or error))
                elif attrs.get("gateway.stream.outcome", "completed") == "completed":
                    span.set_status(_OK)
        finally:
            span.end()
        if error is not None:
            message = self._clean(str(exc), settings.max_content_length) if exc is not None else None
            self.handler.failure_log.emit(
                self.context, span.get_span_context(), self.start_attrs, attrs, message, exc
            )
        recorder = self.handler.metrics
        if recorder is not None:
            recorder.put(self._measurements(duration, record, error, stream))
        if client is not None and record is not None and record.id and self.gateway.name == "openrouter":
            self.handler.fetch_generation(client, record.id, span.get_span_context())

    def _apply_header_facts(self, facts: HeaderFacts, record: ResponseRecord | None, attrs: dict[str, Any]) -> None:
        """A gateway recognised by its headers renames the call's gateway (unless the `gateway` option forced one)."""
        if record is not None:
            A.merge_header_facts(record, facts)
        attrs.update(A.header_attributes(facts))
        if facts.gateway.name != self.gateway.name and not self.handler.settings.gateway:
            renamed = A.gateway_attributes(facts.gateway)
            attrs.update(renamed)
            self.gateway = facts.gateway
            start = self.start_attrs
            self.start_attrs = {**start, "gen_ai.provider.name": renamed["gen_ai.provider.name"]}
            self.handler.learn_gateway(start.get("server.address"), start.get("server.port"), facts.gateway)

    def _price_local_call(self, record: ResponseRecord) -> None:
        """`local_models_free`: a call to a local model server that reported usage and no cost costs 0, from us."""
        usage = record.usage
        if usage is not None and usage.cost is None and free_locally(self.gateway.name, self.start_attrs):
            usage.cost, usage.cost_source = 0.0, PRICE_TABLE

    def _content_attributes(self, record: ResponseRecord | None, used: int) -> dict[str, Any]:
        """Captured content within the span's attribute limit, so that nothing essential is ever evicted."""
        limit = self.handler.settings.max_content_length
        span_limits = getattr(self.span, "_limits", None)
        max_attributes = getattr(span_limits, "max_span_attributes", None) or _DEFAULT_ATTRIBUTE_LIMIT
        endpoint, body = self.endpoint, self.body
        messages = endpoint.input_messages(body, limit)
        attrs = A.input_content_attributes(endpoint, body, messages, limit)
        if record is not None:
            attrs.update(A.output_content_attributes(record, limit))
        room = max_attributes - len(self.start_attrs) - used - _RESERVED_ATTRIBUTES
        budget = room - len(attrs)
        if budget < 0:  # a span attribute limit this small: only the content that fits, the rest left out
            return dict(list(attrs.items())[: max(room, 0)])
        if endpoint.operation == "embeddings":
            attrs.update(A.embedding_texts(messages, budget))
            return attrs
        if record is not None and record.output:
            output = A.flattened_messages("llm.output_messages", record.output, budget)
            budget -= len(output)
            attrs.update(output)
        tools = A.tool_schema_attributes(body, limit, budget // 4)
        budget -= len(tools)
        attrs.update(A.flattened_messages("llm.input_messages", messages, budget))
        attrs.update(tools)
        return attrs

    def _record_exception(self, exc: BaseException, error: str | None) -> None:
        """`record_exception`, with the client's API key scrubbed from the message and the stack trace."""
        message = self._scrub(str(exc))
        stacktrace = self._scrub("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        self.span.add_event(
            "exception",
            {"exception.type": A.exception_type(exc), "exception.message": message, "exception.stacktrace": stacktrace},
        )
        self.span.set_status(Status(StatusCode.ERROR, as_text(f"{error}: {message}", 1024)))

    def _scrub(self, text: str) -> str:
        """`text` without the credentials this call sent, nor any credential-shaped value (the error path only)."""
        scrubber = self._credentials
        if not isinstance(scrubber, Scrubber):
            scrubber = self._credentials = Scrubber.of_call(*scrubber, self.body)
        return scrubber(text)

    def _clean(self, value: Any, limit: int) -> str:
        """Scrubbed, then cut: a credential straddling the cut would otherwise survive in part."""
        return as_text(self._scrub(str(value)), limit)

    def _measurements(
        self, duration: float, record: ResponseRecord | None, error: str | None, stream: StreamState | None
    ) -> Measurements:
        """This call's metrics, for the recorder's worker (`_metrics.Measurements`); the key's order is
        `_metrics.METRIC_ATTRIBUTES`'."""
        start = self.start_attrs.get
        key = (
            start("gen_ai.operation.name"),
            start("gen_ai.provider.name"),
            start("gen_ai.request.model"),
            start("server.address"),
            start("server.port"),
            (record.model or None) if record is not None else None,
            (record.upstream_provider or None) if record is not None else None,
            error,
        )
        first_chunk = per_chunk = None
        if stream is not None and stream.first_chunk_at is not None:
            first_chunk = stream.first_chunk_at - self._started
            # Closed, abandoned or cancelled, the end came when the caller decided, not with a chunk.
            if stream.chunks > 1 and stream.outcome in ("completed", "error"):
                per_chunk = (stream.last_chunk_at - stream.first_chunk_at) / (stream.chunks - 1)
        usage = record.usage if record is not None else None
        if usage is None:
            return key, duration, first_chunk, per_chunk, None, None, None, otel_context.get_current()
        cost: Any = usage.cost
        if cost is None:  # the recorder's worker prices it (`_prices`), never this thread
            model = record.model or start("gen_ai.request.model")  # type: ignore[union-attr]
            counts = (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                      usage.input_audio_tokens, usage.output_audio_tokens)  # fmt: skip
            cost = price_request(self.gateway.name, model, counts, getattr(self.span, "start_time", None))
        return (
            key,
            duration,
            first_chunk,
            per_chunk,
            usage.input_tokens,
            usage.output_tokens,
            cost,
            otel_context.get_current(),
        )
