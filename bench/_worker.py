"""One benchmark configuration in one long-lived process, driven by `run.py` over stdin/stdout (JSON lines).

It runs with the python of the configuration's own virtual environment, so it is self-contained: it imports nothing
from the bench nor from `gateway_otel` (unless the configuration is gateway-otel), and not the gateway simulator —
the responses are pre-built bytes here, so every configuration parses exactly the same wire data.

Start-up: `python _worker.py SETUP` sets up the OpenTelemetry SDK (spans into a counting exporter, metrics into an
`InMemoryMetricReader`, logs into a counting exporter), instruments with SETUP at its defaults, builds the clients,
then answers one line `{"ok": true, "versions": ...}` (or `{"ok": false, "error": ...}`). Then, per request line:

- `{"op": "time", "workload": W, "calls": N}` -> `{"elapsed": seconds}` for N calls of workload W
- `{"op": "alloc", "workload": W, "calls": N}` -> tracemalloc peak per call (median, max) in bytes
- `{"op": "growth", "calls": N, "warmup": M, "traced": bool}` -> growth over N calls after M: live blocks, objects,
  malloc bytes, RSS (and tracemalloc current bytes when traced)
- `{"op": "spans"}` -> per workload: calls made, spans exported, attributes of the last span, token counts present
- `{"op": "profile", "workload": W, "calls": N}` -> where the time goes (pyinstrument), for the package authors
"""

from __future__ import annotations

import os
import sys

# The protocol owns the real stdout; anything a library prints goes to stderr (run.py's log file) instead.
_PROTOCOL = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

import asyncio  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Awaitable, Callable, Iterator, Sequence  # noqa: E402
from importlib import metadata  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

BASE_URL = "https://openrouter.ai/api/v1"
CHAT_MODEL = "openai/gpt-4o-mini"
EMBED_MODEL = "openai/text-embedding-3-small"
STREAM_CHUNKS = 100
EMBED_DIMS = 256
WORKLOADS = ("chat_sync", "chat_async", "chat_stream", "embeddings")
REPORTED_DISTRIBUTIONS = (
    "openai",
    "httpx",
    "httpx2",
    "pydantic",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "wrapt",
    "gateway-otel",
    "openinference-instrumentation-openai",
    "openinference-instrumentation",
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-util-genai",
    "opentelemetry-instrumentation-openai",
    "openlit",
    "pyinstrument",
)

MESSAGES = [
    {"role": "system", "content": "You are a concise assistant for a travel-booking site. Answer in plain English."},
    {"role": "user", "content": "Which three things should I check before booking a connecting flight in Frankfurt?"},
]
EMBED_INPUT = [
    "Refund policy for cancelled connecting flights",
    "Minimum connection time at Frankfurt airport",
    "Baggage allowance on partner airlines",
    "How to change the name on a booking",
]

# --- pre-built OpenRouter-shaped responses ---------------------------------------------------------------------------

_CREATED = 1763884800
_WORDS = [f"word{i} " for i in range(STREAM_CHUNKS)]
_USAGE = {
    "prompt_tokens": 58,
    "completion_tokens": STREAM_CHUNKS,
    "total_tokens": 58 + STREAM_CHUNKS,
    "cost": 0.0000687,
    "is_byok": False,
    "prompt_tokens_details": {"cached_tokens": 32, "cache_write_tokens": 0, "audio_tokens": 0},
    "cost_details": {
        "upstream_inference_cost": None,
        "upstream_inference_prompt_cost": 0.0000087,
        "upstream_inference_completions_cost": 0.00006,
    },
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
}
_HEAD = {"id": "gen-1763884800-bEnChMaRkChAt01", "provider": "OpenAI", "model": CHAT_MODEL}


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _sse(data: Any) -> bytes:
    return b"data: " + _json(data) + b"\n\n"


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
    return _sse({**_HEAD, "object": "chat.completion.chunk", "created": _CREATED, "choices": choices, **extra})


def _delta(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "index": 0,
        "delta": delta,
        "finish_reason": finish_reason,
        "native_finish_reason": finish_reason,
        "logprobs": None,
    }


CHAT_BODY = _json(
    {
        **_HEAD,
        "object": "chat.completion",
        "created": _CREATED,
        "system_fingerprint": "fp_560af6e559",
        "choices": [
            {
                "logprobs": None,
                "finish_reason": "stop",
                "native_finish_reason": "stop",
                "index": 0,
                "message": {"role": "assistant", "content": "".join(_WORDS), "refusal": None, "reasoning": None},
            }
        ],
        "usage": _USAGE,
    }
)
STREAM_EVENTS: tuple[bytes, ...] = (
    *(
        _chunk([_delta({"role": "assistant", "content": w} if i == 0 else {"content": w})])
        for i, w in enumerate(_WORDS)
    ),
    _chunk([_delta({"content": ""}, "stop")]),
    _chunk([], usage=_USAGE),
    b"data: [DONE]\n\n",
)
EMBED_BODY = _json(
    {
        "object": "list",
        "id": "gen-emb-1763884800-bEnChMaRkEmB01",
        "provider": "OpenAI",
        "model": EMBED_MODEL,
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": [round(((i * 31 + d * 17) % 199) / 199 - 0.5, 6) for d in range(EMBED_DIMS)],
            }
            for i in range(len(EMBED_INPUT))
        ],
        "usage": {"prompt_tokens": 32, "total_tokens": 32, "cost": 0.00000064},
    }
)
JSON_HEADERS = {"content-type": "application/json", "x-generation-id": _HEAD["id"]}
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-generation-id": _HEAD["id"]}


# --- OpenTelemetry SDK: every configuration gets the same providers --------------------------------------------------


class Telemetry:
    """Providers shared by every configuration, with exporters that only count (nothing is kept but the last span)."""

    def __init__(self) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self.workload = "setup"
        self.spans: dict[str, int] = {}
        self.last_span: dict[str, Any] = {}
        self.logs = 0
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(_span_exporter(self)))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(_log_exporter(self)))
        # Global too: openlit reuses whatever SDK providers are already set instead of making its own.
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)
        try:
            from opentelemetry._logs import set_logger_provider

            set_logger_provider(self.logger_provider)
        except ImportError:
            pass

    def metric_names(self) -> list[str]:
        data = self.metric_reader.get_metrics_data()
        if data is None:
            return []
        return sorted({m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics})


def _span_exporter(telemetry: Telemetry) -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class CountingSpanExporter(SpanExporter):  # type: ignore[misc]
        """Counts spans per workload and keeps only the last one, so that memory stays flat."""

        def export(self, spans: Sequence[Any]) -> Any:
            for span in spans:
                telemetry.spans[telemetry.workload] = telemetry.spans.get(telemetry.workload, 0) + 1
                telemetry.last_span[telemetry.workload] = span
            return SpanExportResult.SUCCESS

    return CountingSpanExporter()


def _log_exporter(telemetry: Telemetry) -> Any:
    from opentelemetry.sdk._logs import export

    base = getattr(export, "LogRecordExporter", None) or export.LogExporter
    result = getattr(export, "LogRecordExportResult", None) or export.LogExportResult

    class CountingLogExporter(base):  # type: ignore[misc,valid-type]
        """Counts log records (GenAI events), keeps none."""

        def export(self, batch: Sequence[Any]) -> Any:
            telemetry.logs += len(batch)
            return result.SUCCESS

        def shutdown(self) -> None:
            return None

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return CountingLogExporter()


# --- the instrumentations, each at its defaults -----------------------------------------------------------------------


def setup_none(t: Telemetry) -> None:
    """The uninstrumented baseline: SDK providers set, nothing patched."""


def setup_gateway_otel(t: Telemetry) -> None:
    import gateway_otel

    gateway_otel.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)


def setup_openinference(t: Telemetry) -> None:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=t.tracer_provider)


def setup_openai_v2(t: Telemetry) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(
        tracer_provider=t.tracer_provider, meter_provider=t.meter_provider, logger_provider=t.logger_provider
    )


def setup_genai_openai(t: Telemetry) -> None:
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(
        tracer_provider=t.tracer_provider, meter_provider=t.meter_provider, logger_provider=t.logger_provider
    )


def setup_openllmetry(t: Telemetry) -> None:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(
        tracer_provider=t.tracer_provider, meter_provider=t.meter_provider, logger_provider=t.logger_provider
    )


def setup_openlit(t: Telemetry) -> None:
    """`openlit.init` reuses the global SDK providers; a local pricing file keeps it off the network."""
    import openlit
    from openlit._instrumentors import MODULE_NAME_MAP

    pricing = {
        "chat": {"gpt-4o-mini": {"promptPrice": 0.00015, "completionPrice": 0.0006}},
        "embeddings": {"text-embedding-3-small": 0.00002},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(pricing, f)
    openlit.init(pricing_json=f.name, disabled_instrumentors=[n for n in MODULE_NAME_MAP if n != "openai"])


def setup_gateway_otel_no_metrics(t: Telemetry) -> None:
    import gateway_otel

    gateway_otel.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider, metrics=False)


def setup_gateway_otel_no_content(t: Telemetry) -> None:
    import gateway_otel

    gateway_otel.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider, capture_content=False)


# --- floors: stand-in instrumentations that do only the OpenTelemetry SDK's share of the work ------------------------

DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
METRIC_KEYS = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "server.address",
    "server.port",
    "gen_ai.response.model",
    "gateway.upstream.provider",
)
REQUIRED_KEYS = (  # GenAI Required / Conditionally Required on a client span, OpenInference's kind, the token counts
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "server.address",
    "server.port",
    "openinference.span.kind",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "llm.token_count.prompt",
    "llm.token_count.completion",
)


def _floor(t: Telemetry, spans: dict[str, dict[str, Any]], records: dict[str, list[tuple[str, Any, Any]]]) -> None:
    """Wrap openai's `request()` with nothing but SDK calls on precomputed values: a span started with its attributes
    (per workload), attached as the current context during the call, ended when `request()` returns (a stream's
    span too: no per-chunk work at all), then the metric records. What no instrumentation emitting the same
    telemetry can avoid."""
    from openai._base_client import AsyncAPIClient, SyncAPIClient
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind

    tracer = t.tracer_provider.get_tracer("floor")
    meter = t.meter_provider.get_meter("floor")
    instruments = {
        "duration": meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BUCKETS
        ),
        "tokens": meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", explicit_bucket_boundaries_advisory=TOKEN_BUCKETS
        ),
        "ttfc": meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        ),
        "per_chunk": meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk",
            unit="s",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        ),
        "cost": meter.create_counter("gateway.client.cost", unit="USD"),
    }
    plans = {
        wl: [
            (getattr(instruments[name], "add" if name == "cost" else "record"), value, attrs)
            for name, value, attrs in rs
        ]
        for wl, rs in records.items()
    }
    kind = SpanKind.CLIENT

    def before() -> tuple[Any, Any, str]:
        workload = t.workload
        attrs = spans.get(workload, {})
        span = tracer.start_span(f"{attrs.get('gen_ai.operation.name', 'chat')} model", kind=kind, attributes=attrs)
        return span, context.attach(trace.set_span_in_context(span)), workload

    def after(span: Any, token: Any, workload: str) -> None:
        context.detach(token)
        span.end()
        for record, value, attrs in plans.get(workload, ()):
            record(value, attrs)

    original_sync, original_async = SyncAPIClient.request, AsyncAPIClient.request

    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        span, token, workload = before()
        try:
            return original_sync(self, *args, **kwargs)
        finally:
            after(span, token, workload)

    async def arequest(self: Any, *args: Any, **kwargs: Any) -> Any:
        span, token, workload = before()
        try:
            return await original_async(self, *args, **kwargs)
        finally:
            after(span, token, workload)

    SyncAPIClient.request, AsyncAPIClient.request = request, arequest


def _gateway_otel_telemetry(t: Telemetry) -> dict[str, dict[str, Any]]:
    """The attributes gateway-otel puts on each workload's span: one call each, instrumented, then uninstrumented."""
    import gateway_otel

    gateway_otel.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    try:
        probe = Workloads(t)
        for workload in WORKLOADS:
            probe.run(workload, 1)
        return {workload: dict(t.last_span[workload].attributes) for workload in WORKLOADS}
    finally:
        gateway_otel.uninstrument()
        t.spans.clear()
        t.last_span.clear()


def _records(attrs: dict[str, Any], keys: tuple[str, ...], stream: bool, cost: bool) -> list[tuple[str, Any, Any]]:
    base = {k: attrs[k] for k in keys if k in attrs}
    out: list[tuple[str, Any, Any]] = [("duration", 0.0123, base)]
    if stream:
        out += [("ttfc", 0.0061, base), ("per_chunk", 0.0001, base)]
    if "gen_ai.usage.input_tokens" in attrs:
        out.append(("tokens", attrs["gen_ai.usage.input_tokens"], {**base, "gen_ai.token.type": "input"}))
    if "gen_ai.usage.output_tokens" in attrs:
        out.append(("tokens", attrs["gen_ai.usage.output_tokens"], {**base, "gen_ai.token.type": "output"}))
    if cost and attrs.get("gen_ai.usage.cost"):
        out.append(("cost", attrs["gen_ai.usage.cost"], base))
    return out


def setup_floor_span(t: Telemetry) -> None:
    """The least any tracing instrumentation pays: one span without attributes, attached during the call."""
    _floor(t, {}, {})


def setup_floor_required(t: Telemetry) -> None:
    """A span with only what both conventions require plus the token counts; duration and token metrics with the
    GenAI metrics' required attributes. No content, no gateway facts."""
    ours = _gateway_otel_telemetry(t)
    spans = {wl: {k: a[k] for k in REQUIRED_KEYS if k in a} for wl, a in ours.items()}
    records = {wl: _records(a, METRIC_KEYS[:5], False, False) for wl, a in ours.items()}
    _floor(t, spans, records)


def setup_floor_ours(t: Telemetry) -> None:
    """Exactly the attributes and metric records gateway-otel emits (content on), with none of its own code."""
    ours = _gateway_otel_telemetry(t)
    records = {wl: _records(a, METRIC_KEYS, wl == "chat_stream", True) for wl, a in ours.items()}
    _floor(t, ours, records)


SETUPS: dict[str, Callable[[Telemetry], None]] = {
    "none": setup_none,
    "gateway_otel": setup_gateway_otel,
    "openinference": setup_openinference,
    "openai_v2": setup_openai_v2,
    "genai_openai": setup_genai_openai,
    "openllmetry": setup_openllmetry,
    "openlit": setup_openlit,
    "gateway_otel_no_metrics": setup_gateway_otel_no_metrics,
    "gateway_otel_no_content": setup_gateway_otel_no_content,
    "floor_span": setup_floor_span,
    "floor_required": setup_floor_required,
    "floor_ours": setup_floor_ours,
}


# --- the workloads: the real openai client over an in-process transport -----------------------------------------------


def _httpx_module() -> ModuleType:
    """`httpx2` (openai >= 3) or `httpx` (openai < 3): the one `openai._base_client` really uses."""
    import openai._base_client as base

    for name in ("httpx2", "httpx"):
        module = getattr(base, name, None)
        if isinstance(module, ModuleType):
            return module
    raise RuntimeError("cannot tell which httpx module openai uses")


async def _aiter_events() -> Any:
    for event in STREAM_EVENTS:
        yield event


def _expect(ok: bool, what: str) -> None:
    """A workload's check of its reply: a set-up that breaks the client must fail, not look fast."""
    if not ok:
        raise RuntimeError(f"unexpected reply: expected {what}")


class Workloads:
    """The four calls a typical application makes, each answered from the pre-built bytes above."""

    def __init__(self, telemetry: Telemetry) -> None:
        import openai

        self.telemetry = telemetry
        self.httpx = _httpx_module()
        self.calls: dict[str, int] = {}
        self.streaming = False
        self.sync_client = openai.OpenAI(
            base_url=BASE_URL,
            api_key="sk-or-bench",
            http_client=openai.DefaultHttpxClient(transport=self.httpx.MockTransport(self._answer)),
        )
        self.async_client = openai.AsyncOpenAI(
            base_url=BASE_URL,
            api_key="sk-or-bench",
            http_client=openai.DefaultAsyncHttpxClient(transport=self.httpx.MockTransport(self._answer_async)),
        )
        self.loop = asyncio.new_event_loop()

    def _answer(self, request: Any) -> Any:
        if request.url.path.endswith("/embeddings"):
            return self.httpx.Response(200, headers=JSON_HEADERS, content=EMBED_BODY)
        if self.streaming:  # one SSE event per iteration, so the client parses incrementally
            return self.httpx.Response(200, headers=SSE_HEADERS, content=iter(STREAM_EVENTS))
        return self.httpx.Response(200, headers=JSON_HEADERS, content=CHAT_BODY)

    def _answer_async(self, request: Any) -> Any:
        if self.streaming:
            return self.httpx.Response(200, headers=SSE_HEADERS, content=_aiter_events())
        return self._answer(request)

    # one call of each workload; each checks what it got, so a broken set-up cannot look fast

    def chat_sync(self) -> None:
        reply = self.sync_client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, temperature=0.3, max_tokens=512, top_p=0.9, user="user-1234"
        )
        _expect(bool(reply.choices[0].message.content) and reply.usage is not None, "chat reply with usage")

    async def chat_async(self) -> None:
        reply = await self.async_client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, temperature=0.3, max_tokens=512, top_p=0.9, user="user-1234"
        )
        _expect(bool(reply.choices[0].message.content) and reply.usage is not None, "chat reply with usage")

    def chat_stream(self) -> None:
        stream = self.sync_client.chat.completions.create(
            model=CHAT_MODEL,
            messages=MESSAGES,
            temperature=0.3,
            max_tokens=512,
            top_p=0.9,
            user="user-1234",
            stream=True,
        )
        parts = []
        chunks = 0
        for chunk in stream:
            chunks += 1
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        _expect(chunks == STREAM_CHUNKS + 2 and len(parts) == STREAM_CHUNKS, f"102 chunks, got {chunks}")

    def embeddings(self) -> None:
        reply = self.sync_client.embeddings.create(
            model=EMBED_MODEL, input=EMBED_INPUT, dimensions=EMBED_DIMS, encoding_format="float"
        )
        _expect(len(reply.data) == len(EMBED_INPUT) and len(reply.data[0].embedding) == EMBED_DIMS, "4 vectors")

    # batches

    def _enter(self, workload: str, calls: int) -> None:
        if workload not in WORKLOADS:
            raise ValueError(f"unknown workload {workload!r}")
        self.telemetry.workload = workload
        self.streaming = workload == "chat_stream"
        self.calls[workload] = self.calls.get(workload, 0) + calls

    def run(self, workload: str, calls: int, each: Callable[[], None] | None = None) -> float:
        """N calls of one workload; returns the elapsed seconds (`each` runs after every call, untimed use only)."""
        self._enter(workload, calls)
        if workload == "chat_async":
            return self.loop.run_until_complete(self._run_async(calls, each))
        call: Callable[[], None] = getattr(self, workload)
        start = time.perf_counter()
        if each is None:
            for _ in range(calls):
                call()
        else:
            for _ in range(calls):
                call()
                each()
        return time.perf_counter() - start

    async def _run_async(self, calls: int, each: Callable[[], None] | None) -> float:
        call: Callable[[], Awaitable[None]] = self.chat_async
        start = time.perf_counter()
        for _ in range(calls):
            await call()
            if each is not None:
                each()
        return time.perf_counter() - start


# --- the operations ------------------------------------------------------------------------------------------------


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def op_alloc(w: Workloads, workload: str, calls: int) -> dict[str, Any]:
    """Peak traced memory during one call, above what was allocated before it: median and max over `calls`."""
    w.run(workload, 3)
    peaks: list[int] = []
    before = [0]

    def mark() -> None:  # after each call: record its peak, then reset for the next
        current, peak = tracemalloc.get_traced_memory()
        peaks.append(peak - before[0])
        tracemalloc.reset_peak()
        before[0] = current

    gc.collect()
    tracemalloc.start()
    try:
        before[0] = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        w.run(workload, calls, each=mark)
    finally:
        tracemalloc.stop()
    return {"median": statistics.median(peaks), "max": max(peaks), "calls": calls}


GROWTH_BLOCKS = {"chat_sync": 100, "chat_async": 100, "embeddings": 25, "chat_stream": 5}
"""The growth phase's mix: workloads in turn, in blocks of these sizes (a stream costs about ten chat calls)."""


def _cycle(calls: int) -> Iterator[tuple[str, int]]:
    """Split `calls` over the workloads in turn, in blocks of `GROWTH_BLOCKS`."""
    done = 0
    while done < calls:
        for workload, block in GROWTH_BLOCKS.items():
            n = min(block, calls - done)
            if n <= 0:
                return
            yield workload, n
            done += n


def _malloc_in_use() -> int | None:
    """Bytes glibc's malloc has handed out and not got back (`mallinfo2().uordblks`): the large allocations that
    pymalloc's block count does not see (big strings, list and dict tables). None off glibc."""
    try:
        import ctypes

        class MallInfo2(ctypes.Structure):
            _fields_ = [
                (name, ctypes.c_size_t)
                for name in (
                    "arena",
                    "ordblks",
                    "smblks",
                    "hblks",
                    "hblkhd",
                    "usmblks",
                    "fsmblks",
                    "uordblks",
                    "fordblks",
                    "keepcost",
                )
            ]

        mallinfo2 = ctypes.CDLL(None).mallinfo2
        mallinfo2.restype = MallInfo2
        return int(mallinfo2().uordblks)
    except (OSError, AttributeError):
        return None


def _live(telemetry: Telemetry, traced: bool) -> dict[str, int | None]:
    """What is alive now, after a metric collection (as an exporter would make: it records whatever an
    instrumentation still holds queued, gateway-otel's measurements among them) and a garbage collection."""
    telemetry.metric_reader.get_metrics_data()
    gc.collect()
    return {
        "blocks": sys.getallocatedblocks(),
        "objects": len(gc.get_objects()),
        "malloc": _malloc_in_use(),
        "rss": _rss_bytes(),
        "traced": tracemalloc.get_traced_memory()[0] if traced else None,
    }


def op_growth(w: Workloads, calls: int, warmup: int, traced: bool) -> dict[str, Any]:
    """Growth over `calls` calls after `warmup` calls, a metric collection and `gc.collect()` before each reading:
    live pymalloc blocks,
    gc-tracked objects, malloc's bytes in use and RSS. These are exact and cost nothing per call; tracemalloc's
    current bytes (`traced`, tracing from before the warm-up) slow every call 5-6x, so they are opt-in."""
    if traced:
        tracemalloc.start()
    try:
        for workload, n in _cycle(warmup):
            w.run(workload, n)
        before = _live(w.telemetry, traced)
        counts: dict[str, int] = {}
        for workload, n in _cycle(calls):
            w.run(workload, n)
            counts[workload] = counts.get(workload, 0) + n
        after = _live(w.telemetry, traced)
    finally:
        if traced:
            tracemalloc.stop()
    growth = {
        f"{k}_growth": None if before[k] is None or after[k] is None else after[k] - before[k]  # type: ignore
        for k in before
    }
    return {"calls": calls, "warmup": warmup, "mix": counts, **growth}


def _is_token_count(key: str, value: Any) -> bool:
    """A usage token count (`gen_ai.usage.input_tokens`, `llm.token_count.prompt`...), not `...request.max_tokens`."""
    counts = ".usage." in key or "token_count" in key
    return counts and isinstance(value, int) and not isinstance(value, bool)


def op_spans(w: Workloads) -> dict[str, Any]:
    """What was exported, per workload: spans against calls, and what the last span carries."""
    out: dict[str, Any] = {}
    for workload in WORKLOADS:
        span = w.telemetry.last_span.get(workload)
        attrs = dict(span.attributes or {}) if span is not None else {}
        tokens = sorted(k for k, v in attrs.items() if _is_token_count(k, v))
        out[workload] = {
            "calls": w.calls.get(workload, 0),
            "spans": w.telemetry.spans.get(workload, 0),
            "name": span.name if span is not None else None,
            "attributes": len(attrs),
            "events": len(span.events) if span is not None else 0,
            "token_attributes": tokens,
        }
    return {"workloads": out, "logs": w.telemetry.logs, "metrics": w.telemetry.metric_names()}


def op_profile(w: Workloads, workload: str, calls: int, package: str) -> dict[str, Any]:
    """Sample `calls` calls with pyinstrument; split the time spent inside `package` (and what it calls, except
    the openai call it wraps) by function, self time, so the authors know what to optimize."""
    from pyinstrument import Profiler

    w.run(workload, 20)
    profiler = Profiler(interval=0.0001)
    profiler.start()
    elapsed = w.run(workload, calls)
    profiler.stop()
    session = profiler.last_session
    root = session.root_frame()
    own: dict[str, float] = {}  # package functions: self time
    called: dict[str, float] = {}  # what package code calls outside itself (SDK, json, wrapt), inclusive
    marker = f"/{package}/"

    def inside(frame: Any) -> bool:
        return marker in (frame.file_path or "")

    def label(frame: Any) -> str:
        path = frame.file_path or "?"
        short = path.split("site-packages/")[-1].split("/src/")[-1]
        name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
        return f"{name} ({short}:{frame.line_no})"

    def walk(frame: Any, in_package: bool) -> None:
        here = inside(frame)
        if here:
            own[label(frame)] = own.get(label(frame), 0.0) + frame.total_self_time
            for child in frame.children:
                if child.is_synthetic:  # pyinstrument's [self] leaves: already in total_self_time
                    continue
                if inside(child):
                    walk(child, True)
                elif (child.file_path or "").startswith("<built-in>"):  # isinstance, getattr...: the caller's own
                    own[label(frame)] = own.get(label(frame), 0.0) + child.time
                elif "/openai/" in (child.file_path or "") or "/site-packages/wrapt/" in (child.file_path or ""):
                    walk(child, False)  # the wrapped openai call: the application's own work, not overhead
                else:
                    called[label(child)] = called.get(label(child), 0.0) + child.time
            return
        for child in frame.children:
            walk(child, in_package)

    if root is not None:
        walk(root, False)
    total = sum(own.values()) + sum(called.values())
    per_call = 1e6 / calls
    modules: dict[str, float] = {}
    for name, seconds in own.items():
        module = name.rsplit("(", 1)[-1].split(":")[0]
        modules[module] = modules.get(module, 0.0) + seconds
    return {
        "calls": calls,
        "elapsed_us_per_call": elapsed * per_call,
        "package_us_per_call": total * per_call,
        "own": [(k, v * per_call) for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:25]],
        "called": [(k, v * per_call) for k, v in sorted(called.items(), key=lambda kv: -kv[1])[:25]],
        "modules": [(k, v * per_call) for k, v in sorted(modules.items(), key=lambda kv: -kv[1])],
        "text": profiler.output_text(unicode=False, color=False, show_all=False),
    }


def _versions() -> dict[str, str]:
    found = {}
    for name in REPORTED_DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def main() -> None:
    setup = sys.argv[1]
    if len(sys.argv) == 5 and sys.argv[2] == "--calls":  # `instructions.py`: set up, warm up, N calls, exit
        telemetry = Telemetry()
        SETUPS[setup](telemetry)
        workloads = Workloads(telemetry)
        workloads.run(sys.argv[3], 3)
        gc.collect()
        gc.disable()  # a collection falling into one of the two counted runs would swamp the difference
        workloads.run(sys.argv[3], int(sys.argv[4]))
        # A metric collection, as an exporter makes: whatever an instrumentation still holds queued (gateway-otel
        # records its measurements on a worker thread) is recorded and counted, so every count is the whole CPU cost.
        telemetry.metric_reader.get_metrics_data()
        return
    try:
        telemetry = Telemetry()
        SETUPS[setup](telemetry)
        workloads = Workloads(telemetry)
        telemetry.workload = "setup"
        hello = {"ok": True, "setup": setup, "python": sys.version.split()[0], "versions": _versions()}
    except BaseException as exc:  # report any set-up failure as a reason, not a crash
        _reply({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        return
    _reply(hello)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "time":
                answer: dict[str, Any] = {"elapsed": workloads.run(cmd["workload"], int(cmd["calls"]))}
            elif op == "alloc":
                answer = op_alloc(workloads, cmd["workload"], int(cmd["calls"]))
            elif op == "growth":
                answer = op_growth(workloads, int(cmd["calls"]), int(cmd["warmup"]), bool(cmd.get("traced")))
            elif op == "spans":
                answer = op_spans(workloads)
            elif op == "profile":
                answer = op_profile(workloads, cmd["workload"], int(cmd["calls"]), cmd.get("package", "gateway_otel"))
            elif op == "quit":
                _reply({"ok": True})
                return
            else:
                raise ValueError(f"unknown op {op!r}")
            _reply({"ok": True, **answer})
        except Exception as exc:
            _reply({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})


def _reply(message: dict[str, Any]) -> None:
    _PROTOCOL.write(json.dumps(message) + "\n")
    _PROTOCOL.flush()


if __name__ == "__main__":
    main()
