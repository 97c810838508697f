"""`with_raw_response` and `with_streaming_response`: the span follows the response object the caller holds.

- `with_raw_response` returns a response whose body is already read (a non-streamed call is recorded at once from
  its JSON) or, for `stream=True`, whose `parse()` returns the stream: the proxy wraps that stream.
- `with_streaming_response` returns a response whose body is not read yet: the span ends when the caller parses it
  (a stream is wrapped, a body recorded), reads its JSON, closes it (the context manager does), or drops it.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Protocol

from .._internal import internal_error
from ._proxy import Proxy


class RawCall(Protocol):
    """What a raw or streaming response proxy drives (an `Invocation`)."""

    raw_mode: Any
    stream: bool

    def record_response(self, response: Any) -> None: ...
    def wrap_stream(self, stream: Any) -> Any: ...
    def close_stream(self) -> None: ...
    def end_unread(self) -> None: ...
    def end_anyway(self) -> None: ...


def wrap_raw_response(invocation: RawCall, response: Any) -> Any:
    if invocation.raw_mode == "stream":
        is_async = _is_coroutine_method(response, "parse")
        return _AsyncStreamingResponse(response, invocation) if is_async else _StreamingResponse(response, invocation)
    if invocation.stream:
        return _RawStreamResponse(response, invocation)
    http_response = getattr(response, "http_response", None)
    invocation.record_response(json.loads(http_response.content) if http_response is not None else response)
    return response


def _body_read(response: Any) -> Any:
    """The JSON body of a response the caller has read whole; None when it was not read (or is not JSON)."""
    http_response = getattr(response, "http_response", None)
    try:
        content = http_response.content
    except (AttributeError, RuntimeError):  # no response, or httpx's ResponseNotRead (a RuntimeError): not read yet
        return None
    try:
        return json.loads(content)
    except (TypeError, ValueError):
        return None


def _is_coroutine_method(obj: Any, name: str) -> bool:
    return inspect.iscoroutinefunction(getattr(type(obj), name, None))


class _ResponseProxy(Proxy):  # type: ignore[misc]
    def __init__(self, response: Any, invocation: RawCall) -> None:
        super().__init__(response)
        self._self_invocation = invocation
        self._self_parsed: Any = None

    def _self_record(self, parsed: Any) -> Any:
        """The stream proxy for a stream (made once), else the parsed body recorded; never raises."""
        invocation = self._self_invocation
        try:
            if invocation.stream:
                if self._self_parsed is None:
                    self._self_parsed = (parsed, invocation.wrap_stream(parsed))
                return self._self_parsed[1] if self._self_parsed[0] is parsed else parsed
            invocation.record_response(parsed)
        except Exception:
            internal_error("raw response")
            invocation.end_anyway()
        return parsed

    def _self_end_unread(self) -> None:
        """The caller closed or dropped the response: end the span, or the stream read from it."""
        try:
            invocation = self._self_invocation
        except (AttributeError, ValueError):  # `__init__` never ran; wrapt 1.x says so with ValueError
            return
        if invocation is None:
            return
        try:
            if self._self_parsed is None:
                body = None if invocation.stream else _body_read(self.__wrapped__)
                if body is None:
                    invocation.end_unread()
                else:  # the caller read the body itself (`read()`, `text()`): it is recorded all the same
                    invocation.record_response(body)
            else:
                invocation.close_stream()
        except Exception:
            internal_error("raw response end")

    def __del__(self) -> None:
        try:
            parsed = self._self_parsed
        except (AttributeError, ValueError):  # `__init__` never ran; wrapt 1.x says so with ValueError
            return
        if parsed is None:
            self._self_end_unread()


class _RawStreamResponse(_ResponseProxy):
    """`with_raw_response` + `stream=True`: `parse()` gives the stream."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_record(self.__wrapped__.parse(*args, **kwargs))


class _StreamingResponse(_ResponseProxy):
    """`with_streaming_response`, sync client."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_record(self.__wrapped__.parse(*args, **kwargs))

    def json(self) -> Any:
        data = self.__wrapped__.json()
        if not self._self_invocation.stream:
            self._self_record(data)
        return data

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_end_unread()


class _AsyncStreamingResponse(_ResponseProxy):
    """`with_streaming_response`, async client."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_record(await self.__wrapped__.parse(*args, **kwargs))

    async def json(self) -> Any:
        data = await self.__wrapped__.json()
        if not self._self_invocation.stream:
            self._self_record(data)
        return data

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_end_unread()
