"""The HTML report: self-contained, with the right series, and really rendered by headless Chromium.

tests/run.sh installs Debian's chromium when /usr/bin/chromium is missing. The Chromium test is skipped only when
`GATEWAY_OTEL_SKIP_CHROMIUM=1` (run.sh sets it for the second and third openai majors: the page does not depend on
openai); a missing browser otherwise fails it.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gateway_otel.query._model import SpanRow
from gateway_otel.query._report import default_step, render_report

CHROMIUM = "/usr/bin/chromium"
T0 = datetime(2025, 5, 1, 8, 0, tzinfo=timezone.utc)
END = T0 + timedelta(hours=4)
A, B = "openai/gpt-4o-mini", "anthropic/claude-3.5-haiku<&>"


def row(minute: float, model: str, duration_ms: float, **fields: Any) -> SpanRow:
    start = T0 + timedelta(minutes=minute)
    return SpanRow(
        trace_id=f"{int(minute):032x}",
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
    row(75, B, 900, input_tokens=100, output_tokens=5, cost=0.02, status="error"),
    row(200, A, 150, input_tokens=5, output_tokens=5, cost=0.0005),
]


class Page(HTMLParser):
    """What the tests read from a page: charts, their series, attributes of body, and every external reference."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.charts: list[dict[str, Any]] = []
        self.body: dict[str, str] = {}
        self.external: list[str] = []
        self.tags: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        for name in ("src", "href", "xlink:href"):
            if name in values:
                self.external.append(values[name])
        if "url(" in values.get("style", ""):
            self.external.append(values["style"])
        if tag == "body":
            self.body = values
        elif tag == "svg" and "chart" in values.get("class", ""):
            self.charts.append({**values, "series": {}})
        elif tag == "g" and values.get("class") == "series":
            self.charts[-1]["series"][values["data-model"]] = int(values["data-points"])


def test_the_page_has_one_chart_per_measure_with_a_series_per_model() -> None:
    page = Page(render_report(ROWS, start=T0, end=END, step_seconds=3600))
    assert [c["data-metric"] for c in page.charts] == ["cost", "token_consumption", "inference_latency"]
    cost, tokens, latency = (c["series"] for c in page.charts)
    # Sums have a point in every hourly bucket (0 where a model had no call); percentiles only where there were calls.
    assert cost == tokens == {B: 4, A: 4}
    assert latency == {B: 1, A: 3}


def test_the_page_is_self_contained_and_escapes_model_names() -> None:
    html = render_report(ROWS, start=T0, end=END)
    page = Page(html)
    assert page.external == []
    assert not {"link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert "http://" not in html and "https://" not in html and "@import" not in html
    assert "claude-3.5-haiku&lt;&amp;&gt;" in html and "haiku<&>" not in html


def test_the_stats_table_and_an_empty_window() -> None:
    html = render_report(ROWS, start=T0, end=END)
    assert "<td>openai/gpt-4o-mini</td><td>3</td><td>0</td><td>45</td><td>65</td><td>$0.004500</td>" in html
    assert "<td>all</td><td>4</td><td>1</td>" in html
    empty = render_report([], start=T0, end=END)
    assert "No calls in this window." in empty
    assert [c["series"] for c in Page(empty).charts] == [{}, {}, {}]
    assert empty.count(">no data</text>") == 3


def test_the_default_step_gives_about_24_points() -> None:
    assert default_step(T0, T0 + timedelta(hours=24)) == 3600
    assert default_step(T0, T0 + timedelta(minutes=10)) == 60
    page = Page(render_report(ROWS, start=T0, end=END))
    assert page.charts[0]["series"][A] == 24  # 4 h / 10 min


def test_chromium_renders_the_charts(tmp_path: Path) -> None:
    if os.environ.get("GATEWAY_OTEL_SKIP_CHROMIUM") == "1":
        pytest.skip("GATEWAY_OTEL_SKIP_CHROMIUM=1")
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: tests/run.sh installs Debian's chromium"
    report = tmp_path / "report.html"
    report.write_text(render_report(ROWS, start=T0, end=END, step_seconds=3600), encoding="utf-8")
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    page = Page(done.stdout)
    assert page.body.get("data-rendered") == "yes", done.stdout[:500]  # the inline script ran
    assert [c["data-metric"] for c in page.charts] == ["cost", "token_consumption", "inference_latency"]
    assert [c["series"] for c in page.charts] == [{B: 4, A: 4}, {B: 4, A: 4}, {B: 1, A: 3}]
    for chart in page.charts:  # laid out by the browser: the drawn content has a real size
        assert int(chart["data-drawn-width"]) > 600 and int(chart["data-drawn-height"]) > 150, chart


def test_axis_labels_are_plain_numbers() -> None:
    from gateway_otel.query._report import _number

    assert [_number(v) for v in (0, 5e-05, 0.00015, 0.2, 1.5, 25, 12345.6)] == [
        "0", "0.00005", "0.00015", "0.2", "1.5", "25", "12,346",
    ]  # fmt: skip
