"""In-process use: an httpx `MockTransport` over the simulator, for the httpx flavour the installed openai uses.

openai >= 3 runs on `httpx2` (a fork with the same API), openai 1.x/2.x on `httpx`; an `openai.OpenAI` client only
accepts a client of its own flavour, so the module is the one `openai._base_client` imported (`_httpx.httpx_module`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from .._httpx import httpx_module
from ._app import GatewaySimulator, SimulatedResponse

__all__ = ["http_client", "httpx_module", "transport"]


def _sync_body(chunks: Iterable[bytes], failure: Exception | None) -> Iterator[bytes]:
    yield from chunks
    if failure is not None:
        raise failure


async def _async_body(chunks: Iterable[bytes], failure: Exception | None) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    if failure is not None:
        raise failure


def transport(sim: GatewaySimulator | None = None, *, asynchronous: bool = False) -> Any:
    """A `MockTransport` (of `httpx_module()`) that answers every request, whatever the host, from `sim`.

    Streams are delivered chunk by chunk through a generator, so the client parses SSE incrementally;
    `disconnect` raises `ReadError` from the body iterator and `timeout` raises `ReadTimeout` at send time.
    """
    httpx = httpx_module()
    simulator = sim if sim is not None else GatewaySimulator()
    body_stream = _async_body if asynchronous else _sync_body

    def handler(request: Any) -> Any:
        path = request.url.raw_path.decode("ascii")
        answer: SimulatedResponse = simulator.handle(request.method, path, dict(request.headers), request.content)
        if answer.fault == "timeout":
            raise httpx.ReadTimeout("Simulated read timeout: the gateway never answered", request=request)
        if answer.chunks is None:
            return httpx.Response(answer.status, headers=answer.headers, content=answer.body, request=request)
        failure = httpx.ReadError("Simulated disconnect", request=request) if answer.fault == "disconnect" else None
        content = body_stream(answer.chunks, failure)
        return httpx.Response(answer.status, headers=answer.headers, content=content, request=request)

    return httpx.MockTransport(handler)


def http_client(sim: GatewaySimulator | None = None, *, asynchronous: bool = False) -> Any:
    """`openai.DefaultHttpxClient` (or the async one) over `transport(sim)`, for `openai.OpenAI(http_client=...)`."""
    import openai

    factory = openai.DefaultAsyncHttpxClient if asynchronous else openai.DefaultHttpxClient
    return factory(transport=transport(sim, asynchronous=asynchronous))
