"""The `local` destination against real SQLite: exact rows from real openai calls, the default destination and its
message, retention by age and size, and several processes writing one file at once."""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

import gateway_otel
from conftest import make_client, run
from gateway_otel import destinations
from gateway_otel import store as _store
from gateway_otel.destinations import _configure
from gateway_otel.simulator import GatewaySimulator
from gateway_otel.store import LocalSpanExporter

HOUR_NS = 3600 * 10**9


def rows(path: Path, table: str = "spans", order: str = "start_ns") -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]
    finally:
        conn.close()


def workload(sim: GatewaySimulator) -> None:
    """Sync, async, streamed and failing calls through the real openai client."""
    client = make_client(sim)
    client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello there"}],
        extra_body={"session_id": "s1"},
    )
    aclient = make_client(sim, asynchronous=True)
    run(aclient.chat.completions.create(model="openai/gpt-oss-20b:free", messages=[{"role": "user", "content": "a"}]))
    for _ in client.chat.completions.create(
        model="anthropic/claude-3.5-sonnet", messages=[{"role": "user", "content": "Stream please"}], stream=True
    ):
        pass
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="sim/error-429", messages=[{"role": "user", "content": "x"}])


@pytest.fixture
def local(tmp_path: Path) -> Any:
    """A `local` destination in a temporary file, instrumented; yields (providers, path, in-memory copy)."""
    path = tmp_path / "telemetry.db"
    providers = gateway_otel.configure(
        "local",
        environ={"GATEWAY_OTEL_LOCAL_PATH": str(path)},
        set_global=False,
        resource=Resource.create({"service.name": "shop"}),
    )
    memory = InMemorySpanExporter()
    providers.tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
    yield providers, path, memory
    gateway_otel.uninstrument()
    providers.shutdown()


def test_real_calls_are_stored_as_exact_rows(local: Any, sim: GatewaySimulator) -> None:
    providers, path, memory = local
    workload(sim)
    providers.tracer_provider.force_flush()
    stored = rows(path)
    exported = sorted(memory.get_finished_spans(), key=lambda s: s.start_time or 0)
    assert [(r["trace_id"], r["span_id"], r["start_ns"], r["end_ns"]) for r in stored] == [
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x"), s.start_time, s.end_time)
        for s in exported
    ]
    lifted = [
        {k: r[k] for k in ("name", "kind", "status", "operation", "model", "request_model", "provider", "gateway")}
        | {k: r[k] for k in ("input_tokens", "output_tokens", "cost", "project_name", "session_id")}
        for r in stored
    ]
    chat = {"kind": "client", "operation": "chat", "gateway": "openrouter", "project_name": "shop"}
    assert lifted == [
        chat
        | {
            "name": "chat openai/gpt-4o-mini",
            "status": "ok",
            "model": "openai/gpt-4o-mini",
            "request_model": "openai/gpt-4o-mini",
            "provider": "OpenAI",
            "input_tokens": 6,
            "output_tokens": 5,
            "cost": 1.6e-05,
            "session_id": "s1",
        },
        chat
        | {
            "name": "chat openai/gpt-oss-20b:free",
            "status": "ok",
            "model": "openai/gpt-oss-20b",
            "request_model": "openai/gpt-oss-20b:free",
            "provider": "OpenAI",
            "input_tokens": 5,
            "output_tokens": 20,
            "cost": 0.0,
            "session_id": None,
        },
        chat
        | {
            "name": "chat anthropic/claude-3.5-sonnet",
            "status": "ok",
            "model": "anthropic/claude-3.5-sonnet",
            "request_model": "anthropic/claude-3.5-sonnet",
            "provider": "Anthropic",
            "input_tokens": 6,
            "output_tokens": 5,
            "cost": 1.6e-05,
            "session_id": None,
        },
        chat
        | {
            "name": "chat sim/error-429",
            "status": "error",
            "model": "sim/error-429",
            "request_model": "sim/error-429",
            "provider": "DeepInfra",
            "input_tokens": None,
            "output_tokens": None,
            "cost": None,
            "session_id": None,
        },
    ]
    [resources] = rows(path, "resources", "id")  # one resource for every span of the process
    for row, span in zip(stored, exported, strict=True):
        assert list(_store.attributes_of(row["attributes"]).items()) == [
            (k, list(v) if isinstance(v, tuple) else v) for k, v in (span.attributes or {}).items()
        ]
        assert [e["name"] for e in _store.events_of(row["events"])] == [e.name for e in span.events]
        assert row["resource"] == f"@{resources['id']}"
        assert json.loads(resources["resource"])["service.name"] == "shop"
        assert row["duration_ms"] == pytest.approx(((span.end_time or 0) - (span.start_time or 0)) / 1e6)
    stream = stored[2]
    first_chunk = exported[2].attributes["gen_ai.response.time_to_first_chunk"]  # type: ignore[index]
    assert stream["ttft_ms"] == pytest.approx(first_chunk * 1000)
    assert [r["ttft_ms"] for r in (stored[0], stored[1], stored[3])] == [None, None, None]
    assert stored[3]["status_message"] == exported[3].status.description
    assert stored[3]["status_message"].startswith("429: Error code: 429 - ")
    assert providers.stats()["local"] == {"exported": 4, "failed": 0, "dropped": 0, "sampled_out": 0, "unencodable": 0}


def test_file_is_wal_with_indexes(local: Any, sim: GatewaySimulator) -> None:
    providers, path, _ = local
    assert not path.exists()  # opened at the first batch: a faulty store never holds up start-up
    workload(sim)
    providers.tracer_provider.force_flush()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    assert indexes == {
        "spans_start", "spans_calls", "spans_streamed", "spans_latency", "spans_priced", "logs_time", "logs_trace"
    }  # fmt: skip
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM spans WHERE trace_id = 'x'"))
    assert "sqlite_autoindex_spans_1" in plan  # the primary key (trace_id, span_id) serves trace lookups
    conn.close()


# --- the default destination ---------------------------------------------------------------------------------------


def test_default_is_local_unless_something_is_configured(tmp_path: Path) -> None:
    env = {"GATEWAY_OTEL_LOCAL_PATH": str(tmp_path / "t.db")}
    assert [d.id for d in destinations.list(environ=env)] == ["local"]
    [local] = destinations.list(environ=env)
    assert (local.endpoint, local.protocol, local.metrics_endpoint, local.logs_endpoint) == (
        str(tmp_path / "t.db"),
        "sqlite",
        None,
        str(tmp_path / "t.db"),
    )
    otlp = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert [d.id for d in destinations.list(environ=otlp)] == ["otlp"]
    traces_only = {**env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}
    assert [d.id for d in destinations.list(environ=traces_only)] == ["otlp"]
    named = {**env, "GATEWAY_OTEL_DESTINATIONS": "console"}
    assert [d.id for d in destinations.list(environ=named)] == ["console"]


def test_default_path_follows_xdg(tmp_path: Path) -> None:
    assert _store.default_path({"XDG_DATA_HOME": "/data", "HOME": "/home/u"}) == Path("/data/gateway-otel/telemetry.db")
    assert _store.default_path({"HOME": "/home/u"}) == Path("/home/u/.local/share/gateway-otel/telemetry.db")
    assert _store.store_config({"HOME": "/home/u"}).path == Path("/home/u/.local/share/gateway-otel/telemetry.db")


def test_default_destination_is_announced_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_configure, "_announced", False)
    path = tmp_path / "t.db"
    caplog.set_level(logging.WARNING, logger="gateway_otel")
    for _ in range(2):
        gateway_otel.configure(environ={"GATEWAY_OTEL_LOCAL_PATH": str(path)}, set_global=False).shutdown()
    messages = [r.getMessage() for r in caplog.records if "no destination configured" in r.getMessage()]
    assert messages == [
        f"gateway_otel: no destination configured, so telemetry is stored locally in {path} (query it with "
        "gateway_otel.Telemetry(); choose another destination with "
        "GATEWAY_OTEL_DESTINATIONS=otlp|openobserve|arize|phoenix|console, or set OTEL_EXPORTER_OTLP_ENDPOINT)"
    ]
    monkeypatch.setattr(_configure, "_announced", False)
    gateway_otel.configure("local", environ={"GATEWAY_OTEL_LOCAL_PATH": str(path)}, set_global=False).shutdown()
    named = {"GATEWAY_OTEL_LOCAL_PATH": str(path), "GATEWAY_OTEL_DESTINATIONS": "local"}
    gateway_otel.configure(environ=named, set_global=False).shutdown()
    assert len([r for r in caplog.records if "no destination configured" in r.getMessage()]) == 1


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_OTEL_", "OTEL_", "OPENOBSERVE_", "PHOENIX_", "ARIZE_"))
    }
    return {**env, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")}


def test_instrument_with_nothing_configured_stores_in_the_user_data_dir(tmp_path: Path) -> None:
    """A fresh process, no settings at all: instrument() stores locally, says where once, and the call lands."""
    script = textwrap.dedent(
        """
        import openai, gateway_otel
        from gateway_otel.simulator import GatewaySimulator, http_client
        gateway_otel.instrument()
        gateway_otel.instrument()
        client = openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="sk-or-test",
                               http_client=http_client(GatewaySimulator()))
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path / "xdg" / "gateway-otel" / "telemetry.db"
    assert done.stderr.count("no destination configured") == 1, done.stderr
    assert f"stored locally in {path} " in done.stderr
    assert [(r["name"], r["status"], r["input_tokens"]) for r in rows(path)] == [("chat openai/gpt-4o-mini", "ok", 5)]


# --- retention -----------------------------------------------------------------------------------------------------


def make_span(number: int, start_ns: int, payload: str = "") -> ReadableSpan:
    context = SpanContext(number + 1, number + 1, False, TraceFlags(1))
    attrs: dict[str, Any] = {"gen_ai.request.model": "m", "gen_ai.operation.name": "chat"}
    if payload:
        attrs["input.value"] = payload
    return ReadableSpan(
        name=f"chat m {number}",
        context=context,
        kind=SpanKind.CLIENT,
        attributes=attrs,
        start_time=start_ns,
        end_time=start_ns + 1_000_000,
        resource=Resource.create({"service.name": "retention"}),
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GATEWAY_OTEL_LOCAL_MAX_AGE", "7 days", "a positive number followed by s, m, h, d or w"),
        ("GATEWAY_OTEL_LOCAL_MAX_AGE", "-1d", "a positive number followed by s, m, h, d or w"),
        ("GATEWAY_OTEL_LOCAL_MAX_SIZE_MB", "big", "a number of megabytes greater than 0 (or off)"),
        ("GATEWAY_OTEL_LOCAL_MAX_SIZE_MB", "-5", "a number of megabytes greater than 0 (or off)"),
    ],
)
def test_bad_retention_settings_fail_at_setup(tmp_path: Path, name: str, value: str, expected: str) -> None:
    env = {"GATEWAY_OTEL_LOCAL_PATH": str(tmp_path / "t.db"), name: value}
    with pytest.raises(gateway_otel.ConfigurationError, match=rf"^{name}='{value}' is not valid: expected ") as info:
        gateway_otel.configure("local", environ=env, set_global=False)
    assert expected in str(info.value)


def test_retention_settings_are_parsed(tmp_path: Path) -> None:
    env = {"GATEWAY_OTEL_LOCAL_PATH": str(tmp_path / "t.db")}
    assert _store.store_config(env) == _store.StoreConfig(tmp_path / "t.db", 30 * 86_400.0, 500 * 1024 * 1024)
    env |= {"GATEWAY_OTEL_LOCAL_MAX_AGE": "12h", "GATEWAY_OTEL_LOCAL_MAX_SIZE_MB": "1.5"}
    assert _store.store_config(env) == _store.StoreConfig(tmp_path / "t.db", 43_200.0, 1_572_864)
    env |= {"GATEWAY_OTEL_LOCAL_MAX_AGE": "off", "GATEWAY_OTEL_LOCAL_MAX_SIZE_MB": "off"}
    assert _store.store_config(env) == _store.StoreConfig(tmp_path / "t.db", None, None)
    with pytest.raises(gateway_otel.ConfigurationError, match=r"^GATEWAY_OTEL_LOCAL_PATH=.* \(it is a directory\)$"):
        _store.store_config({"GATEWAY_OTEL_LOCAL_PATH": str(tmp_path)})


def test_unwritable_path_fails_at_setup_naming_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {"GATEWAY_OTEL_LOCAL_PATH": str(blocker / "t.db")}
    with pytest.raises(gateway_otel.ConfigurationError, match=r"^GATEWAY_OTEL_LOCAL_PATH: cannot open the local store"):
        gateway_otel.configure("local", environ=env, set_global=False)


def test_age_retention_runs_after_an_export_but_not_on_every_one(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    exporter = LocalSpanExporter(
        _store.store_config({"GATEWAY_OTEL_LOCAL_PATH": str(path), "GATEWAY_OTEL_LOCAL_MAX_AGE": "7d"})
    )
    now = time.time_ns()
    exporter.export([make_span(1, now - 8 * 24 * HOUR_NS), make_span(2, now - HOUR_NS)])
    assert [r["name"] for r in rows(path)] == ["chat m 2"]  # the first export prunes
    exporter.export([make_span(3, now - 9 * 24 * HOUR_NS)])
    assert [r["name"] for r in rows(path)] == ["chat m 3", "chat m 2"]  # not again within the interval
    exporter.store.prune_interval = 0
    exporter.export([make_span(4, now)])
    assert [r["name"] for r in rows(path)] == ["chat m 2", "chat m 4"]
    exporter.shutdown()


def test_age_retention_also_drops_old_log_records(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    conn = _store.connect(path)
    now = time.time_ns()
    rows_in = [(now - k * 24 * HOUR_NS, 17, "error", f"log {k}", None, None, None, "{}", "{}") for k in (10, 1)]
    conn.executemany(
        "INSERT INTO logs (time_ns, severity_number, severity, body, trace_id, span_id, project_name, "
        "attributes, resource) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows_in,
    )
    _store.prune(conn, _store.StoreConfig(path, 7 * 86_400.0, None))
    assert [r["body"] for r in rows(path, "logs", "time_ns")] == ["log 1"]
    conn.close()


def test_size_retention_keeps_the_newest_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    limit_mb = 1.0  # the empty schema takes ~0.2 MB of 16 KB pages
    config = _store.store_config(
        {"GATEWAY_OTEL_LOCAL_PATH": str(path), "GATEWAY_OTEL_LOCAL_MAX_SIZE_MB": str(limit_mb)}
    )
    exporter = LocalSpanExporter(config)
    exporter.store.prune_interval = 0
    now = time.time_ns()
    for batch in range(10):
        payloads = [random.Random(batch * 100 + i).randbytes(1500).hex() for i in range(100)]  # deflates to ~1.6 KB
        spans = [make_span(batch * 100 + i, now - (1000 - batch * 100 - i) * 10**9, payloads[i]) for i in range(100)]
        exporter.export(spans)
    exporter.shutdown()
    conn = sqlite3.connect(path)
    used = _store.used_bytes(conn)
    count = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    newest = conn.execute("SELECT name FROM spans ORDER BY start_ns DESC LIMIT 1").fetchone()[0]
    oldest = conn.execute("SELECT min(start_ns) FROM spans").fetchone()[0]
    conn.close()
    assert used <= limit_mb * 1024 * 1024
    assert 50 < count < 600  # far fewer than the 1000 written, but not emptied
    assert newest == "chat m 999"
    assert oldest > now - 1000 * 10**9  # the first span written is gone
    assert path.stat().st_size <= 2 * limit_mb * 1024 * 1024  # freed pages went back to the file system


# --- several processes ---------------------------------------------------------------------------------------------

WRITER = """
import sys, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags
from pathlib import Path
from gateway_otel import store as _store
from gateway_otel.store import LocalSpanExporter

path, worker, batches, size, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
exporter = LocalSpanExporter(_store.StoreConfig(Path(path), None, None))
print("ready", flush=True)
while not Path(go).exists():  # every writer starts at the same moment
    time.sleep(0.01)
resource = Resource.create({"service.name": f"worker-{worker}"})
failed = 0
for b in range(batches):
    spans = []
    for i in range(size):
        n = (worker << 32) | (b * size + i) | (1 << 60)
        now = time.time_ns()
        spans.append(ReadableSpan(name=f"w{worker}", context=SpanContext(n, n, False, TraceFlags(1)),
                                  attributes={"gen_ai.request.model": f"m{worker}"}, start_time=now,
                                  end_time=now + 1000, resource=resource))
    failed += exporter.export(spans) is not SpanExportResult.SUCCESS
exporter.shutdown()
print(failed)
"""


def test_several_processes_write_one_file_at_once(tmp_path: Path) -> None:
    path, go = tmp_path / "shared.db", tmp_path / "go"
    workers, batches, size = 4, 30, 50
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(w), str(batches), str(size), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    try:
        assert [p.stdout.readline() for p in procs] == ["ready\n"] * workers  # type: ignore[union-attr]
    finally:
        go.touch()  # also releases the others when one writer failed to start
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [(p.returncode, out.strip()) for p, (out, _) in zip(procs, outputs, strict=True)] == [(0, "0")] * workers, [
        err for _, err in outputs
    ]
    conn = sqlite3.connect(path)
    counts = dict(conn.execute("SELECT project_name, count(*) FROM spans GROUP BY project_name").fetchall())
    conn.close()
    assert counts == {f"worker-{w}": batches * size for w in range(workers)}


@pytest.mark.parametrize("fault", ["locked", "corrupt"])
def test_a_faulty_store_never_holds_up_start_up_and_its_warning_says_why(
    fault: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With no destination configured, the default store locked by another process (or a file that is not a store)
    neither blocks nor fails `configure()`; the export fails at run time, with one warning saying why."""
    path = tmp_path / "telemetry.db"
    holder = None
    if fault == "locked":
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("CREATE TABLE x (y)")
        holder.execute("BEGIN EXCLUSIVE")
    else:
        path.write_bytes(b"this is not a database\n" * 200)
    started = time.monotonic()
    providers = gateway_otel.configure(environ={"GATEWAY_OTEL_LOCAL_PATH": str(path)}, set_global=False)
    assert time.monotonic() - started < 5  # the busy timeout is 10 s: configure() never waited on the lock
    tracer = providers.tracer_provider.get_tracer("t")
    tracer.start_span("one").end()
    if fault == "corrupt":
        with caplog.at_level("WARNING", logger="gateway_otel"):
            providers.tracer_provider.force_flush()
        expected = f"the local store {path} cannot be written: it is not a SQLite file of gateway-otel"
        assert [r.getMessage() for r in caplog.records if expected in r.getMessage()], caplog.text
    if holder is not None:
        holder.execute("ROLLBACK")
        holder.close()
    providers.shutdown()


def test_two_writers_opening_a_new_store_at_once_both_open_it(tmp_path: Path) -> None:
    """The spans' and the logs' writers open the store at their first batch, which at shutdown may be the same
    instant: switching a new file to WAL is not covered by SQLite's busy timeout (it failed about 1 in 200 here)."""
    import threading

    from gateway_otel.store import StoreConfig, StoreWriter

    errors: list[str] = []
    for i in range(150):
        config = StoreConfig(tmp_path / f"s{i}.db", None, None)
        writers = [StoreWriter(config), StoreWriter(config)]

        def open_it(writer: StoreWriter) -> None:
            try:
                writer._connection()
            except sqlite3.Error as error:
                errors.append(repr(error))

        threads = [threading.Thread(target=open_it, args=(w,)) for w in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for writer in writers:
            writer.close()
    assert errors == []
