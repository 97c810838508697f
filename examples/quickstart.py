"""Quick start: four instrumented calls through the gateway simulator, spans printed to the console.

No API key and no network: the openai client talks to `gateway_otel.simulator`, which answers exactly as
OpenRouter does (ids, upstream provider, token details, cost). Against the real OpenRouter, drop `http_client=`
and pass your key; everything else stays the same.

    python examples/quickstart.py
"""

import os

import openai
from opentelemetry import trace

import gateway_otel
from gateway_otel import simulator

# Where spans go. Leave it unset to export over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT, ...).
os.environ.setdefault("GATEWAY_OTEL_DESTINATIONS", "console")
os.environ.setdefault("OTEL_SERVICE_NAME", "gateway-otel-quickstart")
gateway_otel.instrument()

client = openai.OpenAI(
    base_url="https://openrouter.ai/api/v1",
    api_key=os.environ.get("OPENROUTER_API_KEY", "sk-or-simulated"),
    default_headers={"HTTP-Referer": "https://example.com/my-app", "X-Title": "gateway-otel quick start"},
    http_client=simulator.http_client(),
)

chat = client.chat.completions.create(
    model="openai/gpt-oss-20b:free",
    messages=[{"role": "user", "content": "Explain distributed tracing in one sentence."}],
)
print(f"chat       -> {chat.choices[0].message.content!r} (served by {chat.provider}, cost ${chat.usage.cost})")

embedding = client.embeddings.create(model="openai/text-embedding-3-small", input="What is OpenTelemetry?")
print(f"embeddings -> {len(embedding.data[0].embedding)} dimensions")

response = client.responses.create(model="anthropic/claude-3.5-sonnet", input="Name one tracing backend.")
print(f"responses  -> {response.output_text!r}")

stream = client.chat.completions.create(
    model="anthropic/claude-3.5-sonnet", messages=[{"role": "user", "content": "Stream a short answer."}], stream=True
)
streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
print(f"streamed   -> {streamed!r}")

print("\nThe four spans (the metrics follow when the process exits):\n", flush=True)
trace.get_tracer_provider().force_flush()
