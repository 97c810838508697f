"""What `traces`, `trace`, `metrics` and `logs` print, exactly, over a small local store of spans at fixed times;
trace ids opened by a prefix, as git opens commits; and the units and widths of the tables."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from gateway_otel.cli import _render, _views
from gateway_otel.cli import main as cli
from gateway_otel.query import MetricSeries, MetricsResult, SpanRow, Telemetry
from gateway_otel.query import _client as client_module
from gateway_otel.query._local_store import LocalBackend
from gateway_otel.query._trace_summary import summarize
from gateway_otel.store import StoreConfig
from gateway_otel.store._writer import StoreWriter

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(minutes=30)
AGENT = 0x4C4189E6_0000_0000_0000_0000_0000_00A1
FAILED = 0xABCD1234_5000_0000_0000_0000_0000_0001
REPLY = 0xABCD1234_6000_0000_0000_0000_0000_0002
PROBE = 0x11110000_0000_0000_0000_0000_0000_0003


def messages(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in pairs])


def llm(model: str, **attributes: Any) -> dict[str, Any]:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.response.model": model} | attributes


def span(
    trace: int, number: int, name: str, at_ms: float, ms: float, attributes: dict[str, Any], parent: int | None = None,
    status: Status | None = None,
) -> ReadableSpan:  # fmt: skip
    start = int((T0.timestamp() * 1000 + at_ms) * 1_000_000)
    return ReadableSpan(
        name=name,
        context=SpanContext(trace, number, False, TraceFlags(1)),
        parent=None if parent is None else SpanContext(trace, parent, False, TraceFlags(1)),
        kind=SpanKind.CLIENT if "gen_ai.operation.name" in attributes else SpanKind.INTERNAL,
        attributes=attributes,
        status=status or Status(StatusCode.UNSET),
        start_time=start,
        end_time=start + int(ms * 1_000_000),
        resource=Resource.create({"service.name": "shop"}),
    )


SPANS = [
    span(AGENT, 1, "handle request", 0, 1520, {}),
    span(AGENT, 2, "chat openai/gpt-4o-mini", 10, 480.4, llm(
        "openai/gpt-4o-mini", **{
            "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 30, "gen_ai.usage.cost": 0.000021,
            "gateway.upstream.provider": "OpenAI",
            "gen_ai.input.messages": messages(("system", "Be brief."), ("user", "What is\nOpenTelemetry?")),
            "gen_ai.output.messages": messages(("assistant", "A standard \x1b[31mfor traces,\tmetrics and logs.")),
        }), parent=1, status=Status(StatusCode.OK)),
    span(AGENT, 3, "lookup", 500, 1010, {}, parent=1),
    span(AGENT, 4, "chat anthropic/claude-3.5-haiku", 505, 1004.6, llm(
        "anthropic/claude-3.5-haiku", **{
            "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 40, "gen_ai.usage.cost": 0.00142,
            "gen_ai.response.time_to_first_chunk": 0.1204, "gateway.upstream.provider": "Anthropic",
            "gen_ai.input.messages": messages(("user", "x" * 300)),
        }), parent=3, status=Status(StatusCode.OK)),
    span(FAILED, 5, "chat openai/gpt-4o-mini", 120_000, 48, llm(
        "openai/gpt-4o-mini", **{"error.type": "429", "gateway.upstream.provider": "OpenAI"}),
        status=Status(StatusCode.ERROR, "429: Error code: 429 - Provider returned error")),
    span(REPLY, 6, "chat deepseek/deepseek-r1", 180_000, 2345, llm(
        "deepseek/deepseek-r1", **{"gen_ai.usage.input_tokens": 13, "gen_ai.usage.output_tokens": 28,
                                   "gen_ai.usage.cost": 0.000069, "gen_ai.input.messages": "[{not json"}),
        status=Status(StatusCode.OK)),
    span(PROBE, 7, "gateway-otel probe", 240_000, 0.2, {"gateway_otel.probe": True}),
]  # fmt: skip


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The spans above in a local store, read by the commands as if it were `NOW`."""
    path = tmp_path / "views.db"
    writer = StoreWriter(StoreConfig(path, None, None))
    writer.write_spans(SPANS)
    writer.close()
    monkeypatch.setenv("GATEWAY_OTEL_LOCAL_PATH", str(path))
    monkeypatch.setenv("GATEWAY_OTEL_DOTENV", "/nonexistent/.env")
    monkeypatch.setattr(client_module, "_now", lambda: NOW)
    return path


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- traces ----------------------------------------------------------------------------------------------------------

TRACES = """\
time (UTC)      trace         root                calls  models                    status     latency  tokens       cost
--------------  ------------  ------------------  -----  ------------------------  ---------  -------  ------  ---------
03-01 12:04:00  111100000000  gateway-otel probe      0  -                         ok          0.2 ms       -          -
03-01 12:03:00  abcd12346000  chat                    1  deepseek/deepseek-r1      ok          2.35 s      41  $0.000069
03-01 12:02:00  abcd12345000  chat                    1  openai/gpt-4o-mini        error 429    48 ms       -          -
03-01 12:00:00  4c4189e60000  handle request          2  openai/gpt-4o-mini, ant…  ok          1.52 s   1,282   $0.00144
"""


def test_traces_one_row_per_trace_newest_first(store: Path, capsys: Any) -> None:
    code, out, err = run(capsys, "traces")
    assert (code, err) == (0, "")
    assert out == TRACES
    assert max(len(line) for line in out.splitlines()) == 120  # the models column ellipsized to fit


def test_limit_counts_traces_and_filters_pick_traces_by_their_calls(store: Path, capsys: Any) -> None:
    rows = TRACES.splitlines()
    _, out, _ = run(capsys, "traces", "--limit", "2")
    assert [line.split()[2] for line in out.splitlines()[2:]] == ["111100000000", "abcd12346000"]
    _, out, _ = run(capsys, "traces", "--status", "error")
    assert [line.split()[2] for line in out.splitlines()[2:]] == ["abcd12345000"]
    assert out.splitlines()[2].split()[-6:] == rows[4].split()[-6:] == ["error", "429", "48", "ms", "-", "-"]
    _, out, _ = run(capsys, "traces", "--model", "anthropic/claude-3.5-haiku")
    assert [line.split()[2] for line in out.splitlines()[2:]] == ["4c4189e60000"]  # the trace, with both its calls
    assert "  openai/gpt-4o-mini, anthropic/c" in out


def test_a_trace_of_many_spans_does_not_hide_the_ones_before_it(store: Path, capsys: Any) -> None:
    """Four spans per trace are read first; a trace with more makes the command read more, not list fewer."""
    busy = 0xB0B0_0000_0000_0000_0000_0000_0000_0001
    writer = StoreWriter(StoreConfig(store, None, None))
    writer.write_spans([span(busy, 100, "agent", 290_000, 9000, {})] + [
        span(busy, 101 + i, "chat m", 291_000 + i, 5, llm("m"), parent=100) for i in range(12)
    ])  # fmt: skip
    writer.close()
    _, out, _ = run(capsys, "traces", "--limit", "3")
    lines = out.splitlines()
    assert [line.split()[2] for line in lines[2:]] == ["b0b000000000", "111100000000", "abcd12346000"]
    assert lines[2].split()[3:6] == ["agent", "12", "m"]


def test_traces_json_keeps_the_matching_spans_and_adds_their_traces(store: Path, capsys: Any) -> None:
    code, out, _ = run(capsys, "traces", "--model", "anthropic/claude-3.5-haiku", "--json")
    result = json.loads(out)
    assert code == 0 and [s["span_id"] for s in result["spans"]] == ["0000000000000004"]
    assert result["spans"][0]["attributes"]["gateway.upstream.provider"] == "Anthropic"
    assert result["traces"] == [
        {
            "trace_id": format(AGENT, "032x"),
            "start_time": "2025-03-01T12:00:00+00:00",
            "duration_ms": 1520.0,
            "root": "handle request",
            "spans": 4,
            "calls": 2,
            "models": ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"],
            "status": "ok",
            "errors": 0,
            "error_types": [],
            "input_tokens": 1212,
            "output_tokens": 70,
            "total_tokens": 1282,
            "cost": pytest.approx(0.001441),
            "cost_sources": {"costed_calls": 2, "priced_calls": 0, "priced_cost": 0.0, "source": "gateway"},
        }
    ]
    _, out, _ = run(capsys, "traces", "--limit", "1", "--json")
    assert [s["name"] for s in json.loads(out)["spans"]] == ["gateway-otel probe"]  # every span of the trace


def summary_of(*rows: SpanRow) -> Any:
    (only,) = summarize(rows)
    return only


def row(trace: str, name: str, **fields: Any) -> SpanRow:
    start = fields.pop("start", T0)
    duration_ms = fields.pop("duration_ms", 1234.5)
    return SpanRow(
        trace_id=trace, span_id=fields.pop("span_id", "00000000000000aa"), parent_span_id=fields.pop("parent", None),
        name=name, start_time=start, end_time=start + timedelta(milliseconds=duration_ms), duration_ms=duration_ms,
        status=fields.pop("status", "ok"), **fields,
    )  # fmt: skip


def test_the_traces_table_fits_120_columns_whatever_the_names() -> None:
    long = "a-very-long-provider-name/an-even-longer-model-name-with-a-date-2025-03-01-preview"
    traces = [
        summary_of(
            row("f" * 32, "a root span with a name much longer than any column would want to show", operation=None),
            row("f" * 32, f"chat {long}", operation="chat", model=long, span_id="b" * 16, parent="00000000000000aa",
                status="error", attributes={"error.type": "openai.APITimeoutError-with-a-long-suffix"},
                input_tokens=123456, output_tokens=654321, cost=1234.5678),
            row("f" * 32, "chat x", operation="chat", model=long + "-2", span_id="c" * 16, parent="00000000000000aa"),
        )
    ]  # fmt: skip
    text = _views.traces_table(traces, today=T0.date())
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert lines[2] == (
        "12:00:00    ffffffffffff  a root span with …      2  a-very-long-provi…  error openai.APIT…   1.23 s  "
        "777,777  $1,234.57"
    )  # today: the time of day only; the names ellipsized; numbers right-aligned with their units


def test_listed_ids_get_longer_only_when_two_share_their_first_digits() -> None:
    assert _views.short_ids(["ab" * 16, "cd" * 16]) == 12
    assert _views.short_ids(["a" * 14 + "0" * 18, "a" * 14 + "1" * 18]) == 15


# --- trace -----------------------------------------------------------------------------------------------------------

TREE = """\
trace 4c4189e60000000000000000000000a1
2025-03-01 12:00:00 UTC · 4 spans · 2 LLM calls · 1.52 s · 1,282 tokens · $0.00144 · ok

  +0 ms  handle request · 1.52 s
 +10 ms  ├─ chat openai/gpt-4o-mini · ok · 480 ms · 12 in / 30 out tokens · $0.000021 · OpenAI
         │     prompt  What is OpenTelemetry?
         │     answer  A standard for traces, metrics and logs.
+500 ms  └─ lookup · 1.01 s
+505 ms     └─ chat anthropic/claude-3.5-haiku · ok · 1.00 s · ttft 120 ms · 1,200 in / 40 out tokens · $0.00142 · \
Anthropic
                  prompt  """ + "x" * 99 + """…
"""


def test_trace_is_a_tree_with_each_call_s_figures_and_excerpts(store: Path, capsys: Any) -> None:
    code, out, err = run(capsys, "trace", format(AGENT, "032x"))
    assert (code, out, err) == (0, TREE, "")


@pytest.mark.parametrize("given", ["abcd12345", "ABCD12345", "0xabcd12345000", format(FAILED, "032X")])
def test_a_unique_prefix_opens_its_trace(store: Path, capsys: Any, given: str) -> None:
    code, out, err = run(capsys, "trace", given)
    assert (code, err) == (0, "")
    assert out == (
        f"trace {FAILED:032x}\n"
        "2025-03-01 12:02:00 UTC · 1 span · 1 LLM call · 48 ms · error 429\n"
        "\n"
        "+0 ms  chat openai/gpt-4o-mini · error 429 · 48 ms · OpenAI\n"
        "          error   429: Error code: 429 - Provider returned error\n"
    )  # no content was recorded (privacy mode): no prompt, no answer


def test_an_ambiguous_prefix_lists_the_traces_it_starts(store: Path, capsys: Any) -> None:
    assert run(capsys, "trace", "abcd") == (
        2,
        "",
        "gateway-otel: trace id abcd is ambiguous: 2 traces in the last 7d start with it\n"
        f"  {REPLY:032x}  2025-03-01 12:03:00  chat deepseek/deepseek-r1\n"
        f"  {FAILED:032x}  2025-03-01 12:02:00  chat openai/gpt-4o-mini\n",
    )


def test_too_short_unknown_or_not_an_id(store: Path, capsys: Any) -> None:
    assert run(capsys, "trace", "abc") == (
        2, "", "gateway-otel: ID='abc' is too short: give at least 4 hex digits of the trace id\n"
    )  # fmt: skip
    assert run(capsys, "trace", "ffff") == (1, "", "gateway-otel: no trace whose id starts with ffff in the last 7d\n")
    assert run(capsys, "trace", "f" * 32) == (1, "", f"gateway-otel: no trace {'f' * 32} in the last 7d\n")
    assert run(capsys, "trace", "abcd-1234") == (
        2,
        "",
        "gateway-otel: ID='abcd-1234' is not valid: expected a trace id of 32 hex digits, or its first 4 or more\n",
    )
    assert run(capsys, "trace", "a" * 33)[0] == 2


def test_a_prefix_reads_a_range_of_the_trace_id_index(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a scan of the window: SQLite answers from the primary key's index (trace_id first)."""
    seen: list[tuple[str, list[Any]]] = []
    read = LocalBackend._rows

    def rows(self: LocalBackend, sql: str, params: list[Any], *convert: Any) -> Any:
        seen.append((sql, params))
        return read(self, sql, params, *convert)

    monkeypatch.setattr(LocalBackend, "_rows", rows)
    with Telemetry("local", path=store) as telemetry:
        assert telemetry.traces.query(trace_id="ABCD1234", time_window="7d").trace_ids() == [
            format(REPLY, "032x"), format(FAILED, "032x")
        ]  # fmt: skip
    ((sql, params),) = seen
    conn = sqlite3.connect(store)
    plan = " ".join(r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    conn.close()
    assert "USING INDEX sqlite_autoindex_spans_1 (trace_id>? AND trace_id<?)" in plan, plan
    assert params[2:4] == ["abcd1234", "abcd1234g"]


def test_excerpts_read_every_spelling_and_survive_anything(store: Path) -> None:
    """OpenObserve's flattened names; OpenInference's flattened messages when the JSON was cut; odd shapes."""
    flattened = {
        "gen_ai_input_messages": messages(("user", "Flattened question")),
        "gen_ai_output_messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "tool_call", "name": "get_weather", "arguments": '{"city":"Paris"}'}]}]),
    }  # fmt: skip
    cut = {
        "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"abc…[truncated 9 chars]',
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "From OpenInference",
        "gen_ai.output.messages": json.dumps({"not": "a list"}),
    }
    odd = {"gen_ai.input.messages": json.dumps([1, None, {"role": "user", "parts": [None, {"type": "text"}]}])}
    lines = [
        _views.trace_tree([row("e" * 32, "chat m", operation="chat", model="m", attributes=a)]).splitlines()[3:]
        for a in (flattened, cut, odd, {})
    ]
    assert lines[0] == [
        "+0 ms  chat m · ok · 1.23 s",
        "          prompt  Flattened question",
        '          answer  calls get_weather({"city":"Paris"})',
    ]
    assert lines[1][1:] == ["          prompt  From OpenInference"]
    assert lines[2] == lines[3] == ["+0 ms  chat m · ok · 1.23 s"]


# --- metrics ---------------------------------------------------------------------------------------------------------


def test_metrics_with_units_and_a_pivot_by_model(store: Path, capsys: Any) -> None:
    code, out, _ = run(capsys, "metrics", "cost", "--window", "1h", "--by-model", "--step", "20m")
    assert (code, out) == (0, """\
cost (USD, per 20m), 2025-03-01 11:30:00 to 2025-03-01 12:30:00 UTC
until (UTC)  anthropic/claude-3.5-haiku  deepseek/deepseek-r1  openai/gpt-4o-mini
-----------  --------------------------  --------------------  ------------------
11:50:00                             $0                    $0                  $0
12:10:00                       $0.00142             $0.000069           $0.000021
12:30:00                             $0                    $0                  $0
""")  # fmt: skip
    assert run(capsys, "metrics", "error_rate", "--window", "1h")[1].splitlines()[1] == "25.0 %"
    _, out, _ = run(capsys, "metrics", "inference_latency", "--window", "1h", "--by-model")
    assert out.splitlines() == [
        "inference_latency (ms, p95), 2025-03-01 11:30:00 to 2025-03-01 12:30:00 UTC",
        "model                       inference_latency",
        "--------------------------  -----------------",
        "anthropic/claude-3.5-haiku             1.00 s",
        "deepseek/deepseek-r1                   2.35 s",
        "openai/gpt-4o-mini                     459 ms",
    ]
    assert run(capsys, "metrics", "token_consumption", "--window", "1h")[1].splitlines()[1] == "1,323"


def test_many_models_make_side_by_side_tables_that_fit_and_days_show_dates() -> None:
    start = datetime(2025, 3, 1, 22, 0, tzinfo=timezone.utc)
    stamps = [start + timedelta(hours=h) for h in (1, 2, 3)]
    series = tuple(
        MetricSeries({"model": f"provider-{i}/model-with-a-long-name-{i}"}, tuple((t, 1234.5 * i) for t in stamps))
        for i in range(9)
    )
    result = MetricsResult("inference_latency", start, stamps[-1], 3600.0, 0.5, series)
    text = _views.metrics_text(result, "ms")
    assert max(len(line) for line in text.splitlines()) <= 120
    tables = text.split("\n\n")
    assert [len(t.splitlines()) for t in tables] == [6, 5, 5]  # 4 + 4 + 1 models; the title above the first
    assert tables[0].splitlines()[:4] == [
        "inference_latency (ms, p50, per 1h), 2025-03-01 22:00:00 to 2025-03-02 01:00:00 UTC",
        "until (UTC)     provider-0…ng-name-0  provider-1…ng-name-1  provider-2…ng-name-2  provider-3…ng-name-3",
        "--------------  --------------------  --------------------  --------------------  --------------------",
        "03-01 23:00:00                0.0 ms                1.23 s                2.47 s                3.70 s",
    ]  # the range crosses days: dates shown
    assert tables[2].splitlines()[-1] == "03-02 01:00:00                9.88 s"


def test_every_metric_has_a_unit_the_views_print() -> None:
    from gateway_otel.query import METRIC_PRESETS
    from gateway_otel.query._metrics import METRIC_UNITS

    assert set(METRIC_UNITS) == set(METRIC_PRESETS)
    assert set(METRIC_UNITS.values()) <= set(_views._FORMATS)


@pytest.mark.parametrize(
    ("show", "value", "text"),
    [
        (_render.money, 0.00017804, "$0.000178"),
        (_render.money, 0.000069, "$0.000069"),
        (_render.money, 0.0442, "$0.0442"),
        (_render.money, 0.5, "$0.50"),
        (_render.money, 0.9999, "$1.00"),
        (_render.money, 1234.567, "$1,234.57"),
        (_render.money, 0.0, "$0"),
        (_render.duration, 109.998, "110 ms"),
        (_render.duration, 3.44, "3.4 ms"),
        (_render.duration, 999.6, "1.00 s"),
        (_render.duration, 12_345, "12.3 s"),
        (_render.duration, 1_234_567, "1,235 s"),
        (_render.percent, 0.230769, "23.1 %"),
        (_render.count, 1_234_567.0, "1,234,567"),
        (_render.count, None, "-"),
    ],
)
def test_units_and_rounding(show: Any, value: Any, text: str) -> None:
    assert show(value) == text


def test_cells_are_one_clean_line_and_shrink_with_an_ellipsis() -> None:
    assert _render.one_line("a\n\tb \x1b[31mred\x1b[0m\u202e\x07c") == "a b red c"
    assert _render.ellipsize("anthropic/claude-3.5-haiku", 12, middle=True) == "anthro…haiku"
    assert _render.table([("x" * 30, 7)], ("name", "n"), align="lr", max_width=15, shrink=(0,)) == (
        "name          n\n------------  -\nxxxxxxxxxxx…  7"
    )


# --- logs ------------------------------------------------------------------------------------------------------------


def test_logs_table_prints_ids_that_open(store: Path, capsys: Any) -> None:
    from gateway_otel.query import LogRow

    records = [
        LogRow(T0, "error", "chat m failed:\n" + "429 " * 40, trace_id=format(FAILED, "032x")),
        LogRow(T0 - timedelta(days=1), "warning", "slow"),
    ]
    lines = _views.logs_table(records, today=date(2025, 3, 1)).splitlines()
    assert lines[:2] == [
        "time (UTC)      severity  trace         message",
        "--------------  --------  ------------  " + "-" * 80,
    ]
    assert lines[2] == "03-01 12:00:00  error     abcd12345000  chat m failed: " + "429 " * 16 + "…"  # 120 wide
    assert lines[3] == "02-28 12:00:00  warning   -             slow"
    assert run(capsys, "trace", lines[2].split()[3])[0] == 0
