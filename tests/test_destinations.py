"""Destination presets against local receivers that enforce each backend's contract; several destinations at once,
privacy mode and sampling per destination; the destinations API, its CLI, and `.env` files."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import openai
import pytest

import gateway_otel
from conftest import instrument_into, make_client
from gateway_otel import ConfigurationError, destinations
from gateway_otel._semconv import is_content
from gateway_otel.cli import main as cli
from otlp_receiver import OtlpReceiver
from otlp_receiver import decode_spans as _decode

OO_TOKEN = "Basic " + base64.b64encode(b"root@example.com:Complexpass#123").decode()


def _run(providers: gateway_otel.Providers, sim: Any, calls: int = 1) -> None:
    gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
    try:
        client = make_client(sim)
        for i in range(calls):
            client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": f"secret {i}"}])
    finally:
        gateway_otel.uninstrument()
    providers.shutdown()


def test_openobserve_contract(sim: Any) -> None:
    """Path with the org, Basic auth, `stream-name`, protobuf: what OpenObserve's ingestion handler requires."""
    with OtlpReceiver() as oo:
        env = {
            "GATEWAY_OTEL_DESTINATIONS": "openobserve",
            "OPENOBSERVE_URL": oo.url + "/",
            "OPENOBSERVE_ORG": "acme",
            "OPENOBSERVE_AUTH_TOKEN": OO_TOKEN,
            "OPENOBSERVE_TRACES_STREAM_NAME": "llm",
        }
        _run(gateway_otel.configure(environ=env, set_global=False), sim)
    traces = [(h, b) for path, h, b in oo.requests if path == "/api/acme/v1/traces"]
    metrics = [h for path, h, _ in oo.requests if path == "/api/acme/v1/metrics"]
    assert traces and metrics
    headers, body = traces[0]
    assert headers["authorization"] == OO_TOKEN
    assert headers["stream-name"] == "llm"
    assert headers["content-type"] == "application/x-protobuf"
    assert "stream-name" not in metrics[0]
    [span] = _decode(body)
    assert span["name"] == "chat openai/gpt-4o"
    assert span["attributes"]["llm.model_name"] == "openai/gpt-4o"  # what its LLM view keys on
    assert span["attributes"]["gen_ai.usage.cost"] > 0  # taken as the call's total cost


def test_log_records_reach_openobserve_logs_stream() -> None:
    """configure() also builds a logger provider; OpenObserve gets log records at /api/{org}/v1/logs."""
    import logging

    from opentelemetry.sdk._logs import LoggingHandler

    with OtlpReceiver() as oo:
        env = {
            "GATEWAY_OTEL_DESTINATIONS": "openobserve",
            "OPENOBSERVE_URL": oo.url,
            "OPENOBSERVE_ORG": "acme",
            "OPENOBSERVE_AUTH_TOKEN": OO_TOKEN,
            "OPENOBSERVE_LOGS_STREAM_NAME": "llm_logs",
        }
        providers = gateway_otel.configure(environ=env, set_global=False)
        log = logging.getLogger("gateway-otel-test-logs")
        handler = LoggingHandler(logger_provider=providers.logger_provider)
        log.addHandler(handler)
        try:
            log.error("the gateway failed")
        finally:
            log.removeHandler(handler)
        providers.shutdown()
    [(headers, body)] = [(h, b) for path, h, b in oo.requests if path == "/api/acme/v1/logs"]
    assert headers["stream-name"] == "llm_logs"
    assert headers["authorization"] == OO_TOKEN
    assert b"the gateway failed" in body


def test_openobserve_builds_basic_auth_from_email_and_password() -> None:
    env = {"OPENOBSERVE_EMAIL": "root@example.com", "OPENOBSERVE_PASSWORD": "Complexpass#123"}
    [destination] = destinations.list(environ={**env, "GATEWAY_OTEL_DESTINATIONS": "openobserve"})
    assert destination.headers["authorization"] == OO_TOKEN
    assert destination.endpoint == "http://localhost:5080/api/default/v1/traces"
    assert destination.masked_headers["authorization"] == "Basic ****MjM="
    assert "Complexpass" not in json.dumps(destination.to_dict())


def test_openobserve_grpc_carries_the_organization() -> None:
    env = {
        "GATEWAY_OTEL_DESTINATIONS": "openobserve",
        "OPENOBSERVE_AUTH_TOKEN": OO_TOKEN,
        "OPENOBSERVE_PROTOCOL": "grpc",
        "OPENOBSERVE_ORG": "acme",
        "OPENOBSERVE_URL": "https://oo.example.com",
    }
    [destination] = destinations.list(environ=env)
    assert destination.endpoint == "https://oo.example.com:5081"
    assert destination.headers == {"authorization": OO_TOKEN, "organization": "acme", "stream-name": "default"}


def test_arize_headers_and_project(sim: Any) -> None:
    with OtlpReceiver() as arize:
        env = {
            "GATEWAY_OTEL_DESTINATIONS": "arize",
            "ARIZE_SPACE_ID": "U3BhY2U6MTIz",
            "ARIZE_API_KEY": "ak-123456789",
            "ARIZE_PROJECT_NAME": "checkout",
            "ARIZE_PROTOCOL": "http/protobuf",
            "ARIZE_COLLECTOR_ENDPOINT": arize.url + "/v1",
        }
        _run(gateway_otel.configure(environ=env, set_global=False), sim)
    [(path, headers, body)] = arize.requests  # traces only: Arize takes no metrics
    assert path == "/v1/traces"
    assert headers["authorization"] == "ak-123456789"
    assert headers["arize-space-id"] == "U3BhY2U6MTIz"
    [span] = _decode(body)
    assert span["resource"]["openinference.project.name"] == "checkout"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_OTEL_DESTINATIONS": "arize"}, "ARIZE_SPACE_ID is not set: expected your Arize space id"),
        ({"GATEWAY_OTEL_DESTINATIONS": "arize", "ARIZE_SPACE_ID": "s"}, "ARIZE_API_KEY is not set"),
        ({"GATEWAY_OTEL_DESTINATIONS": "openobserve"}, "OPENOBSERVE_AUTH_TOKEN is not set: expected 'Basic <base64"),
        (
            {"GATEWAY_OTEL_DESTINATIONS": "openobserve", "OPENOBSERVE_AUTH_TOKEN": "x", "OPENOBSERVE_URL": "localhost"},
            "OPENOBSERVE_URL='localhost' is not valid: expected an http:// or https:// URL",
        ),
        (
            {"GATEWAY_OTEL_DESTINATIONS": "phoenix", "GATEWAY_OTEL_PHOENIX_SAMPLING_RATE": "2"},
            "GATEWAY_OTEL_PHOENIX_SAMPLING_RATE='2' is not valid: expected a number in (0, 1]",
        ),
        (
            {"GATEWAY_OTEL_DESTINATIONS": "phoenix", "GATEWAY_OTEL_PHOENIX_PRIVACY_MODE": "sure"},
            "GATEWAY_OTEL_PHOENIX_PRIVACY_MODE='sure' is not valid: expected true or false",
        ),
    ],
)
def test_a_wrong_or_missing_setting_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        gateway_otel.configure(environ=env, set_global=False)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (
            {"GATEWAY_OTEL_DESTINATIONS": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ),
        (
            {"GATEWAY_OTEL_DESTINATIONS": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
            "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        ),
        ({"GATEWAY_OTEL_DESTINATIONS": "openobserve", "OPENOBSERVE_AUTH_TOKEN": OO_TOKEN}, "OPENOBSERVE_TIMEOUT"),
    ],
)
def test_a_timeout_that_is_not_a_finite_number_fails_at_set_up(env: dict[str, str], variable: str, raw: str) -> None:
    """`float()` reads nan and inf; the socket would refuse them only at the first export, so set-up does."""
    with pytest.raises(ConfigurationError) as caught:
        gateway_otel.configure(environ={**env, variable: raw}, set_global=False)
    assert str(caught.value) == f"{variable}={raw!r} is not valid: expected a number of seconds greater than 0"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_queue_size": 0}, "max_queue_size=0 is not valid: expected a whole number greater than 0"),
        ({"max_queue_size": "100"}, "max_queue_size='100' is not valid: expected a whole number greater than 0"),
        ({"max_queue_size": True}, "max_queue_size=True is not valid: expected a whole number greater than 0"),
        ({"shutdown_timeout": -1}, "shutdown_timeout=-1 is not valid: expected a number of seconds greater than 0"),
        ({"shutdown_timeout": 0}, "shutdown_timeout=0 is not valid: expected a number of seconds greater than 0"),
        (
            {"shutdown_timeout": float("nan")},
            "shutdown_timeout=nan is not valid: expected a number of seconds greater than 0",
        ),
        (
            {"destinations": 5},
            "destinations=5 is not valid: expected a comma-separated string or a list of otlp, openobserve, arize, "
            "phoenix, console, local (or Destination objects)",
        ),
    ],
)
def test_a_bad_configure_argument_fails_naming_it(options: dict[str, Any], message: str, tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        gateway_otel.configure(**options, environ={"GATEWAY_OTEL_LOCAL_PATH": str(tmp_path / "t.db")}, set_global=False)
    assert str(caught.value) == message
    assert not (tmp_path / "t.db").exists()  # checked before anything started


def test_several_destinations_privacy_and_project_per_destination(sim: Any) -> None:
    """Phoenix gets content; OpenObserve, in privacy mode, gets the same spans without it."""
    with OtlpReceiver() as phoenix, OtlpReceiver() as oo:
        env = {
            "GATEWAY_OTEL_DESTINATIONS": "phoenix,openobserve",
            "PHOENIX_COLLECTOR_ENDPOINT": phoenix.url,
            "PHOENIX_PROJECT_NAME": "shop",
            "OPENOBSERVE_URL": oo.url,
            "OPENOBSERVE_AUTH_TOKEN": OO_TOKEN,
            "GATEWAY_OTEL_OPENOBSERVE_PRIVACY_MODE": "true",
        }
        providers = gateway_otel.configure(environ=env, set_global=False)
        _run(providers, sim)
    [full] = [s for _, h, b in phoenix.requests for s in _decode(b)]
    [private] = [s for p, h, b in oo.requests if p.endswith("/traces") for s in _decode(b)]
    assert phoenix.requests[0][1]["x-project-name"] == "shop"
    assert full["resource"]["openinference.project.name"] == "shop"
    assert "openinference.project.name" not in private["resource"]
    assert "secret 0" in full["attributes"]["input.value"]
    assert "secret" not in json.dumps(private)
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.cost", "gen_ai.request.model"):
        assert private["attributes"][key] == full["attributes"][key]
    assert [d.id for d in providers.destinations] == ["phoenix", "openobserve"]


def test_privacy_mode_drops_every_kind_of_content(sim: Any) -> None:
    """System instructions, tool definitions, tool calls, the prompt and the answer — and the failed call's log
    record — leave nothing of their text in a privacy-mode destination; the full one keeps each."""
    with OtlpReceiver() as full_receiver, OtlpReceiver() as private_receiver:
        env = {
            "GATEWAY_OTEL_DESTINATIONS": "phoenix,openobserve",
            "PHOENIX_COLLECTOR_ENDPOINT": full_receiver.url,
            "OPENOBSERVE_URL": private_receiver.url,
            "OPENOBSERVE_AUTH_TOKEN": OO_TOKEN,
            "GATEWAY_OTEL_OPENOBSERVE_PRIVACY_MODE": "true",
        }
        providers = gateway_otel.configure(environ=env, set_global=False)
        instrument_into(providers)
        tool = {"type": "function", "function": {"name": "secret_tool", "description": "secret-description",
                                                  "parameters": {"type": "object", "properties": {}}}}  # fmt: skip
        messages = [{"role": "system", "content": "secret-system"}, {"role": "user", "content": "secret-prompt"}]
        try:
            client = make_client(sim)
            client.chat.completions.create(model="openai/gpt-4o", messages=messages, tools=[tool])
            with contextlib.suppress(openai.RateLimitError):
                client.chat.completions.create(model="sim/error-429", messages=messages)
        finally:
            gateway_otel.uninstrument()
        providers.shutdown()
    full = json.dumps([s for _, _, b in full_receiver.requests for s in _decode(b)])
    for text in ("secret-system", "secret_tool", "secret-description", "secret-prompt"):
        assert text in full
    private = [s for p, _, b in private_receiver.requests if p.endswith("/traces") for s in _decode(b)]
    assert len(private) == 2 and "secret" not in json.dumps(private)
    assert all(not is_content(key) for span in private for key in span["attributes"])
    logs = [b for p, _, b in private_receiver.requests if p.endswith("/logs")]
    assert logs and all(b"secret" not in body for body in logs)


def test_sampling_keeps_whole_traces_by_trace_id(sim: Any) -> None:
    with OtlpReceiver() as receiver:
        env = {
            "GATEWAY_OTEL_DESTINATIONS": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "GATEWAY_OTEL_OTLP_SAMPLING_RATE": "0.5",
        }
        providers = gateway_otel.configure(environ=env, set_global=False)
        _run(providers, sim, calls=60)
    kept = [s for p, _, b in receiver.requests if p == "/v1/traces" for s in _decode(b)]
    stats = providers.stats()["otlp"]
    assert stats["exported"] == len(kept) and stats["sampled_out"] == 60 - len(kept)
    assert 0 < len(kept) < 60
    bound = int(0.5 * (1 << 64))
    assert all(int(s["trace_id"], 16) & ((1 << 64) - 1) < bound for s in kept)


def test_disabled_destination_is_listed_not_exported() -> None:
    env = {"GATEWAY_OTEL_DESTINATIONS": "console,phoenix", "GATEWAY_OTEL_PHOENIX_ENABLED": "false"}
    providers = gateway_otel.configure(environ=env, set_global=False)
    assert [(d.id, d.enabled) for d in providers.destinations] == [("console", True), ("phoenix", False)]
    assert [p.name for p in providers.processors] == ["console"]


def test_destinations_api_get() -> None:
    env = {"GATEWAY_OTEL_DESTINATIONS": "phoenix", "PHOENIX_API_KEY": "px-secret-1234567890"}
    destination = destinations.get("phoenix", environ=env)
    assert destination.to_dict() == {
        "id": "phoenix",
        "type": "phoenix",
        "name": "Phoenix",
        "enabled": True,
        "privacy_mode": False,
        "sampling_rate": 1.0,
        "endpoint": "http://localhost:6006/v1/traces",
        "protocol": "http/protobuf",
        "headers": {"x-project-name": "default", "authorization": "Bearer ****7890"},
        "resource_attributes": {"openinference.project.name": "default"},
        "metrics_endpoint": None,
    }
    with pytest.raises(LookupError, match="no destination 'arize': this process exports to phoenix"):
        destinations.get("arize", environ=env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("status", "ok", "message"),
    [
        (200, True, "accepted"),
        (401, False, "authentication failed (HTTP 401 Unauthorized): check OPENOBSERVE_AUTH_TOKEN"),
        (404, False, "endpoint not found (HTTP 404 Not Found) at http://127.0.0.1:"),
        (None, False, "connection refused: nothing listens at"),
    ],
)
def test_destinations_test_reports_an_actionable_line(status: int | None, ok: bool, message: str) -> None:
    receiver = OtlpReceiver(status=status or 200)
    with receiver:
        url = receiver.url if status else f"http://127.0.0.1:{_free_port()}"
        env = {"GATEWAY_OTEL_DESTINATIONS": "openobserve", "OPENOBSERVE_URL": url, "OPENOBSERVE_AUTH_TOKEN": OO_TOKEN}
        [result] = destinations.test(environ=env)
    assert (result.ok, result.status) == (ok, status)
    assert result.message.startswith(message)
    assert OO_TOKEN not in result.message
    if status:
        [span] = _decode(receiver.bodies[0])
        assert span["name"] == "gateway-otel connection test"


def test_testing_the_local_store_writes_nothing_into_it(tmp_path: Path) -> None:
    """`destinations test local` checks that the store can be written (its write lock taken) and leaves no span
    among the user's own; a file that is not a store says so."""
    import sqlite3

    path = tmp_path / "telemetry.db"
    env = {"GATEWAY_OTEL_DESTINATIONS": "local", "GATEWAY_OTEL_LOCAL_PATH": str(path)}
    for _ in range(2):  # creates the store, then finds it
        [result] = destinations.test("local", environ=env)
        assert (result.ok, result.message) == (True, f"writable: {path}")
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM spans").fetchone() == (0,)
    conn.close()
    path.unlink()
    path.write_bytes(b"not a database, " * 512)
    [result] = destinations.test("local", environ=env)
    assert not result.ok and result.message.startswith(f"cannot write {path}: not a gateway-otel store (")


def test_destinations_test_over_grpc_says_why_too() -> None:
    """A gRPC destination is probed through its exporter; its log lines, held back, say what went wrong."""
    port = _free_port()
    env = {
        "GATEWAY_OTEL_DESTINATIONS": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }
    [result] = destinations.test(environ=env)
    assert (result.ok, result.status) == (False, None)
    assert result.message == f"connection refused: nothing listens at 127.0.0.1:{port}; is the backend running?"


def test_cli_destinations(monkeypatch: Any, capsys: Any, tmp_path: Any) -> None:
    """The CLI reads the same variables, from the environment and from `.env`; secrets are masked."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "# backends\nexport GATEWAY_OTEL_DESTINATIONS=openobserve,phoenix\n"
        f"OPENOBSERVE_AUTH_TOKEN='{OO_TOKEN}'\nPHOENIX_PROJECT_NAME=shop # the project\n"
    )
    for name in ("GATEWAY_OTEL_DESTINATIONS", "OPENOBSERVE_AUTH_TOKEN", "PHOENIX_PROJECT_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert cli(["destinations", "list"]) == 0
    table = capsys.readouterr().out
    assert "openobserve" in table and "phoenix" in table and "Basic ****MjM=" in table
    assert OO_TOKEN not in table
    assert cli(["destinations", "get", "phoenix", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["headers"] == {"x-project-name": "shop"}
    assert cli(["destinations", "get", "nope"]) == 2
    assert "no destination 'nope'" in capsys.readouterr().err
    monkeypatch.setenv("OPENOBSERVE_URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    assert cli(["destinations", "test"]) == 1
    out = capsys.readouterr().out
    assert out.count("connection refused") == 2


def test_dotenv_parsing(tmp_path: Any) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("A=1\nexport B=\"two words\"\n# note\nC=x # comment\nD='#kept'\n")
    assert destinations.load_dotenv(env_file) == {"A": "1", "B": "two words", "C": "x", "D": "#kept"}
    env_file.write_text("not a line\nE=after it\n")  # another tool's statement is skipped, not an error
    assert destinations.load_dotenv(env_file) == {"E": "after it"}




def test_the_local_store_queues_8192_spans_by_default_the_others_2048_and_an_explicit_size_wins(
    tmp_path: Path,
) -> None:
    """The local store's writer may wait up to 10 s for another process's write lock: its queue covers that."""
    env = {"GATEWAY_OTEL_DESTINATIONS": "local,console", "GATEWAY_OTEL_LOCAL_PATH": str(tmp_path / "t.db")}
    for size, expected in ((None, {"local": 8192, "console": 2048}), (100, {"local": 100, "console": 100})):
        providers = gateway_otel.configure(environ=env, set_global=False, max_queue_size=size)
        try:
            assert {p.name: p.max_queue_size for p in providers.processors} == expected
        finally:
            providers.shutdown()
