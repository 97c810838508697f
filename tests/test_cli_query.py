"""The query commands (traces, trace, metrics, stats, logs, report) end to end against the openobserve backend.

Real instrumented calls through the simulator are exported in memory, turned into OpenObserve's stored rows, and
served by the stand-in search API; the commands' output is asserted exactly where it is ours to define.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from conftest import instrument_into, make_client
from gateway_otel.cli import main as cli
from openobserve_fake import FakeOpenObserve, stored_row

TOKEN = "Basic cm9vdEBleGFtcGxlLmNvbTpTRUNSRVQtcGFzc3dvcmQtOTk="


@pytest.fixture
def oo(monkeypatch: Any) -> Iterator[FakeOpenObserve]:
    server = FakeOpenObserve()
    for name, value in {
        "OPENOBSERVE_URL": server.url,
        "OPENOBSERVE_ORG": "acme",
        "OPENOBSERVE_AUTH_TOKEN": TOKEN,
        "OPENOBSERVE_TRACES_STREAM_NAME": "llm",
        "GATEWAY_OTEL_DOTENV": "/nonexistent/.env",
    }.items():
        monkeypatch.setenv(name, value)
    yield server
    server.close()


@pytest.fixture
def rows(telemetry: Any, sim: Any) -> list[dict[str, Any]]:
    """Three calls (two under one application span, one failing) as OpenObserve would return them, newest first."""
    client = make_client(sim)
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request"):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "one"}])
        for _ in client.chat.completions.create(
            model="anthropic/claude-3.5-haiku", stream=True, messages=[{"role": "user", "content": "two"}]
        ):
            pass
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "three"}],
            extra_headers={"X-Simulator-Scenario": "error-429"},
        )
    return [stored_row(s) for s in sorted(telemetry.spans(), key=lambda s: s.start_time, reverse=True)]


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_traces_table_reads_the_latest_calls_then_each_trace(
    oo: FakeOpenObserve, rows: list[dict[str, Any]], capsys: Any
) -> None:
    """The newest calls of the model (filtered in SQL) name the traces; each trace is then read by its id."""
    calls = [r for r in rows if r.get("gen_ai_request_model") == "openai/gpt-4o-mini"]
    failing = next(r for r in rows if r["span_status"] == "ERROR")
    app = next(r for r in rows if r["operation_name"] == "handle request")
    oo.answer(calls)
    oo.answer([failing])
    oo.answer([r for r in rows if r["trace_id"] == app["trace_id"]])
    code, out, err = run(capsys, "traces", "--backend", "openobserve", "--model", "openai/gpt-4o-mini", "--since", "2h")
    assert (code, err) == (0, "")
    latest, *each = (r["body"]["query"] for r in oo.requests)
    assert latest["sql"] == (
        "SELECT * FROM \"llm\" WHERE (gen_ai_response_model = 'openai/gpt-4o-mini' OR "
        "gen_ai_request_model = 'openai/gpt-4o-mini') ORDER BY start_time DESC"
    )
    assert latest["end_time"] - latest["start_time"] == 2 * 3600 * 10**6 + 1
    assert latest["size"] == 200  # four spans per trace asked for (--limit 50)
    assert [q["sql"] for q in each] == [
        f"SELECT * FROM \"llm\" WHERE trace_id = '{t}' ORDER BY start_time DESC"
        for t in (failing["trace_id"], app["trace_id"])
    ]
    assert oo.requests[0]["headers"]["Authorization"] == TOKEN
    lines = out.splitlines()
    assert lines[0].split() == [
        "time", "(UTC)", "trace", "root", "calls", "models", "status", "latency", "tokens", "cost"
    ]  # fmt: skip
    assert len(lines) == 4
    assert lines[2].split()[1:7] == [failing["trace_id"][:12], "chat", "1", "openai/gpt-4o-mini", "error", "429"]
    assert lines[3].split()[1:5] == [app["trace_id"][:12], "handle", "request", "2"]
    assert "  openai/gpt-4o-mini, anthropic/c…  ok  " in lines[3]  # ellipsized to fit 120 columns
    assert max(len(line) for line in lines) <= 120


def test_traces_json_and_status_filter(oo: FakeOpenObserve, rows: list[dict[str, Any]], capsys: Any) -> None:
    oo.answer([rows[0]])
    oo.answer([rows[0]])
    code, out, _ = run(capsys, "traces", "--backend", "openobserve", "--status", "error", "--json", "--limit", "5")
    assert code == 0
    assert "span_status = 'ERROR'" in oo.requests[0]["body"]["query"]["sql"]
    result = json.loads(out)
    (span,) = result["spans"]  # the spans that matched, as before; the traces they make beside them
    assert (span["status"], span["model"], span["trace_id"]) == ("error", "openai/gpt-4o-mini", rows[0]["trace_id"])
    assert span["attributes"]["gen_ai_request_model"] == "openai/gpt-4o-mini"
    ((trace),) = result["traces"]
    assert (trace["trace_id"], trace["calls"], trace["status"], trace["error_types"]) == (
        rows[0]["trace_id"], 1, "error", ["429"]
    )  # fmt: skip


def test_trace_prints_the_span_tree(oo: FakeOpenObserve, rows: list[dict[str, Any]], capsys: Any) -> None:
    app = next(r for r in rows if r["operation_name"] == "handle request")
    in_trace = [r for r in rows if r["trace_id"] == app["trace_id"]]
    oo.answer(in_trace)
    code, out, _ = run(capsys, "trace", app["trace_id"].upper(), "--backend", "openobserve")
    assert code == 0
    assert f"trace_id = '{app['trace_id']}'" in oo.requests[0]["body"]["query"]["sql"]
    lines = out.splitlines()
    assert lines[0] == f"trace {app['trace_id']}"
    assert " · 3 spans · 2 LLM calls · " in lines[1] and lines[1].endswith(" · ok")
    assert lines[3].startswith("  +0 ms  handle request · ")
    assert "├─ chat openai/gpt-4o-mini · ok · " in lines[4] and " out tokens · $" in lines[4]
    assert lines[5].endswith("│     prompt  one")  # read from OpenObserve's flattened column names
    assert lines[6].startswith(" " * 9 + "│     answer  ")
    assert "└─ chat anthropic/claude-3.5-haiku · ok · " in lines[7] and " · ttft " in lines[7]
    assert lines[8].endswith("      prompt  two")
    assert len(lines) == 10


def test_trace_that_is_not_there_or_not_an_id(oo: FakeOpenObserve, capsys: Any) -> None:
    assert run(capsys, "trace", "ab" * 16, "--backend", "openobserve") == (
        1,
        "",
        f"gateway-otel: no trace {'ab' * 16} in the last 7d\n",
    )
    code, _, err = run(capsys, "trace", "xyz", "--backend", "openobserve")
    assert (code, err) == (
        2,
        "gateway-otel: ID='xyz' is not valid: expected a trace id of 32 hex digits, or its first 4 or more\n",
    )


def test_a_trace_id_prefix_is_a_like_condition(oo: FakeOpenObserve, rows: list[dict[str, Any]], capsys: Any) -> None:
    app = next(r for r in rows if r["operation_name"] == "handle request")
    oo.answer([r for r in rows if r["trace_id"] == app["trace_id"]])
    code, out, _ = run(capsys, "trace", app["trace_id"][:8].upper(), "--backend", "openobserve")
    assert (code, out.splitlines()[0]) == (0, f"trace {app['trace_id']}")
    assert f"WHERE trace_id LIKE '{app['trace_id'][:8]}%' ORDER BY" in oo.requests[0]["body"]["query"]["sql"]
    oo.answer(rows)  # two traces start so (as far as this fake knows)
    code, _, err = run(capsys, "trace", "abcd", "--backend", "openobserve")
    assert code == 2 and err.startswith("gateway-otel: trace id abcd is ambiguous: 2 traces in the last 7d start ")
    assert len(err.splitlines()) == 3


def test_metrics_series_per_model(oo: FakeOpenObserve, rows: list[dict[str, Any]], capsys: Any) -> None:
    oo.answer(rows)
    code, out, _ = run(
        capsys, "metrics", "inference_requests_total", "--backend", "openobserve", "--window", "1h", "--by-model",
        "--json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    assert result["metric"] == "inference_requests_total"
    assert {s["labels"]["model"]: s["points"][0][1] for s in result["series"]} == {
        "anthropic/claude-3.5-haiku": 1.0,
        "openai/gpt-4o-mini": 2.0,
    }
    assert oo.requests[0]["body"]["query"]["size"] == 1000  # every row: metrics page through all of them


def test_metrics_table_with_a_step(oo: FakeOpenObserve, rows: list[dict[str, Any]], capsys: Any) -> None:
    oo.answer(rows)
    code, out, _ = run(capsys, "metrics", "error_rate", "--backend", "openobserve", "--window", "2h", "--step", "1h")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("error_rate (%, per 1h), ")
    assert lines[1].split() == ["until", "(UTC)", "all"]
    assert len(lines) == 5
    assert lines[3].endswith("  -") and lines[4].endswith("  33.3 %")  # no calls, then one failure in three


def test_bad_metric_parameters_fail_before_any_query(oo: FakeOpenObserve, capsys: Any) -> None:
    code, _, err = run(capsys, "metrics", "latency", "--backend", "openobserve")
    assert code == 2 and err.startswith("gateway-otel: metric='latency' is not a known metric: expected one of ")
    code, _, err = run(capsys, "metrics", "inference_latency", "--percentile", "95", "--backend", "openobserve")
    assert (code, err) == (2, "gateway-otel: percentile=95.0 is not valid: expected a number from 0 to 1 (e.g. 0.95)\n")
    code, _, err = run(capsys, "metrics", "cost", "--step", "soon", "--backend", "openobserve")
    assert (code, err) == (
        2,
        "gateway-otel: --step='soon' is not valid: expected a positive number followed by s, m, h, d or w, "
        "such as 5m, 1h, 24h or 7d\n",
    )
    code, _, err = run(capsys, "stats", "--window", "0h", "--backend", "openobserve")
    assert code == 2 and "--window='0h' is not valid" in err
    assert oo.requests == []


def test_stats_table_and_json(oo: FakeOpenObserve, rows: list[dict[str, Any]], capsys: Any) -> None:
    oo.answer(rows)
    code, out, _ = run(capsys, "stats", "--backend", "openobserve")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["model", "calls", "errors", "input", "tok", "output", "tok", "cost", "p50", "ms",
                                "p95", "ms", "p50", "ttft", "ms"]  # fmt: skip
    assert [line.split()[:3] for line in lines[2:]] == [
        ["openai/gpt-4o-mini", "2", "1"],
        ["anthropic/claude-3.5-haiku", "1", "0"],
        ["all", "3", "1"],
    ]
    oo.answer(rows)
    code, out, _ = run(capsys, "stats", "--backend", "openobserve", "--json")
    stats = json.loads(out)
    assert [m["model"] for m in stats["models"]] == ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"]
    mini = [r for r in rows if r.get("gen_ai_request_model") == "openai/gpt-4o-mini"]
    assert stats["models"][0]["input_tokens"] == sum(r.get("gen_ai_usage_input_tokens", 0) for r in mini)
    assert stats["total"]["calls"] == 3


def test_logs_table(oo: FakeOpenObserve, capsys: Any) -> None:
    oo.answer(
        [{"_timestamp": 1740830460000000, "body": "chat m failed:\n429", "severity": "ERROR", "trace_id": "ab" * 16}]
    )
    code, out, _ = run(capsys, "logs", "--backend", "openobserve", "--severity", "error")
    assert code == 0
    assert oo.requests[0]["path"] == "/api/acme/_search?type=logs"
    assert out.splitlines()[2].split() == ["03-01", "12:01:00", "error", "ab" * 6, "chat", "m", "failed:", "429"]


def test_report_writes_the_page(oo: FakeOpenObserve, rows: list[dict[str, Any]], capsys: Any, tmp_path: Any) -> None:
    oo.answer(rows)
    target = tmp_path / "report.html"
    code, out, _ = run(capsys, "report", "--html", str(target), "--backend", "openobserve", "--window", "1h")
    assert (code, out) == (0, f"wrote {target} (3 calls, last 1h)\n")
    page = target.read_text()
    assert page.count('<svg class="chart"') == 3
    assert 'data-model="anthropic/claude-3.5-haiku"' in page and 'data-model="openai/gpt-4o-mini"' in page


def test_a_backend_failure_is_one_line_without_credentials(oo: FakeOpenObserve, capsys: Any) -> None:
    oo.answers.append((401, {"code": 401, "message": "Unauthorized"}))
    code, out, err = run(capsys, "stats", "--backend", "openobserve")
    assert (code, out) == (1, "")
    assert err == (
        f"gateway-otel: OpenObserve refused the query (401 at {oo.url}/api/acme/_search): check OPENOBSERVE_AUTH_TOKEN "
        "(or OPENOBSERVE_EMAIL / OPENOBSERVE_PASSWORD) and OPENOBSERVE_ORG\n"
    )


def test_an_unconfigured_backend_names_the_variable(monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.delenv("OPENOBSERVE_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("GATEWAY_OTEL_DOTENV", "/nonexistent/.env")
    code, _, err = run(capsys, "traces", "--backend", "openobserve")
    assert code == 2
    assert err.startswith("gateway-otel: the openobserve backend is not configured: OPENOBSERVE_AUTH_TOKEN is not set")


def test_the_default_backend_is_the_local_store(monkeypatch: Any, capsys: Any, tmp_path: Any, sim: Any) -> None:
    """Real calls into the local SQLite store, then the commands without --backend read them back."""
    import gateway_otel

    store = tmp_path / "store.db"
    monkeypatch.setenv("GATEWAY_OTEL_LOCAL_PATH", str(store))
    monkeypatch.setenv("GATEWAY_OTEL_DOTENV", "/nonexistent/.env")
    providers = gateway_otel.configure("local", environ={"GATEWAY_OTEL_LOCAL_PATH": str(store)}, set_global=False)
    instrument_into(providers)
    try:
        client = make_client(sim)
        replies = [
            client.chat.completions.create(model=m, messages=[{"role": "user", "content": "hi"}])
            for m in ("openai/gpt-4o-mini", "openai/gpt-4o-mini", "mistralai/mistral-small")
        ]
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="sim/error-429", messages=[{"role": "user", "content": "x"}])
    finally:
        gateway_otel.uninstrument()
        providers.shutdown()

    code, out, _ = run(capsys, "stats", "--json")
    assert code == 0
    stats = json.loads(out)
    assert stats["total"]["calls"] == 4 and stats["total"]["errors"] == 1
    assert stats["models"][0]["model"] == replies[0].model and stats["models"][0]["calls"] == 2
    assert stats["total"]["cost"] == pytest.approx(sum(r.usage.cost for r in replies))

    code, out, _ = run(capsys, "traces", "--status", "error")
    assert code == 0 and len(out.splitlines()) == 3 and " error " in out.splitlines()[2]
    code, out, _ = run(capsys, "logs", "--severity", "error", "--json")
    (record,) = json.loads(out)["records"]
    assert record["severity"] == "error" and record["trace_id"]
    code, out, _ = run(capsys, "metrics", "inference_requests_total", "--json")
    assert json.loads(out)["series"][0]["points"][0][1] == 4


def test_progress_on_a_terminal_only(
    oo: FakeOpenObserve, rows: list[dict[str, Any]], capsys: Any, monkeypatch: Any
) -> None:
    import io
    import sys

    from gateway_otel.query import _openobserve

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(_openobserve, "PAGE_SIZE", 2)
    oo.answer(rows[:2])
    oo.answer(rows[2:])
    terminal, captured = Terminal(), sys.stderr
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli(["stats", "--backend", "openobserve"]) == 0
    assert terminal.getvalue() == "\rfetched 2 rows…\rfetched 4 rows…\n"
    monkeypatch.setattr(sys, "stderr", captured)
    oo.answer(rows)
    code, _, err = run(capsys, "stats", "--backend", "openobserve")  # not a terminal: nothing on stderr
    assert (code, err) == (0, "")


@pytest.mark.parametrize("argv", [["traces", "--json"], ["stats"], ["destinations", "list", "--json"]])
def test_a_reader_that_stops_early_ends_the_command_quietly(argv: list[str], tmp_path: Any) -> None:
    """`gateway-otel traces --json | head`: the pipe closes before the output is written; no traceback, no
    "Broken pipe" error line, exit 0 (the read end is closed before the command starts, so this is deterministic)."""
    import os
    import subprocess
    import sys

    import gateway_otel

    store = tmp_path / "t.db"
    providers = gateway_otel.configure("local", environ={"GATEWAY_OTEL_LOCAL_PATH": str(store)}, set_global=False)
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "openai/gpt-4o-mini"}
    with providers.tracer_provider.get_tracer("t").start_as_current_span(
        "chat openai/gpt-4o-mini", attributes=attributes
    ):
        pass
    providers.shutdown()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_OTEL_", "OTEL_"))}
    env.update(GATEWAY_OTEL_LOCAL_PATH=str(store), GATEWAY_OTEL_DESTINATIONS="console")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gateway_otel.cli", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")
