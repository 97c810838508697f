"""An OpenAI-compatible gateway simulator that answers exactly as OpenRouter does: a documented test and demo tool.

The package's quick start, its tests and its demo use it to produce realistic OpenRouter traffic with no network
and no API key: `gen-` ids, the top-level `provider`, full `usage` with `cost`, `is_byok`, `cost_details`, cached,
cache-write and reasoning token details, `native_finish_reason`, SSE keep-alive comments
(`: OPENROUTER PROCESSING`), the usage chunk with empty `choices` that ends every chat stream, and OpenRouter's error
shapes. Answers are deterministic (derived from the request), so tests can assert exact values.

Endpoints (with or without the `/api/v1` or `/v1` prefix): `POST /chat/completions`, `/completions`, `/embeddings`,
`/responses`, streaming and not; `GET /generation?id=<id>`, a call's generation record, 404 until `generation_delay`
seconds after the call; anything else is a 404 in OpenRouter's error shape; no `Authorization` is a 401.
A request to a direct provider's host (`base_url="https://api.openai.com/v1"`, Azure, Groq... in-process) is
answered as that provider would: the same tokens, without OpenRouter's `provider`, `native_finish_reason`, `cost`,
`is_byok`, `cost_details` or `x-gateway-otel-gateway`.

Two ways to run it::

    import openai
    from gateway_otel import simulator

    sim = simulator.GatewaySimulator()
    client = openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="sk-or-test",
                           http_client=simulator.http_client(sim))          # in-process, any host
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    sim.last_request.body                                                  # exactly what the client sent

    with simulator.serve() as running:                                     # a real server on 127.0.0.1
        openai.OpenAI(base_url=running.url, api_key="sk-or-test")

or `python -m gateway_otel.simulator [--host 127.0.0.1] [--port 8000]`.

Scenarios, chosen by the model name `sim/<scenario>` (so a user script can ask for them) or, for any model, by the
request header `X-Simulator-Scenario: <scenario>`:

- `error-400`, `error-401`, `error-402`, `error-404`, `error-429` (with `retry-after: 0`), `error-500`, `error-502`,
  `error-503`: that HTTP status with `{"error": {"code", "message", "metadata": {"provider_name", "raw"}},
  "user_id"}`;
- `stream-error`: HTTP 200; a stream delivers two content deltas, then a chunk with a top-level `error`
  (`metadata.error_type: "provider_error"`) and `finish_reason: "error"`, then `[DONE]` (the Responses API ends
  with `response.failed`); a non-streaming answer carries the same `error` in its body;
- `disconnect`: two content deltas (or half a JSON body), then the connection breaks: in-process the body raises
  the httpx module's `ReadError`, the server drops the socket;
- `timeout`: no answer; in-process `ReadTimeout` is raised, the server hangs for up to 30 s;
- `fallback`: an ordinary answer whose generation record has two attempts (`Together` answered 429, then the served
  provider).

Model families: `gpt-oss` or `reasoning` in the name report reasoning tokens, a `:free` suffix costs nothing,
prompts of 64+ tokens (whitespace words + 4 per message) report cached tokens (and cache writes on `anthropic/`),
tools answer user turns with a tool call, `max_tokens` cuts the reply with `finish_reason: "length"`.
"""

from ._app import SCENARIO_HEADER, SCENARIOS, GatewaySimulator, SimulatedResponse
from ._requests import RecordedRequest
from ._server import RunningSimulator, serve
from ._transport import http_client, transport

__all__ = [
    "SCENARIOS",
    "SCENARIO_HEADER",
    "GatewaySimulator",
    "RecordedRequest",
    "RunningSimulator",
    "SimulatedResponse",
    "http_client",
    "serve",
    "transport",
]
