"""A backend that refuses connections, answers 500, or hangs: the application's calls complete unchanged, spans
beyond the queue are dropped and counted, one warning per destination, and shutdown is bounded."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import pytest

import gateway_otel
from conftest import make_client
from otlp_receiver import OtlpReceiver

CALLS = 120
QUEUE = 20
CAUSES = {
    "refused": lambda url: f"connection refused: nothing listens at {url.split('//')[1]}; is the backend running?",
    "http-500": lambda url: "the backend answered HTTP 500 Internal Server Error",
    "hang": lambda url: f"timed out after 1 s: no answer from {url.split('//')[1]}",
}
QUEUE_FULL = (
    f"gateway_otel: destination 'otlp' drops spans: its queue of {QUEUE} spans is full. The application is unaffected;"
    " further drops are counted, not logged."
)


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("fault", ["refused", "http-500", "hang"])
def test_a_failing_backend_never_affects_the_application(sim: Any, caplog: Any, fault: str) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = OtlpReceiver(status=500, hang=fault == "hang")
    url = f"http://127.0.0.1:{_unused_port()}" if fault == "refused" else receiver.url
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_EXPORTER_OTLP_TIMEOUT": "1"}
    with receiver:
        providers = gateway_otel.configure(
            "otlp", environ=env, set_global=False, max_queue_size=QUEUE, shutdown_timeout=2.0
        )
        gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
        try:
            client = make_client(sim)
            replies = [
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
                for i in range(CALLS)
            ]
        finally:
            gateway_otel.uninstrument()
        # Each export attempt that hung (until the 1 s timeout) took at most a queue's worth of spans.
        attempts = sum(path.endswith("/v1/traces") for path, _, _ in receiver.requests)
        assert [r.choices[0].message.content for r in replies] == [f"Simulated reply to: q{i}" for i in range(CALLS)]

        shutdown = threading.Thread(target=providers.shutdown, daemon=True)
        shutdown.start()
        shutdown.join(30)  # a generous bound: it gives up after its 2 s timeout, whatever the backend does
        assert not shutdown.is_alive()

    [stats] = providers.stats().values()
    assert stats["exported"] == 0
    if fault == "hang":
        # Batches stuck in the backend (one per attempt, plus one whose request was still on its way) and one more
        # queue's worth hold spans; every other span is dropped, counted. On a fast machine that is one attempt.
        assert CALLS - QUEUE * (attempts + 2) <= stats["dropped"] <= CALLS - QUEUE
    else:
        assert stats["failed"] > 0
    assert stats["dropped"] + stats["failed"] <= CALLS
    messages = [r.getMessage() for r in caplog.records if r.name == "gateway_otel" and r.levelno >= logging.WARNING]
    # One warning for the failing backend, whatever failed (spans, metrics) and however often; one for the queue.
    [failure] = [m for m in messages if "' cannot export to " in m]
    assert failure.startswith(f"gateway_otel: destination 'otlp' cannot export to {url}/v1/")
    assert CAUSES[fault](url) in failure
    assert [m for m in messages if m != failure] in ([], [QUEUE_FULL])
    assert [r for r in caplog.records if r.name.startswith(("opentelemetry", "urllib3")) and r.levelno >= 30] == []


def test_a_healthy_backend_gets_every_span(sim: Any) -> None:
    with OtlpReceiver() as receiver:
        providers = gateway_otel.configure(
            "otlp", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}, set_global=False
        )
        gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
        try:
            client = make_client(sim)
            for i in range(5):
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
        finally:
            gateway_otel.uninstrument()
        providers.shutdown()
        paths = [path for path, _, _ in receiver.requests]
    assert providers.stats() == {"otlp": {"exported": 5, "failed": 0, "dropped": 0, "sampled_out": 0, "unencodable": 0}}
    assert "/v1/traces" in paths and "/v1/metrics" in paths
    assert providers.destinations[0].logs_endpoint == f"{receiver.url}/v1/logs"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
            "OTEL_EXPORTER_OTLP_ENDPOINT='collector:4318' is not valid: expected an http:// or https:// URL",
        ),
        (
            {"OTEL_EXPORTER_OTLP_HEADERS": "authorization"},
            "OTEL_EXPORTER_OTLP_HEADERS is not valid: expected comma-separated key=value pairs",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
            "OTEL_EXPORTER_OTLP_TIMEOUT='soon' is not valid: expected a number of seconds greater than 0",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='http/json' is not valid: expected one of http/protobuf, grpc",
        ),
    ],
)
def test_bad_otlp_settings_fail_at_set_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(gateway_otel.ConfigurationError) as caught:
        gateway_otel.configure("otlp", environ=env, set_global=False)
    assert str(caught.value).startswith(message)
    assert "Basic" not in str(caught.value)


def test_otlp_headers_are_sent_and_never_shown(sim: Any) -> None:
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20c2VjcmV0,x-tenant=acme",
        }
        providers = gateway_otel.configure("otlp", environ=env, set_global=False)
        tracer = providers.tracer_provider.get_tracer("t")
        tracer.start_span("probe").end()
        providers.shutdown()
    [(_, headers, _)] = [r for r in receiver.requests if r[0] == "/v1/traces"]
    assert headers["authorization"] == "Basic c2VjcmV0"
    assert headers["x-tenant"] == "acme"
