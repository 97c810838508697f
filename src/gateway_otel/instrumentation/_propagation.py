"""Trace join: the request carries the LLM span's identity, so the gateway's own traces nest under it.

Two mechanisms, both applied to the request after its span has started:

- OpenRouter's request field `trace` (`trace_id`, `parent_span_id`, plus `trace_name`, `span_name`,
  `generation_name` when the user names them), which Broadcast uses verbatim as the OTLP trace id and parent span
  id; with it, `session_id` and `user` from `trace_metadata()` when the call does not set them;
- the W3C `traceparent` / `tracestate` headers, for gateways that continue W3C trace context (LiteLLM proxy).

The request is changed on the SDK's request options for this call (it builds them per call, and copies them for each
attempt), with new body and header dicts: the caller's `extra_body` and `extra_headers` are never mutated. Options
that refuse the change are copied first; options that come back for another call are put back as they were before
the join (`restore_options`). When nothing applies, the call goes out untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .._errors import ConfigurationError
from .._internal import internal_error
from .._settings import Settings
from ..gateways import Gateway

__all__ = ["request_adjuster", "restore_options", "trace_metadata"]

_SESSION_ID_MAX = 256  # OpenRouter's limit on `session_id`
_W3C = TraceContextTextMapPropagator()


class _Metadata:
    """What `trace_metadata()` blocks in force say about the calls made inside them (inner blocks win)."""

    __slots__ = ("names", "outer", "session_id", "user")

    def __init__(
        self, names: Mapping[str, str], session_id: str | None, user: str | None, outer: _Metadata | None = None
    ) -> None:
        self.names = names
        self.session_id = session_id
        self.user = user
        self.outer = outer
        """What was in force before this block, restored when it ends."""


class JoinedCall(Protocol):
    """What the trace join reads of a call (an `Invocation`): its span, the request body, the gateway."""

    span: Span
    context: Context
    body: Mapping[str, Any]
    gateway: Gateway
    start_attrs: Mapping[str, Any]


_CURRENT: ContextVar[_Metadata | None] = ContextVar("gateway_otel_trace_metadata", default=None)


def _text(name: str, value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"trace_metadata({name}={value!r}) is not valid: expected a non-empty string")
    if limit is not None and len(value) > limit:
        raise ConfigurationError(
            f"trace_metadata({name}=...) is {len(value)} characters long: expected at most {limit}"
        )
    return value


class trace_metadata:
    """Name the traces of the calls made inside this block and tie them to a session and an end user.

    ``with gateway_otel.trace_metadata(trace_name="checkout", session_id="s-1", user="u-42"): ...``

    On calls where trace join is active (OpenRouter by default), the names go into the request's `trace` field and
    `session_id` / `user` into the request when the call does not set them; on every traced call the span gets
    `session.id` and `user.id`, so the application's spans and OpenRouter Broadcast group the same way. Blocks nest
    (inner values win) and are safe across threads and asyncio tasks (a context variable). Usable as `with` or
    `async with`.
    """

    __slots__ = ("_metadata",)

    def __init__(
        self,
        *,
        trace_name: str | None = None,
        session_id: str | None = None,
        user: str | None = None,
        span_name: str | None = None,
        generation_name: str | None = None,
    ) -> None:
        given = {"trace_name": trace_name, "span_name": span_name, "generation_name": generation_name}
        names = {key: _text(key, value) for key, value in given.items() if value is not None}
        self._metadata = _Metadata(
            names,
            _text("session_id", session_id, _SESSION_ID_MAX),
            _text("user", user),  # type: ignore[arg-type]
        )

    def __enter__(self) -> trace_metadata:
        # The block's state lives in the context variable, not on `self`: one instance may be entered by several
        # threads or tasks at once (a module-level `CHECKOUT = trace_metadata(...)`), each in its own context.
        outer, mine = _CURRENT.get(), self._metadata
        if outer is None:
            _CURRENT.set(_Metadata(mine.names, mine.session_id, mine.user))
        else:
            _CURRENT.set(
                _Metadata(
                    {**outer.names, **mine.names},
                    mine.session_id if mine.session_id is not None else outer.session_id,
                    mine.user if mine.user is not None else outer.user,
                    outer,
                )
            )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        current = _CURRENT.get()
        _CURRENT.set(current.outer if current is not None else None)

    async def __aenter__(self) -> trace_metadata:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


Adjuster = Callable[[JoinedCall, tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]


def request_adjuster(settings: Settings) -> Adjuster:
    """The per-call step that adds the trace join to a request: `(invocation, args, kwargs) -> (args, kwargs)`.

    `args`/`kwargs` are those of `request(cast_to, options, ...)`; the returned ones carry a modified copy of
    `options`, or are the same objects when nothing applies. Never raises.
    """
    join_setting = settings.openrouter_trace
    traceparent = settings.propagate_traceparent
    defaults: Mapping[str, str] = dict(settings.trace_metadata)

    def adjust(
        invocation: JoinedCall, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        try:
            metadata = _CURRENT.get()
            join = invocation.gateway.name == "openrouter" if join_setting is None else join_setting
            if not join and not traceparent and metadata is None:
                return args, kwargs
            options = args[1] if len(args) > 1 else kwargs.get("options")
            headers = getattr(options, "headers", None)
            headers = headers if isinstance(headers, Mapping) else {}
            if metadata is not None:
                _identify_span(invocation, headers, metadata)
            if not join and not traceparent:
                return args, kwargs
            changed = _adjusted_options(invocation, options, headers, join, traceparent, metadata, defaults)
            if changed is None or changed is options:
                return args, kwargs
            if len(args) > 1:
                return (args[0], changed, *args[2:]), kwargs
            return args, {**kwargs, "options": changed}
        except Exception:
            internal_error("trace join")
            return args, kwargs

    return adjust


def _has_header(headers: Mapping[str, Any], name: str) -> bool:
    return any(isinstance(key, str) and key.lower() == name for key in headers)


def _identify_span(invocation: JoinedCall, headers: Mapping[str, Any], metadata: _Metadata) -> None:
    """`session.id` / `user.id` from `trace_metadata()` on the span, unless the call itself set them."""
    body, attrs = invocation.body, {}
    if metadata.session_id is not None and "session_id" not in body and not _has_header(headers, "x-session-id"):
        attrs["session.id"] = metadata.session_id
        attrs["gen_ai.conversation.id"] = metadata.session_id
    if metadata.user is not None and "user" not in body:
        attrs["user.id"] = metadata.user
    if attrs:
        invocation.span.set_attributes(attrs)
        if isinstance(invocation.start_attrs, dict):  # keep the attribute budget exact
            invocation.start_attrs.update(attrs)


def _adjusted_options(
    invocation: JoinedCall,
    options: Any,
    headers: Mapping[str, Any],
    join: bool,
    traceparent: bool,
    metadata: _Metadata | None,
    defaults: Mapping[str, str],
) -> Any:
    """`options` with the trace join added (themselves, or a copy when they refuse it), or None when there is
    nothing to add. Not copying them saves ~1 KiB and ~1 µs per call (pydantic's `model_copy`)."""
    extra_json = None
    if join and isinstance(getattr(options, "json_data", None), Mapping):
        additions = _body_additions(invocation, headers, metadata, defaults)
        if additions:
            user_extra = getattr(options, "extra_json", None)
            extra_json = {**user_extra, **additions} if isinstance(user_extra, Mapping) else additions
    new_headers = None
    if traceparent and not _has_header(headers, "traceparent"):
        carrier: dict[str, str] = {}
        _W3C.inject(carrier, context=invocation.context)
        if carrier:
            new_headers = {**headers, **carrier}
    if extra_json is None and new_headers is None:
        return None
    try:
        _set_join(options, extra_json, new_headers)
        return options
    except Exception:  # options that cannot be changed (frozen): a copy takes the join
        copy = options.model_copy() if hasattr(options, "model_copy") else options.copy()
        _set_join(copy, extra_json, new_headers)
        return copy


def _set_join(options: Any, extra_json: dict[str, Any] | None, headers: dict[str, Any] | None) -> None:
    if extra_json is not None:
        options.extra_json = _Joined(extra_json, getattr(options, "extra_json", None))
    if headers is not None:
        options.headers = _Joined(headers, getattr(options, "headers", None))


class _Joined(dict):  # type: ignore[type-arg]
    """A call's `extra_json` or headers with the trace join added, holding what the options held before: options
    that reach `request()` again (a caller's own `client.request(cast_to, options)`, twice) are put back first
    (`restore_options`), so that each call carries its own join, not the previous call's."""

    __slots__ = ("original",)

    def __init__(self, joined: Mapping[str, Any], original: Any) -> None:
        super().__init__(joined)
        self.original = original


def restore_options(options: Any) -> None:
    """Put back what an earlier call's trace join replaced on these request options, if it did (never raises)."""
    for name in ("extra_json", "headers"):
        value = getattr(options, name, None)
        if type(value) is _Joined:
            try:
                setattr(options, name, value.original)
            except Exception:
                internal_error("trace join")


def _body_additions(
    invocation: JoinedCall, headers: Mapping[str, Any], metadata: _Metadata | None, defaults: Mapping[str, str]
) -> dict[str, Any]:
    """The body keys to add: `trace` (merged with the caller's, whose keys win), `session_id`, `user`."""
    sent = invocation.body  # the caller's body and extra_body, as the gateway would receive them
    trace: dict[str, Any] = {}
    context = invocation.span.get_span_context()
    if context.is_valid:
        trace["trace_id"] = format(context.trace_id, "032x")
        trace["parent_span_id"] = format(context.span_id, "016x")
    if defaults:
        trace.update(defaults)
    if metadata is not None and metadata.names:
        trace.update(metadata.names)
    additions: dict[str, Any] = {}
    user_trace = sent.get("trace")
    if isinstance(user_trace, Mapping):
        additions["trace"] = {**trace, **user_trace}
    elif "trace" not in sent and trace:  # a non-mapping `trace` (even None) is the caller's choice
        additions["trace"] = trace
    if metadata is not None:
        if metadata.session_id is not None and "session_id" not in sent and not _has_header(headers, "x-session-id"):
            additions["session_id"] = metadata.session_id
        if metadata.user is not None and "user" not in sent:
            additions["user"] = metadata.user
    return additions
