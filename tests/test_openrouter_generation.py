"""OpenRouter's generation record after each call (`openrouter_generation=True`): the real openai client through the
simulator's real HTTP server, the worker fetching `GET /generation?id=` from it, the record read back from the
exporters and the local store. Every wait is for a condition, with a generous bound; no timing is asserted but the
shutdown's, which the issue bounds."""

from __future__ import annotations

import logging
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogs
except ImportError:  # SDK < 1.39
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogs  # type: ignore[attr-defined,no-redef]

import gateway_otel
from conftest import API_KEY, Captured, run
from gateway_otel.openrouter import _generation_worker as worker_module
from gateway_otel.openrouter._generation_worker import GenerationWorker, generation_worker
from gateway_otel.simulator import GatewaySimulator, RunningSimulator, SimulatedResponse, http_client, serve
from gateway_otel.store import attributes_of

PROMPT = [{"role": "user", "content": "Why is the sky blue?"}]
G = "gateway.openrouter.generation."
EXPECTED = {  # openai/gpt-4o-mini, PROMPT: 9 prompt tokens (5 words + 4), 8 completion tokens, served by OpenAI
    "event.name": "gateway.openrouter.generation",
    G + "total_cost": 2.5e-05,
    G + "provider_name": "OpenAI",
    G + "latency": 184.0,
    G + "generation_time": 144.0,
    G + "moderation_latency": 35.0,
    G + "native_tokens_prompt": 9,
    G + "native_tokens_completion": 8,
    G + "native_tokens_reasoning": 0,
    G + "native_tokens_cached": 0,
    G + "is_byok": False,
    G + "finish_reason": "stop",
    G + "native_finish_reason": "stop",
    G + "attempts.provider": ("OpenAI",),
    G + "attempts.status": (200,),
    G + "attempts.latency": (159.0,),
}


def wait_for(condition: Callable[[], Any], within: float = 20.0) -> Any:
    """`condition()`'s first truthy value, polled until `within` seconds have passed (then the test fails)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)  # polling a condition, not timing anything
    pytest.fail(f"not within {within} s: {condition.__doc__ or condition}")


@pytest.fixture
def worker() -> Iterator[GenerationWorker]:
    """The process's worker, fresh: no job, no thread, nothing said yet, counts at zero."""
    found = generation_worker()
    found.stop(5.0)
    found._reset()
    found._said.clear()
    yield found
    found.stop(5.0)
    found._reset()
    found._said.clear()


@pytest.fixture
def served() -> Iterator[RunningSimulator]:
    with serve(sim=GatewaySimulator(generation_delay=0.2)) as running:
        yield running


@pytest.fixture
def generations(make_telemetry: Any, worker: GenerationWorker) -> Callable[..., tuple[Captured, Any]]:
    def make(**options: Any) -> tuple[Captured, Any]:
        exporter = InMemoryLogs()
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        return make_telemetry(logger_provider=provider, openrouter_generation=True, **options), exporter

    return make


def records(exporter: Any) -> list[Any]:
    return [getattr(item, "log_record", item) for item in exporter.get_finished_logs()]


def client_of(running: RunningSimulator, *, asynchronous: bool = False, key: str = API_KEY) -> Any:
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=running.url, api_key=key, max_retries=0)


def chat(client: Any, model: str = "openai/gpt-4o-mini", *, stream: bool = False) -> str:
    """One chat call, a stream read to its end (where its span ends); its generation id."""
    if not stream:
        return str(run(client.chat.completions.create(model=model, messages=PROMPT)).id)

    async def read_async() -> list[Any]:
        return [c async for c in await client.chat.completions.create(model=model, messages=PROMPT, stream=True)]

    if isinstance(client, openai.AsyncOpenAI):
        chunks = run(read_async())
    else:
        chunks = list(client.chat.completions.create(model=model, messages=PROMPT, stream=True))
    return str(chunks[0].id)


def generation_gets(running: RunningSimulator) -> list[Any]:
    return [r for r in running.simulator.requests if r.method == "GET"]


def closed_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (a port just freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


def answered_in_process(base_url: str) -> Any:
    """A client whose calls the simulator answers in-process, as OpenRouter (its response header says so), while
    its base URL, where the worker asks for the generation, is `base_url`."""
    sim = GatewaySimulator(generation_delay=0)
    return openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, http_client=http_client(sim))


def instrument_local(path: Path, **options: Any) -> Any:
    """`configure("local")` into `path`, not global, and `instrument()` onto its providers with the option on."""
    providers = gateway_otel.configure(
        "local", environ={"GATEWAY_OTEL_LOCAL_PATH": str(path)}, set_global=False, **options
    )
    gateway_otel.instrument(
        tracer_provider=providers.tracer_provider,
        meter_provider=providers.meter_provider,
        logger_provider=providers.logger_provider,
        openrouter_generation=True,
    )
    return providers


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_each_call_gets_one_record_with_the_generation_in_its_span(
    generations: Any, served: RunningSimulator, asynchronous: bool, stream: bool
) -> None:
    telemetry, exporter = generations()
    generation_id = chat(client_of(served, asynchronous=asynchronous), stream=stream)
    [record] = wait_for(lambda: records(exporter))
    [span] = telemetry.spans()  # one span: the worker's own request makes none
    assert (record.trace_id, record.span_id) == (span.context.trace_id, span.context.span_id)
    assert (record.severity_text, record.severity_number.value, record.body) == ("INFO", 9, G.rstrip("."))
    assert dict(record.attributes) == {**EXPECTED, "gen_ai.response.id": generation_id}
    [get] = generation_gets(served)
    assert (get.path, get.headers["Authorization"]) == (f"/api/v1/generation?id={generation_id}", "Bearer [REDACTED]")


def test_a_fallback_after_a_429_shows_both_attempts(generations: Any, served: RunningSimulator) -> None:
    _, exporter = generations()
    chat(client_of(served), model="sim/fallback")
    [record] = wait_for(lambda: records(exporter))
    attempts = [record.attributes[f"{G}attempts.{name}"] for name in ("provider", "status", "latency")]
    assert attempts == [
        ("Together", "DeepInfra"),
        (429, 200),
        (85.0, 244.0),
    ]  # served: 120 + 8 per token + 85 for the first attempt, less 25
    assert record.attributes[G + "provider_name"] == "DeepInfra"


def test_a_record_not_ready_is_asked_again_until_it_is(generations: Any, worker: GenerationWorker) -> None:
    """Ready 2 s after the call: the first request (0.5 s after) finds 404, and so does at least one more."""
    with serve(sim=GatewaySimulator(generation_delay=2.0)) as running:
        _, exporter = generations()
        chat(client_of(running))
        wait_for(lambda: records(exporter))
        assert len(generation_gets(running)) >= 2
    stats = worker.stats()
    assert (stats["emitted"], stats["retried"] >= 1, stats["failed"], stats["gave_up"]) == (1, True, 0, 0)


def test_a_record_never_ready_is_given_up_and_said_once(
    generations: Any, worker: GenerationWorker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(worker_module, "FIRST_DELAY", 0.05)
    monkeypatch.setattr(worker_module, "GIVE_UP_AFTER", 0.3)
    with serve(sim=GatewaySimulator(generation_delay=600)) as running:
        _, exporter = generations()
        ids = {chat(client_of(running)), chat(client_of(running))}
        wait_for(lambda: worker.stats()["gave_up"] == 2)
    assert (records(exporter), ids) == ([], {"gen-sim-000001", "gen-sim-000002"})
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert re.fullmatch(  # how many requests fitted in 0.3 s depends on the machine's load
        r"gateway_otel: OpenRouter generation details are given up after 0\.3 s: gen-sim-00000[12] still answered "
        r"HTTP 404 at each of [1-9] requests \(not ready yet\)\. The application is unaffected; further give-ups are "
        r"counted, not logged\.",
        warning,
    ), warning


def test_the_gateway_down_says_why_once_and_the_app_is_unaffected(
    generations: Any, worker: GenerationWorker, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry, exporter = generations()
    base_url = closed_url()
    client = answered_in_process(base_url)
    answers = [client.chat.completions.create(model="openai/gpt-4o-mini", messages=PROMPT) for _ in range(2)]
    where = base_url.removeprefix("http://").removesuffix("/api/v1")
    wait_for(lambda: worker.stats()["failed"] == 2)
    assert [a.choices[0].message.content is not None for a in answers] == [True, True]
    assert [s.status.status_code.name for s in telemetry.spans()] == ["OK", "OK"]
    assert records(exporter) == []
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning == (
        f"gateway_otel: OpenRouter generation details cannot be fetched from http://{where}/api/v1/generation: "
        f"connection refused: nothing listens at {where}; is the backend running? The application is unaffected; "
        "further failures are counted, not logged."
    )


class RefusingSimulator(GatewaySimulator):
    """Answers calls, and refuses the key on the generation endpoint (as OpenRouter does for a key it does not
    know)."""

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> SimulatedResponse:
        if path.startswith("/api/v1/generation"):
            payload = b'{"error":{"code":401,"message":"User not found."}}'
            return SimulatedResponse(401, {"content-type": "application/json"}, body=payload)
        return super().handle(method, path, headers, body)


def test_a_refused_key_says_why_once_and_the_app_is_unaffected(
    generations: Any, worker: GenerationWorker, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry, exporter = generations()
    with serve(sim=RefusingSimulator(generation_delay=0)) as running:
        client = client_of(running)
        for _ in range(3):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=PROMPT)
        wait_for(lambda: worker.stats()["failed"] == 3)
        url = f"{running.url}/generation"
    assert [s.status.status_code.name for s in telemetry.spans()] == ["OK", "OK", "OK"]
    assert records(exporter) == []
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning == (
        f"gateway_otel: OpenRouter generation details cannot be fetched from {url}: it refused the call's API key "
        "(HTTP 401 Unauthorized): the generation endpoint takes the key the call was made with. The application is "
        "unaffected; further failures are counted, not logged."
    )


def test_the_option_is_off_by_default_and_other_gateways_are_never_asked(
    make_telemetry: Any, served: RunningSimulator, worker: GenerationWorker
) -> None:
    make_telemetry()
    chat(client_of(served))
    gateway_otel.uninstrument()
    make_telemetry(openrouter_generation=True)
    sim = GatewaySimulator(speaks_as=None)  # a server that does not say it is OpenRouter: an openai_compatible one
    with serve(sim=sim) as other:
        chat(client_of(other))
    assert (generation_gets(served), generation_gets(other), worker.stats()["queued"]) == ([], [], 0)
    assert worker._thread is None


class HangingSimulator(GatewaySimulator):
    """Answers calls; the generation endpoint never answers (until the server stops)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.asked = threading.Event()

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> SimulatedResponse:
        if path.startswith("/api/v1/generation"):
            self.asked.set()
            return SimulatedResponse(200, {}, fault="timeout")
        return super().handle(method, path, headers, body)


def test_the_shutdown_is_bounded_with_the_worker_busy(
    worker: GenerationWorker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    providers = instrument_local(tmp_path / "t.db", shutdown_timeout=1.0)
    try:
        sim = HangingSimulator(generation_delay=0)
        with serve(sim=sim) as running:
            chat(client_of(running))
            chat(client_of(running))
            wait_for(sim.asked.is_set)  # the worker waits for an answer
            started = time.monotonic()
            providers.shutdown()
            took = time.monotonic() - started
        assert took < 1.0 + 1.0, took  # the deadline, and a generous margin for a loaded machine
        wait_for(lambda: worker.stats()["abandoned"] == 2)  # one under way, one queued; neither emitted
        assert (worker.stats()["emitted"], worker.stats()["failed"]) == (0, 0)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        gateway_otel.uninstrument()


def test_the_store_row_carries_the_final_cost_and_native_tokens(worker: GenerationWorker, tmp_path: Path) -> None:
    """OpenRouter's final figure differs from the inline one here (a later discount), so the row can only have it
    from the generation record."""

    class Discounted(GatewaySimulator):
        def generation_record(self, generation_id: str) -> dict[str, Any] | None:
            data = super().generation_record(generation_id)
            return None if data is None else {**data, "total_cost": 2e-05}

    path = tmp_path / "t.db"
    providers = instrument_local(path)
    try:
        with serve(sim=Discounted(generation_delay=0)) as running:
            reply = client_of(running).chat.completions.create(model="openai/gpt-4o-mini", messages=PROMPT)
            wait_for(lambda: worker.stats()["emitted"] == 1)
        providers.shutdown()  # flushes the span and the record, in whichever order they come
    finally:
        gateway_otel.uninstrument()
    conn = sqlite3.connect(path)
    [(cost, cell)] = conn.execute("SELECT cost, attributes FROM spans").fetchall()
    [(body, log_cell)] = conn.execute("SELECT body, attributes FROM logs").fetchall()
    conn.close()
    attributes = attributes_of(cell)
    assert (reply.usage.cost, attributes["gen_ai.usage.cost"], cost) == (2.5e-05, 2.5e-05, 2e-05)
    assert {k: v for k, v in attributes.items() if k.startswith(G)} == {
        G + "total_cost": 2e-05,
        G + "native_tokens_prompt": 9,
        G + "native_tokens_completion": 8,
        G + "native_tokens_reasoning": 0,
        G + "native_tokens_cached": 0,
    }
    assert (body, attributes_of(log_cell)[G + "total_cost"]) == ("gateway.openrouter.generation", 2e-05)


def test_no_key_in_any_output(
    worker: GenerationWorker, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    """A record fetched, a refused key and the gateway down, with the key everywhere the worker could leak it:
    the warnings and debug lines, the standard streams, the worker's state, the local store's file (spans and
    records)."""
    caplog.set_level(logging.DEBUG)
    providers = instrument_local(tmp_path / "t.db")
    try:
        for done, sim in enumerate((GatewaySimulator(generation_delay=0), RefusingSimulator(generation_delay=0))):
            with serve(sim=sim) as running:
                chat(client_of(running))
                wait_for(lambda done=done: worker.stats()["emitted"] + worker.stats()["failed"] == done + 1)
        chat(answered_in_process(closed_url()))
        wait_for(lambda: worker.stats()["emitted"] + worker.stats()["failed"] == 3)
        providers.shutdown()
    finally:
        gateway_otel.uninstrument()
    out, err = capfd.readouterr()
    texts = [out, err, caplog.text, repr(worker.stats()), repr(worker._heap)]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("t.db"))
    secret = API_KEY.removeprefix("sk-or-v1-")
    assert ([t for t in texts if secret in t], secret.encode() in stored) == ([], False)
    conn = sqlite3.connect(tmp_path / "t.db")
    counts = conn.execute("SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM logs)").fetchone()
    conn.close()
    assert (counts, worker.stats()["emitted"], worker.stats()["failed"]) == ((3, 1), 1, 2)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 2  # the refused key, the refusal


def test_beyond_its_bound_the_queue_drops_and_says_so_once(
    worker: GenerationWorker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(worker_module, "FIRST_DELAY", 600.0)  # the jobs stay queued
    monkeypatch.setattr(worker_module, "MAX_PENDING", 2)
    for number in range(5):
        worker.put(f"gen-{number}", None, closed_url(), API_KEY, lambda context, attributes: None)
    assert (worker.stats()["queued"], worker.stats()["dropped"]) == (2, 3)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "gateway_otel: OpenRouter generation details are dropped: 2 calls are already waiting for theirs. The "
        "application is unaffected; further drops are counted, not logged."
    ]
    assert worker.stop(5.0) and worker.stats()["abandoned"] == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_forked_child_starts_its_own_worker(worker: GenerationWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent has a job queued and its thread running: the child has neither, and its first job starts its own
    thread."""
    monkeypatch.setattr(worker_module, "FIRST_DELAY", 600.0)  # the jobs stay queued

    def nothing(span_context: Any, attributes: dict[str, Any]) -> None:
        return None

    worker.put("gen-parent", None, "http://127.0.0.1:9/api/v1", "sk-or-parent-0000000000", nothing)
    assert (worker.stats()["queued"], worker._thread is not None) == (1, True)
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            child = generation_worker()
            empty = child is worker and child.stats()["queued"] == 0 and child._thread is None
            child.put("gen-child", None, "http://127.0.0.1:9/api/v1", "sk-or-child-00000000000", nothing)
            started = child._thread is not None and child._thread.is_alive() and child.stats()["queued"] == 1
            code = 0 if empty and started else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)  # polling the child's exit
    else:
        os.kill(pid, 9)
        pytest.fail("the forked child did not exit")
    assert os.waitstatus_to_exitcode(status) == 0
    assert worker.stats()["queued"] == 1  # the parent's job is still the parent's
