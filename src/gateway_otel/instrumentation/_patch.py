"""The patch point: `SyncAPIClient.request` and `AsyncAPIClient.request` of the openai client.

Every endpoint call of every openai major (1.x, 2.x, 3.x), whatever the surface (`create`, `parse`, the stream
helpers, `with_raw_response`), goes through `request()`, so two wrappers cover all of them and `uninstrument()`
restores exactly the two callables `instrument()` replaced.

`_process_response` is wrapped too, only to hand the HTTP response (its headers: LiteLLM's served model and cost)
to the invocation of the `request()` running in the same context; it is the one place every successful call,
streamed, raw or parsed, passes with its `httpx.Response`.

The user's call is never inside the telemetry's `try`: `InstrumentationHandler.start`, `Invocation.complete` and
`Invocation.fail` never raise, and the call's own result or exception passes through untouched.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from wrapt import FunctionWrapper

from ._handler import InstrumentationHandler
from ._propagation import request_adjuster

_TARGETS = (("openai._base_client", "SyncAPIClient"), ("openai._base_client", "AsyncAPIClient"))
_current: ContextVar[Any] = ContextVar("gateway_otel_invocation", default=None)
"""The invocation whose `request()` is running in this context, for the `_process_response` wrapper."""


def _sync_wrapper(handler: InstrumentationHandler) -> Any:
    adjust = request_adjuster(handler.settings)

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        invocation = handler.start(instance, args, kwargs)
        if invocation is None:
            return wrapped(*args, **kwargs)
        args, kwargs = adjust(invocation, args, kwargs)
        token = otel_context.attach(invocation.context)
        current = _current.set(invocation)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            invocation.fail(exc)
            raise
        finally:
            _current.reset(current)
            otel_context.detach(token)
        return invocation.complete(result)

    return wrapper


def _async_wrapper(handler: InstrumentationHandler) -> Any:
    adjust = request_adjuster(handler.settings)

    async def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        invocation = handler.start(instance, args, kwargs)
        if invocation is None:
            return await wrapped(*args, **kwargs)
        args, kwargs = adjust(invocation, args, kwargs)
        token = otel_context.attach(invocation.context)
        current = _current.set(invocation)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            invocation.fail(exc)
            raise
        finally:
            _current.reset(current)
            otel_context.detach(token)
        return invocation.complete(result)

    return wrapper


def _process_response_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Sync and async alike: the async original returns its coroutine, awaited by the caller as before."""
    invocation = _current.get()
    if invocation is not None:
        invocation.on_http_response(kwargs.get("response"))
    return wrapped(*args, **kwargs)


def patch(handler: InstrumentationHandler) -> list[tuple[type, str, Any]]:
    """Wrap both `request` methods; returns what to restore."""
    import importlib

    restored: list[tuple[type, str, Any]] = []
    for (module_name, class_name), make in zip(_TARGETS, (_sync_wrapper, _async_wrapper), strict=True):
        cls = getattr(importlib.import_module(module_name), class_name)
        original = cls.__dict__["request"]
        cls.request = FunctionWrapper(original, make(handler))
        restored.append((cls, "request", original))
        process = cls.__dict__.get("_process_response")
        if process is not None:
            cls._process_response = FunctionWrapper(process, _process_response_wrapper)
            restored.append((cls, "_process_response", process))
    return restored


def unpatch(restored: list[tuple[type, str, Any]]) -> None:
    """Put back exactly the callables `patch` replaced."""
    for cls, name, original in restored:
        setattr(cls, name, original)
