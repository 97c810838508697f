"""The HTML report: self-contained, with the right series, headline totals and failures, and really rendered by
headless Chromium at 1400 px (a screenshot and the laid-out DOM).

tests/run.sh installs Debian's chromium when /usr/bin/chromium is missing. The Chromium tests are skipped only when
`GATEWAY_OTEL_SKIP_CHROMIUM=1` (run.sh sets it for the second and third openai majors: the page does not depend on
openai); a missing browser otherwise fails them.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from datetime import datetime, timedelta, timezone
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openai
import pytest

from conftest import make_client
from gateway_otel.cli import main as cli
from gateway_otel.query._charts import (
    AXIS_FORMATS,
    default_step,
    fit_range,
    tick_labels,
    time_ticks,
    usd,
    value_ticks,
)
from gateway_otel.query._model import SpanRow
from gateway_otel.query._report import FAILURES_SHOWN, error_parts, percent, render_report

CHROMIUM = "/usr/bin/chromium"
T0 = datetime(2025, 5, 1, 8, 0, tzinfo=timezone.utc)
END = T0 + timedelta(hours=4)
A, B = "openai/gpt-4o-mini", "anthropic/claude-3.5-haiku<&>"
NOW = datetime(2025, 5, 3, 14, 7, 30, tzinfo=timezone.utc)
LONG = "acme-research/a-very-long-experimental-model-name-for-the-report-v2.1"  # 70 characters
EVIL = '<script>document.body.setAttribute("data-pwned", "yes")</script>'  # a model whose every call failed
SIX = ("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "google/gemini-2.0-flash", "mistralai/mistral-small",
       LONG, EVIL)  # fmt: skip
CARD = re.compile(
    r'data-key="(\w+)" data-value="([^"]*)"><div class="label">[^<]*</div><div class="value(?: long)?" title="[^"]*">'
    r'([^<]*)</div><div class="sub">(.*?)</div></div>'
)


def row(minute: float, model: str, duration_ms: float, **fields: Any) -> SpanRow:
    start = T0 + timedelta(minutes=minute)
    return SpanRow(
        trace_id=fields.pop("trace_id", f"{int(minute):032x}"),
        span_id=f"{int(minute):016x}",
        parent_span_id=None,
        name=f"chat {model}",
        start_time=start,
        end_time=start + timedelta(milliseconds=duration_ms),
        duration_ms=duration_ms,
        status=fields.pop("status", "ok"),
        operation="chat",
        model=model,
        **fields,
    )


ROWS = [
    row(10, A, 120, input_tokens=10, output_tokens=20, cost=0.001),
    row(70, A, 180, input_tokens=30, output_tokens=40, cost=0.003),
    row(75, B, 900, input_tokens=100, output_tokens=5, cost=0.02, status="error", status_message="429: slow <down>"),
    row(200, A, 150, input_tokens=5, output_tokens=5, cost=0.0005),
]


def workload(span: timedelta, models: tuple[str, ...], calls: int = 120) -> list[SpanRow]:
    """`calls` calls spread evenly over the `span` before NOW, round-robin over `models`: EVIL's calls all fail
    (no tokens, no cost), one in 17 of the others times out, every other call is streamed."""
    rows = []
    for i in range(calls):
        model = models[i % len(models)]
        start = NOW - span + span * (i + 0.5) / calls
        duration = 300.0 + (i * 53) % 900
        failed, tokens = model == EVIL or i % 17 == 0, model != EVIL
        message = f"429: Error code: 429 - {EVIL}" if model == EVIL else "openai.APITimeoutError: Request timed out."
        rows.append(SpanRow(
            trace_id=f"{(i + 1) * 0x9E3779B97F4A7C15F39CC0605CEDC835 % (1 << 128):032x}",
            span_id=f"{i + 1:016x}", parent_span_id=None, name=f"chat {model}", start_time=start,
            end_time=start + timedelta(milliseconds=duration), duration_ms=duration,
            status="error" if failed else "ok", status_message=message if failed else None, operation="chat",
            model=model, input_tokens=20 + (i * 37) % 500 if tokens else None,
            output_tokens=5 + (i * 13) % 200 if tokens else None, cost=(i % 7 + 1) * 1e-4 if tokens else None,
            time_to_first_token_ms=duration / 4 if i % 2 and not failed else None,
        ))  # fmt: skip
    return rows


class Page(HTMLParser):
    """What the tests read from a page: charts and their series, legends, tick labels, attributes of body, the
    failures' rows, the cut names and every external reference."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.charts: list[dict[str, Any]] = []
        self.body: dict[str, str] = {}
        self.external: list[str] = []
        self.tags: list[str] = []
        self.names: dict[str, str] = {}  # full name (tooltip) -> data-cut
        self.failures: list[list[str]] = []
        self._text: list[str] | None = None  # where text goes now
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        css = values.get("class", "")
        self.tags.append(tag)
        for name in ("src", "href", "xlink:href"):
            if name in values:
                self.external.append(values[name])
        if "url(" in values.get("style", ""):
            self.external.append(values["style"])
        if tag == "body":
            self.body = values
        elif tag == "svg" and "chart" in css:
            self.charts.append({**values, "series": {}, "legend": [], "xticks": [], "yticks": []})
        elif tag == "g" and css == "series":
            self.charts[-1]["series"][values["data-model"]] = int(values["data-points"])
        elif tag == "span" and css == "name":
            self.names.setdefault(values["title"], values.get("data-cut", ""))
        elif tag == "tr" and css == "failure":
            self.failures.append([])
        elif tag == "td" and self.failures and len(self.failures[-1]) < 5:
            self.failures[-1].append("")
        elif tag == "text" and css in ("xtick", "ytick") and self.charts:
            self.charts[-1][css + "s"].append("")
            self._text = self.charts[-1][css + "s"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "text":
            self._text = None
        elif tag == "tbody":
            self.failures = [f for f in self.failures if f]

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text[-1] += data if not self._text[-1] else " " + data
        elif self.failures and self.failures[-1] and self.lasttag in ("td", "span", "b", "code"):
            self.failures[-1][-1] += data


def cards(html: str) -> dict[str, tuple[str, str, str]]:
    """Each headline number: key -> (exact value, shown text, the line under it)."""
    return {key: (value, text, sub) for key, value, text, sub in CARD.findall(html)}


def legends(html: str) -> list[list[str]]:
    """The model names in each chart's legend, in order."""
    return [[unescape(n) for n in re.findall(r'<span class="name" title="([^"]*)"', legend)] for legend in re.findall(
        r'<div class="legend">(.*?)</div>', html)]  # fmt: skip


# --- the page, read as text ------------------------------------------------------------------------------------------


def test_the_page_has_one_chart_per_measure_with_a_series_per_model() -> None:
    page = Page(render_report(ROWS, start=T0, end=END, step_seconds=3600))
    assert [c["data-metric"] for c in page.charts] == ["cost", "token_consumption", "inference_latency"]
    cost, tokens, latency = (c["series"] for c in page.charts)
    # The calls run 08:10 to 11:20: four hourly buckets from 08:00. Sums have a point in every bucket (0 where a
    # model had no call); percentiles only where there were calls.
    assert cost == tokens == {A: 4, B: 4}
    assert latency == {A: 3, B: 1}


def test_the_headline_totals_are_the_stats_all_row() -> None:
    found = cards(render_report(ROWS, start=T0, end=END))
    assert found == {
        "calls": ("4", "4", "2 models"),
        "errors": ("1", "1", '<span data-key="error_rate" data-value="0.25">25%</span> error rate'),
        "input_tokens": ("145", "145", "36 / call"),
        "output_tokens": ("70", "70", "18 / call"),
        "cost": ("0.0245", "$0.0245", "$0.00613 / call"),
        "p50_latency_ms": ("165.0", "165 ms", "all calls"),
        "p95_latency_ms": ("791.9999999999998", "792 ms", "all calls"),
        "p50_ttft_ms": ("", "–", "0 streamed calls"),
    }
    empty = cards(render_report([], start=T0, end=END))
    assert [empty[k][1:] for k in ("calls", "cost", "p95_latency_ms")] == [
        ("0", "0 models"), ("$0.00", "no calls"), ("–", "all calls")
    ]  # fmt: skip


def test_people_read_rounded_money_and_shares() -> None:
    assert [usd(v) for v in (0, 5e-05, 0.0045, 0.00612, 0.5, 0.257497, 1, 12.345, 1234.5)] == [
        "$0.00", "$0.00005", "$0.0045", "$0.00612", "$0.50", "$0.257", "$1.00", "$12.35", "$1,234.50",
    ]  # fmt: skip
    assert [percent(p, w) for p, w in ((0, 0), (1, 4), (1, 40), (7, 300), (57, 300), (1, 2500))] == [
        "0%", "25%", "2.5%", "2.3%", "19%", "0.04%",
    ]  # fmt: skip


def test_the_failures_newest_first_with_the_full_trace_id_escaped() -> None:
    failing = [
        row(m, A, 100 + m, status="error", status_message=f"openai.APITimeoutError: took {m} min", trace_id=f"{m:032x}")
        for m in range(1, 4)
    ]
    page = Page(render_report([*ROWS, *failing], start=T0, end=END))
    assert page.failures == [
        ["2025-05-01 09:15:00", B, "429slow <down>", "900", f"{75:032x}"],
        ["2025-05-01 08:03:00", A, "openai.APITimeoutErrortook 3 min", "103", f"{3:032x}"],
        ["2025-05-01 08:02:00", A, "openai.APITimeoutErrortook 2 min", "102", f"{2:032x}"],
        ["2025-05-01 08:01:00", A, "openai.APITimeoutErrortook 1 min", "101", f"{1:032x}"],
    ]
    assert error_parts("openai.APITimeoutError: Request timed out.") == ("openai.APITimeoutError", "Request timed out.")
    assert error_parts("Rate limited: try later") == ("error", "Rate limited: try later")
    assert error_parts(None) == ("error", "")


def test_the_failures_are_capped_and_say_how_many_more() -> None:
    many = [row(i / 10, A, 100, status="error", status_message="500: boom") for i in range(FAILURES_SHOWN + 7)]
    html = render_report(many, start=T0, end=END)
    assert len(Page(html).failures) == FAILURES_SHOWN
    assert '<h2>Failures <span class="count">57</span></h2>' in html
    assert "… and 7 more: <code>gateway-otel traces --status error</code> lists them." in html
    assert "No failed calls in this window." in render_report(ROWS[:2], start=T0, end=END)


def test_the_page_is_self_contained_and_escapes_names_and_messages() -> None:
    html = render_report([*ROWS, *workload(timedelta(minutes=5), SIX)], start=T0, end=NOW)
    page = Page(html)
    assert page.external == []
    assert not {"link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert page.tags.count("script") == 1  # ours; the model named <script> and its message are text
    assert "http://" not in html and "https://" not in html and "@import" not in html
    assert "claude-3.5-haiku&lt;&amp;&gt;" in html and "haiku<&>" not in html
    assert html.count("&lt;script&gt;document.body.setAttribute(&quot;data-pwned&quot;, &quot;yes&quot;)") > 10
    assert "slow &lt;down&gt;" in html


def test_a_model_with_only_failures_has_no_legend_entry_where_it_has_no_value() -> None:
    html = render_report(workload(timedelta(minutes=5), SIX), start=NOW - timedelta(hours=24), end=NOW)
    by_calls = sorted(SIX)  # 20 calls each: ties go by name, as in `stats`
    cost, tokens, latency = legends(html)
    assert cost == tokens == [m for m in by_calls if m != EVIL]
    assert latency == by_calls
    assert [set(c["series"]) for c in Page(html).charts] == [set(cost), set(tokens), set(latency)]


def test_the_axes_carry_units_and_dates() -> None:
    page = Page(render_report(ROWS, start=T0, end=END, step_seconds=3600))
    cost, tokens, latency = page.charts
    assert cost["yticks"] == ["$0", "$0.005", "$0.010", "$0.015", "$0.020"]
    assert tokens["yticks"] == ["0", "25", "50", "75", "100", "125"]
    assert latency["yticks"] == ["0 ms", "200 ms", "400 ms", "600 ms", "800 ms", "1,000 ms"]
    assert cost["xticks"] == ["08:00 2025-05-01", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "11:30",
                              "12:00"][::2]  # fmt: skip


def test_axis_labels_are_round_plain_numbers_with_their_unit() -> None:
    def labels(unit: str, largest: float) -> list[str]:
        ticks = value_ticks(largest)
        return [AXIS_FORMATS[unit](v, ticks[1] - ticks[0]) for v in ticks]

    assert labels("usd", 0.00021) == ["$0", "$0.00005", "$0.00010", "$0.00015", "$0.00020", "$0.00025"]  # no 5e-05
    assert labels("usd", 7.3) == ["$0", "$2", "$4", "$6", "$8"]
    assert labels("usd", 1.1) == ["$0", "$0.25", "$0.50", "$0.75", "$1.00", "$1.25"]
    assert labels("count", 2400) == ["0", "500", "1,000", "1,500", "2,000", "2,500"]
    assert labels("count", 6500) == ["0", "2k", "4k", "6k", "8k"]
    assert labels("count", 2.4e6) == ["0", "0.5M", "1.0M", "1.5M", "2.0M", "2.5M"]
    assert labels("ms", 1432) == ["0 ms", "500 ms", "1,000 ms", "1,500 ms"]
    assert labels("ms", 3.2) == ["0 ms", "1 ms", "2 ms", "3 ms", "4 ms"]


def test_the_stats_table_and_an_empty_window() -> None:
    html = render_report(ROWS, start=T0, end=END)
    assert (
        '<span class="name" title="openai/gpt-4o-mini">openai/gpt-4o-mini</span></td><td>3</td><td>0</td><td>45</td>'
        "<td>65</td><td>$0.004500</td>"
    ) in html
    total = '<tr class="total"><td class="left"><span class="name" title="all">all</span></td><td>4</td><td>1</td>'
    assert total in html
    empty = render_report([], start=T0, end=END)
    assert "No calls in this window." in empty and "No failed calls in this window." in empty
    assert [c["series"] for c in Page(empty).charts] == [{}, {}, {}]
    assert empty.count(">no data</text>") == 3


# --- the time axis ---------------------------------------------------------------------------------------------------


def test_the_default_step_gives_about_24_points() -> None:
    assert default_step(T0, T0 + timedelta(hours=24)) == 3600
    assert default_step(T0, T0 + timedelta(hours=72)) == 10800
    assert default_step(T0, T0 + timedelta(minutes=5)) == 15
    assert default_step(T0, T0 + timedelta(minutes=10)) == 30
    page = Page(render_report(ROWS, start=T0, end=END))
    assert page.charts[0]["series"][A] == 19  # 08:10 to 11:20 in 10-minute steps


def test_the_x_range_spans_the_calls_not_the_window() -> None:
    five = workload(timedelta(minutes=5), SIX)  # 14:02:31 to 14:07:29 in a 24 h window
    low, high, step = fit_range([r.start_time for r in five], NOW - timedelta(hours=24), NOW)
    assert (low, high, step) == (NOW - timedelta(minutes=5), NOW, 15)  # 20 points
    three = workload(timedelta(days=3), SIX)
    low, high, step = fit_range([r.start_time for r in three], NOW - timedelta(days=7), NOW)
    assert (low.isoformat(), high.isoformat(), step) == ("2025-04-30T12:00:00+00:00", "2025-05-03T15:00:00+00:00",
                                                         10800)  # fmt: skip
    one = fit_range([NOW], NOW - timedelta(hours=1), NOW)  # a single call: a minute around it
    assert (one[0].isoformat(), one[1].isoformat(), one[2]) == ("2025-05-03T14:07:00+00:00",
                                                                "2025-05-03T14:08:00+00:00", 2)  # fmt: skip
    assert fit_range([], T0, END) == (T0, END, 600)  # no call: the window
    assert fit_range([T0 + timedelta(minutes=30)], T0, END, 3600) == (T0, T0 + timedelta(hours=1), 3600)


@pytest.mark.parametrize("seconds", [30, 61, 300, 3600, 4 * 3600, 86_400, 3 * 86_400, 7 * 86_400, 30 * 86_400])
def test_5_to_8_round_ticks_whatever_the_range(seconds: int) -> None:
    low = NOW - timedelta(seconds=seconds)
    ticks, step = time_ticks(low, NOW)
    assert 5 <= len(ticks) <= 8, (seconds, ticks)
    assert all(t.timestamp() % step == 0 and low <= t <= NOW for t in ticks)


def test_tick_labels_carry_the_date_on_the_first_tick_and_at_each_new_day() -> None:
    low, high = datetime(2025, 4, 30, 12, tzinfo=timezone.utc), datetime(2025, 5, 3, 15, tzinfo=timezone.utc)
    ticks, step = time_ticks(low, high)
    assert tick_labels(ticks, step) == [
        ("12:00", "2025-04-30"), ("00:00", "2025-05-01"), ("12:00", ""), ("00:00", "2025-05-02"), ("12:00", ""),
        ("00:00", "2025-05-03"), ("12:00", ""),
    ]  # fmt: skip
    ticks, step = time_ticks(NOW - timedelta(minutes=5), NOW)
    assert tick_labels(ticks, step) == [("14:03", "2025-05-03"), ("14:04", ""), ("14:05", ""), ("14:06", ""),
                                        ("14:07", "")]  # fmt: skip
    ticks, step = time_ticks(NOW - timedelta(days=30), NOW)
    assert tick_labels(ticks, step)[0] == ("2025-04-07", "")  # 5-day steps


# --- the page and the CLI agree --------------------------------------------------------------------------------------


def test_the_headline_agrees_with_gateway_otel_stats(monkeypatch: Any, capsys: Any, tmp_path: Path, sim: Any) -> None:
    """Real calls (plain, streamed, failed) into the local store; `stats --json` and `report --html` read them."""
    import gateway_otel

    store = tmp_path / "store.db"
    monkeypatch.setenv("GATEWAY_OTEL_LOCAL_PATH", str(store))
    monkeypatch.setenv("GATEWAY_OTEL_DOTENV", "/nonexistent/.env")
    providers = gateway_otel.configure("local", environ={"GATEWAY_OTEL_LOCAL_PATH": str(store)}, set_global=False)
    gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
    try:
        client = make_client(sim)
        for model in ("openai/gpt-4o-mini", "openai/gpt-4o-mini", "mistralai/mistral-small"):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        for _ in client.chat.completions.create(
            model="anthropic/claude-3.5-haiku", stream=True, messages=[{"role": "user", "content": "hi"}]
        ):
            pass
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="sim/error-429", messages=[{"role": "user", "content": "x"}])
    finally:
        gateway_otel.uninstrument()
        providers.shutdown()

    assert cli(["stats", "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert cli(["traces", "--status", "error", "--json"]) == 0
    (failed,) = json.loads(capsys.readouterr().out)["spans"]
    page = tmp_path / "report.html"
    assert cli(["report", "--html", str(page)]) == 0
    html = page.read_text()
    found = {key: value for key, (value, _, _) in cards(html).items()}
    keys = ("calls", "errors", "input_tokens", "output_tokens", "cost", "p50_latency_ms", "p95_latency_ms",
            "p50_ttft_ms")  # fmt: skip
    assert found == {key: repr(total[key]) for key in keys}
    assert f'data-key="error_rate" data-value="{total["errors"] / total["calls"]!r}"' in html
    assert (total["calls"], total["errors"]) == (5, 1) and total["p50_ttft_ms"] is not None
    (line,) = Page(html).failures
    from gateway_otel.query._report import MESSAGE_CHARS

    kind, _, message = failed["status_message"].partition(": ")  # the type, then the message, cut as the page cuts
    shown = message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"
    assert line[1:3] == ["sim/error-429", kind + shown]
    assert line[4] == failed["trace_id"] and len(line[4]) == 32


# --- the page in a browser -------------------------------------------------------------------------------------------


def chromium(page: Path, tmp_path: Path, height: int = 2400) -> tuple[Page, str, Path]:
    """The page laid out at 1400 px by headless Chromium: its DOM after the scripts ran, and a screenshot."""
    if os.environ.get("GATEWAY_OTEL_SKIP_CHROMIUM") == "1":
        pytest.skip("GATEWAY_OTEL_SKIP_CHROMIUM=1")
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: tests/run.sh installs Debian's chromium"
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", f"--window-size=1400,{height}", f"--screenshot={shot}",
            "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return Page(done.stdout), done.stdout, shot


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_chromium_renders_the_charts(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(render_report(ROWS, start=T0, end=END, step_seconds=3600), encoding="utf-8")
    page, _, _ = chromium(report, tmp_path)
    assert page.body.get("data-rendered") == "yes"  # the inline script ran
    assert [c["data-metric"] for c in page.charts] == ["cost", "token_consumption", "inference_latency"]
    assert [c["series"] for c in page.charts] == [{A: 4, B: 4}, {A: 4, B: 4}, {A: 3, B: 1}]
    for chart in page.charts:  # laid out by the browser: the panel's width at 1400 px, drawn content inside it
        assert int(chart["data-drawn-width"]) > 1200 and int(chart["data-drawn-height"]) > 250, chart
        assert int(chart["data-content-width"]) > 1000, chart


@pytest.mark.parametrize("span", [timedelta(minutes=5), timedelta(days=3)], ids=["5min", "3days"])
def test_chromium_at_1400px_shows_the_headline_and_the_failures(span: timedelta, tmp_path: Path) -> None:
    """Six models, one with a 70-character name and one (named <script>) whose calls all failed."""
    rows = workload(span, SIX)
    report = tmp_path / "report.html"
    report.write_text(render_report(rows, start=NOW - 2 * span, end=NOW), encoding="utf-8")
    page, dom, shot = chromium(report, tmp_path)
    assert png_size(shot) == (1400, 2400)
    assert shot.stat().st_size > 150_000  # drawn: a blank page of this size is 11 kB
    assert page.body["data-rendered"] == "yes" and "data-pwned" not in page.body
    assert page.body["data-page-width"] == "1400"  # nothing wider than the window: no table pushed it out
    assert (page.body["data-wrapped-names"], page.body["data-legend-outside"]) == ("0", "0")
    assert page.body["data-cut-numbers"] == "0"  # every headline number whole (a cost like $0.000442 included)
    assert page.names[LONG] == "yes" and page.names[EVIL] == "yes"  # cut with an ellipsis, whole in the tooltip
    assert {name: cut for name, cut in page.names.items() if name not in (LONG, EVIL)} == dict.fromkeys(
        [*SIX[:4], "all"], "no"
    )
    numbers = {key: text for key, (_, text, _) in cards(dom).items()}
    assert numbers == {
        "calls": "120", "errors": "26", "input_tokens": "27,300", "output_tokens": "10,200", "cost": "$0.04",
        "p50_latency_ms": "726 ms", "p95_latency_ms": "1,148 ms", "p50_ttft_ms": "188 ms",
    }  # fmt: skip
    failed = sorted((r for r in rows if r.status == "error"), key=lambda r: r.start_time, reverse=True)
    assert len(page.failures) == 26
    assert [line[4] for line in page.failures] == [r.trace_id for r in failed]
    assert page.failures[0][:3] == [f"{failed[0].start_time:%Y-%m-%d %H:%M:%S}", EVIL, f"429Error code: 429 - {EVIL}"]


def test_chromium_shows_a_cost_of_a_fraction_of_a_cent_whole(tmp_path: Path) -> None:
    """A demo-sized total ($0.000442) is the widest headline number: it is shown whole, not cut to `$0.000…`."""
    from dataclasses import replace

    rows = [replace(r, cost=0.0000402 if r.cost else None) for r in workload(timedelta(minutes=5), SIX[:3], 11)]
    report = tmp_path / "report.html"
    report.write_text(render_report(rows, start=NOW - timedelta(hours=24), end=NOW), encoding="utf-8")
    page, _, _ = chromium(report, tmp_path)
    assert cards(report.read_text())["cost"][1].startswith("$0.000")
    assert page.body["data-cut-numbers"] == "0"
