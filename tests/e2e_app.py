"""An application as a user writes it: `gateway_otel.instrument()` with no arguments, everything else from env vars.

Run by the end-to-end tests as a subprocess, so that env-only configuration, the exporter set-up and the flush at
interpreter exit are all real. It talks to the gateway at `OPENAI_BASE_URL` with `OPENAI_API_KEY` through the real
`openai` client, runs the scenarios named on the command line, and prints one JSON line per scenario with what the
application itself saw (so the tests can check that the instrumentation changed nothing), e.g.:

    python e2e_app.py chat stream stream_usage async_chat async_stream embeddings rate_limit timeout

Each request carries `user="e2e-<scenario>"` (recorded as `user.id`), which tells the spans apart in the backend.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import openai

import gateway_otel

gateway_otel.instrument()

MESSAGES = [{"role": "user", "content": "Say hello"}]


def _chat(scenario: str, **extra: Any) -> dict[str, Any]:
    return {"model": "mock-gpt", "messages": MESSAGES, "user": f"e2e-{scenario}", **extra}


def chat(client: openai.OpenAI) -> dict[str, Any]:
    response = client.chat.completions.create(**_chat("chat"))
    return {"text": response.choices[0].message.content, "model": response.model, "usage": response.usage.total_tokens}


def _stream(client: openai.OpenAI, scenario: str, **extra: Any) -> dict[str, Any]:
    text, chunks, usage = [], 0, None
    for chunk in client.chat.completions.create(**_chat(scenario, stream=True, **extra)):
        chunks += 1
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage.total_tokens
    return {"text": "".join(text), "chunks": chunks, "usage": usage}


def stream(client: openai.OpenAI) -> dict[str, Any]:
    return _stream(client, "stream")


def stream_usage(client: openai.OpenAI) -> dict[str, Any]:
    return _stream(client, "stream_usage", stream_options={"include_usage": True})


async def _async_chat() -> dict[str, Any]:
    client = openai.AsyncOpenAI(max_retries=0)  # one per event loop
    response = await client.chat.completions.create(**_chat("async_chat"))
    return {"text": response.choices[0].message.content, "usage": response.usage.total_tokens}


async def _async_stream() -> dict[str, Any]:
    client = openai.AsyncOpenAI(max_retries=0)
    text = []
    stream = await client.chat.completions.create(**_chat("async_stream", stream=True))
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    return {"text": "".join(text)}


def embeddings(client: openai.OpenAI) -> dict[str, Any]:
    response = client.embeddings.create(model="mock-embed", input="hello", user="e2e-embeddings")
    return {"dimensions": len(response.data[0].embedding), "vectors": len(response.data)}


def rate_limit(client: openai.OpenAI) -> dict[str, Any]:
    try:
        client.chat.completions.create(**_chat("rate_limit", model="mock-429"))
    except openai.RateLimitError as exc:
        return {"error": type(exc).__name__, "status": exc.status_code}
    return {"error": None}


def timeout(client: openai.OpenAI) -> dict[str, Any]:
    try:
        client.with_options(timeout=1.5).chat.completions.create(**_chat("timeout", model="mock-timeout"))
    except openai.APITimeoutError as exc:
        return {"error": type(exc).__name__}
    return {"error": None}


SYNC = {"chat": chat, "stream": stream, "stream_usage": stream_usage, "embeddings": embeddings}
SYNC |= {"rate_limit": rate_limit, "timeout": timeout}
ASYNC = {"async_chat": _async_chat, "async_stream": _async_stream}


def main(scenarios: list[str]) -> None:
    client = openai.OpenAI(max_retries=0)
    for scenario in scenarios:
        seen = SYNC[scenario](client) if scenario in SYNC else asyncio.run(ASYNC[scenario]())
        print(json.dumps({"scenario": scenario, **seen}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
