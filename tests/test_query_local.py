"""The query API (`Telemetry`, `AsyncTelemetry`) over the local store, against real SQLite written by real calls:
every filter of the three sub-clients, windows and steps, metric values checked against the stored rows, and a
clear error for every bad parameter."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.resources import Resource

import gateway_otel
from conftest import instrument_into, make_client, run
from gateway_otel import AsyncTelemetry, Telemetry
from gateway_otel.query import LogsResult, MetricsResult, QueryError, TracesResult
from gateway_otel.query._local_store import LocalBackend
from gateway_otel.simulator import GatewaySimulator

PROMPT = [{"role": "user", "content": "Hello there"}]


def instrumented_calls(path: Path, service: str, sim: GatewaySimulator) -> None:
    """Real calls through the openai client into the local store at `path`, as application `service`."""
    providers = gateway_otel.configure(
        "local",
        environ={"GATEWAY_OTEL_LOCAL_PATH": str(path)},
        set_global=False,
        resource=Resource.create({"service.name": service}),
    )
    instrument_into(providers)
    try:
        client = make_client(sim)
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=PROMPT, extra_body={"session_id": "s1"})
        run(
            make_client(sim, asynchronous=True).chat.completions.create(
                model="openai/gpt-oss-20b:free", messages=PROMPT
            )
        )
        for _ in client.chat.completions.create(model="anthropic/claude-3.5-sonnet", messages=PROMPT, stream=True):
            pass
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="sim/error-429", messages=PROMPT)
        logging_provider = providers.logger_provider
        info = logging_provider.get_logger("app")
        from opentelemetry._logs import SeverityNumber

        info.emit(body="warming up", severity_number=SeverityNumber.INFO, severity_text="INFO")
        info.emit(body="slow answer", severity_number=SeverityNumber.WARN, severity_text="WARN")
    finally:
        gateway_otel.uninstrument()
        providers.shutdown()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("query") / "telemetry.db"
    sim = GatewaySimulator()
    instrumented_calls(path, "shop", sim)
    instrumented_calls(path, "blog", sim)
    return path


def stored(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


@pytest.fixture
def telemetry(store: Path) -> Any:
    with Telemetry("local", path=store) as client:
        yield client


# --- traces --------------------------------------------------------------------------------------------------------


def test_traces_newest_first_with_lifted_fields(telemetry: Telemetry, store: Path) -> None:
    result = telemetry.traces.query()
    assert isinstance(result, TracesResult)
    expected = stored(store, "SELECT span_id FROM spans ORDER BY start_ns DESC")
    assert [s.span_id for s in result.spans] == [r[0] for r in expected]
    assert len(result.spans) == 8
    first_call = result.spans[-1]
    assert (first_call.project_name, first_call.model, first_call.provider, first_call.session_id) == (
        "shop",
        "openai/gpt-4o-mini",
        "OpenAI",
        "s1",
    )
    assert (first_call.input_tokens, first_call.output_tokens, first_call.total_tokens, first_call.cost) == (
        6,
        5,
        11,
        1.6e-05,
    )
    assert first_call.attributes["gen_ai.request.model"] == "openai/gpt-4o-mini"
    assert first_call.start_time.tzinfo is timezone.utc
    assert first_call.to_dict()["start_time"] == first_call.start_time.isoformat()


def test_traces_every_filter(telemetry: Telemetry, store: Path) -> None:
    [(trace_id,)] = stored(store, "SELECT trace_id FROM spans WHERE project_name='blog' AND model='sim/error-429'")
    [only] = telemetry.traces.query(trace_id=trace_id).spans
    assert (only.trace_id, only.status, only.project_name) == (trace_id, "error", "blog")
    assert telemetry.traces.query(trace_id=trace_id.upper()).spans == (only,)
    assert {s.project_name for s in telemetry.traces.query(project_name="shop").spans} == {"shop"}
    assert len(telemetry.traces.query(project_name="shop").spans) == 4
    assert len(telemetry.traces.query(project_name="nobody").spans) == 0
    # a model matches the requested or the served name
    free = telemetry.traces.query(model="openai/gpt-oss-20b:free").spans
    assert [(s.request_model, s.model) for s in free] == [("openai/gpt-oss-20b:free", "openai/gpt-oss-20b")] * 2
    assert telemetry.traces.query(model="openai/gpt-oss-20b").spans == free
    assert {s.model for s in telemetry.traces.query(status="error").spans} == {"sim/error-429"}
    assert len(telemetry.traces.query(status="ok").spans) == 6
    assert len(telemetry.traces.query(status="ERROR", project_name="shop", model="sim/error-429").spans) == 1
    brief = telemetry.traces.query(detail=False, limit=3).spans
    assert [s.span_id for s in brief] == [s.span_id for s in telemetry.traces.query().spans[:3]]
    assert all(s.attributes == {} and s.events == () for s in brief)


def test_a_trace_id_prefix_asks_for_every_trace_that_starts_so(telemetry: Telemetry, store: Path) -> None:
    """(Several traces sharing a prefix: tests/test_cli_views.py, over a store with ids made to.)"""
    ids = [r[0] for r in stored(store, "SELECT DISTINCT trace_id FROM spans")]
    assert len(ids) == 8
    for trace_id in ids:  # any case, `0x` allowed, as for a whole id
        assert telemetry.traces.query(trace_id=f"0x{trace_id[:10].upper()}").trace_ids() == [trace_id]
    prefix = ids[0][:4]
    sql = "SELECT span_id FROM spans WHERE substr(trace_id, 1, 4) = ? ORDER BY start_ns DESC"
    expected = stored(store, sql, prefix)
    assert [s.span_id for s in telemetry.traces.query(trace_id=prefix).spans] == [r[0] for r in expected]
    unused = next(p for p in (f"{n:04x}" for n in range(1 << 16)) if not any(t.startswith(p) for t in ids))
    assert telemetry.traces.query(trace_id=unused).spans == ()


def test_traces_time_window(telemetry: Telemetry, store: Path) -> None:
    [(newest_ns,)] = stored(store, "SELECT max(start_ns) FROM spans")
    newest = datetime.fromtimestamp(newest_ns / 1e9, tz=timezone.utc)
    telemetry._clock = lambda: newest + timedelta(minutes=59)
    assert len(telemetry.traces.query(time_window="1h").spans) == 8
    telemetry._clock = lambda: newest + timedelta(minutes=61)
    assert len(telemetry.traces.query(time_window="1h").spans) == 0
    assert len(telemetry.traces.query(time_window="2h").spans) == 8
    telemetry._clock = lambda: newest + timedelta(days=6)
    assert len(telemetry.traces.query(time_window="7d").spans) == 8


# --- metrics -------------------------------------------------------------------------------------------------------


def test_metric_values_match_the_stored_rows(telemetry: Telemetry, store: Path) -> None:
    [(tokens, cost, calls, errors)] = stored(
        store,
        "SELECT sum(coalesce(input_tokens,0)+coalesce(output_tokens,0)), sum(coalesce(cost,0)), count(*),"
        " sum(status='error') FROM spans",
    )
    assert telemetry.metrics.query("token_consumption").value == tokens == 98
    assert telemetry.metrics.query("cost").value == pytest.approx(cost)
    assert telemetry.metrics.query("inference_requests_total").value == calls == 8
    assert telemetry.metrics.query("error_rate").value == errors / calls == 0.25
    durations = sorted(r[0] for r in stored(store, "SELECT duration_ms FROM spans"))
    assert telemetry.metrics.query("inference_latency", percentile=1).value == pytest.approx(durations[-1])
    assert telemetry.metrics.query("inference_latency", percentile=0).value == pytest.approx(durations[0])
    ttfts = [r[0] for r in stored(store, "SELECT ttft_ms FROM spans WHERE ttft_ms IS NOT NULL")]
    assert len(ttfts) == 2
    assert telemetry.metrics.query("time_to_first_token", percentile=0.5).value == pytest.approx(sum(ttfts) / 2)


def test_metric_filters_and_grouping(telemetry: Telemetry) -> None:
    assert telemetry.metrics.query("inference_requests_total", project_name="shop").value == 4
    assert telemetry.metrics.query("inference_requests_total", model_key="openai/gpt-4o-mini").value == 2
    assert telemetry.metrics.query("inference_requests_total", session_id="s1").value == 2
    assert telemetry.metrics.query("inference_requests_total", status="error").value == 2
    usage = telemetry.metrics.query("model_usage")
    assert {s.labels["model"]: s.points[0][1] for s in usage.series} == {
        "anthropic/claude-3.5-sonnet": 2,
        "openai/gpt-4o-mini": 2,
        "openai/gpt-oss-20b": 2,
        "sim/error-429": 2,
    }
    cost = telemetry.metrics.query("cost", group_by_model=True, project_name="blog")
    assert {s.labels["model"]: s.points[0][1] for s in cost.series}["openai/gpt-4o-mini"] == pytest.approx(1.6e-05)


def test_metric_step_makes_a_series(telemetry: Telemetry, store: Path) -> None:
    [(newest_ns,)] = stored(store, "SELECT max(start_ns) FROM spans")
    telemetry._clock = lambda: datetime.fromtimestamp(newest_ns / 1e9, tz=timezone.utc) + timedelta(minutes=40)
    result = telemetry.metrics.query("inference_requests_total", time_window="2h", step="30m")
    assert isinstance(result, MetricsResult)
    assert result.step_seconds == 1800
    [series] = result.series
    assert [v for _, v in series.points] == [0, 0, 8, 0]
    assert result.to_dict()["series"][0]["points"][2][1] == 8


# --- logs ----------------------------------------------------------------------------------------------------------


def test_logs_severity_project_window_and_limit(telemetry: Telemetry, store: Path) -> None:
    result = telemetry.logs.query()
    assert isinstance(result, LogsResult)
    assert [r.body for r in result.records] == [
        "slow answer",
        "warming up",
        "chat sim/error-429 failed: 429: Provider returned error",
    ] * 2
    errors = telemetry.logs.query(severity="error").records
    assert [(r.severity, r.project_name) for r in errors] == [("error", "blog"), ("error", "shop")]
    spans = {(s.trace_id, s.span_id) for s in telemetry.traces.query(status="error").spans}
    assert {(r.trace_id, r.span_id) for r in errors} == spans
    assert [r.severity for r in telemetry.logs.query(severity="warning", project_name="shop").records] == [
        "warning",
        "error",
    ]
    assert len(telemetry.logs.query(severity="info").records) == 6
    assert len(telemetry.logs.query(severity="debug").records) == 6
    assert [r.body for r in telemetry.logs.query(limit=1).records] == ["slow answer"]
    telemetry._clock = lambda: datetime.now(timezone.utc) + timedelta(hours=25)
    assert telemetry.logs.query().records == ()
    assert len(telemetry.logs.query(time_window="2d").records) == 6


# --- async, backend objects, errors ---------------------------------------------------------------------------------


def test_async_client_answers_the_same(store: Path, telemetry: Telemetry) -> None:
    async def main() -> tuple[Any, Any, Any]:
        async with AsyncTelemetry("local", path=store) as client:
            return await asyncio.gather(
                client.traces.query(status="error"),
                client.metrics.query("cost", group_by_model=True),
                client.logs.query(severity="error"),
            )

    traces, cost, logs = asyncio.run(main())
    assert traces == telemetry.traces.query(status="error")
    assert [s.points[0][1] for s in cost.series] == [
        s.points[0][1] for s in telemetry.metrics.query("cost", group_by_model=True).series
    ]
    assert logs == telemetry.logs.query(severity="error")


def test_a_backend_object_can_be_given(store: Path) -> None:
    backend = LocalBackend(store)
    client = Telemetry(backend)
    assert client.backend is backend
    assert len(client.traces.query().spans) == 8
    with pytest.raises(ValueError, match=r"^options path only apply to a backend given by name$"):
        Telemetry(backend, path=store)


def test_the_default_backend_reads_where_the_destination_writes(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_OTEL_LOCAL_PATH", str(store))
    assert len(Telemetry().traces.query().spans) == 8


def test_a_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match=rf"^no local store at {tmp_path / 'none.db'}: nothing has been stored"):
        Telemetry(path=tmp_path / "none.db").traces.query()
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.metrics.query("latency"), "metric='latency' is not a known metric: expected one of "),
        (lambda t: t.traces.query(time_window="1x"), "time_window='1x' is not valid: expected a positive number"),
        (lambda t: t.traces.query(time_window="0h"), "time_window='0h' is not valid: expected a positive number"),
        (lambda t: t.traces.query(time_window=60), "time_window=60 is not valid: expected a positive number"),
        (lambda t: t.logs.query(time_window="1 day"), "time_window='1 day' is not valid: expected a positive number"),
        (lambda t: t.metrics.query("cost", step="soon"), "step='soon' is not valid: expected a positive number"),
        (
            lambda t: t.metrics.query("inference_latency", percentile=95),
            "percentile=95 is not valid: expected a number from 0 to 1 (e.g. 0.95)",
        ),
        (
            lambda t: t.metrics.query("inference_latency", percentile=-0.1),
            "percentile=-0.1 is not valid: expected a number from 0 to 1 (e.g. 0.95)",
        ),
        (lambda t: t.traces.query(status="failed"), "status='failed' is not valid: expected one of ok, error"),
        (lambda t: t.metrics.query("cost", status="bad"), "status='bad' is not valid: expected one of ok, error"),
        (
            lambda t: t.logs.query(severity="fatal"),
            "severity='fatal' is not valid: expected one of debug, info, warning, error",
        ),
        (lambda t: t.traces.query(trace_id="abc"), "trace_id='abc' is too short: give at least 4 hex digits"),
        (
            lambda t: t.traces.query(trace_id="abcz"),
            "trace_id='abcz' is not valid: expected a trace id of 32 hex digits, or its first 4 or more",
        ),
        (lambda t: t.traces.query(trace_id="a" * 33), f"trace_id='{'a' * 33}' is not valid: expected a trace id of"),
        (lambda t: t.traces.query(limit=0), "limit=0 is not valid: expected a whole number from 1 to 1,000,000,000"),
        (lambda t: t.logs.query(limit="5"), "limit='5' is not valid: expected a whole number from 1 to 1,000,000,000"),
        (lambda t: t.traces.query(limit=10**20), "limit=100000000000000000000 is not valid: expected a whole number"),
        (lambda t: t.traces.query(time_window="200000w"), "time_window='200000w' is not valid: expected at most"),
        (lambda t: t.traces.query(model=""), "model='' is not valid: expected a non-empty string"),
    ],
)
def test_bad_parameters_are_named(telemetry: Telemetry, call: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call(telemetry)
    assert str(info.value).startswith(message)


def test_bad_backend_name() -> None:
    with pytest.raises(ValueError, match=r"^backend='sqlite' is not valid: expected one of local"):
        Telemetry("sqlite")


def test_queries_never_block_a_writer(store: Path, tmp_path: Path, sim: GatewaySimulator) -> None:
    """A reader holding the store open does not stop an application from writing (WAL)."""
    path = tmp_path / "busy.db"
    instrumented_calls(path, "one", sim)
    reader = Telemetry(path=path)
    assert len(reader.traces.query().spans) == 4
    instrumented_calls(path, "two", sim)  # a failed write would be missing below (an export failure)
    assert len(reader.traces.query().spans) == 8


def test_the_registry_names_every_backend() -> None:
    from gateway_otel.query._backends import BACKENDS

    assert list(BACKENDS) == ["local", "openobserve", "phoenix"]
    with pytest.raises(QueryError, match=r"^the phoenix backend is not configured: PHOENIX_COLLECTOR_ENDPOINT="):
        Telemetry("phoenix", environ={"PHOENIX_COLLECTOR_ENDPOINT": "not a url"})


def test_the_default_store_is_the_one_named_in_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`GATEWAY_OTEL_LOCAL_PATH` in `.env`: the `local` destination writes there, so `Telemetry()` (and the
    commands) read there, not the default store."""
    store = tmp_path / "app.db"
    (tmp_path / ".env").write_text(f"GATEWAY_OTEL_LOCAL_PATH={store}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_OTEL_LOCAL_PATH")
    monkeypatch.delenv("GATEWAY_OTEL_DOTENV", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "elsewhere"))
    providers = gateway_otel.configure("local", set_global=False)
    with providers.tracer_provider.get_tracer("t").start_as_current_span("checkout"):
        pass
    providers.shutdown()
    assert store.exists()
    with Telemetry() as telemetry:
        assert [s.name for s in telemetry.traces.query().spans] == ["checkout"]
