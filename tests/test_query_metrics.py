"""Metric presets and the stats table over hand-made span rows, against hand-computed numbers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gateway_otel.query._metrics import METRIC_PRESETS, compute_metric, percentile_of
from gateway_otel.query._model import CostSources, SpanRow
from gateway_otel.query._stats import STATS_HEADERS, ModelStats, model_stats, total_stats

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
END = T0 + timedelta(hours=1)


def row(minute: float, model: str | None, duration_ms: float, **fields: Any) -> SpanRow:
    start = T0 + timedelta(minutes=minute)
    fields.setdefault("operation", "chat" if model else None)
    return SpanRow(
        trace_id=f"{int(minute * 10):032x}",
        span_id=f"{int(minute * 10):016x}",
        parent_span_id=None,
        name=f"chat {model}",
        start_time=start,
        end_time=start + timedelta(milliseconds=duration_ms),
        duration_ms=duration_ms,
        status=fields.pop("status", "ok"),
        model=model,
        **fields,
    )


A, B = "openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"
ROWS = [
    row(5, A, 100, input_tokens=10, output_tokens=5, cost=0.01, time_to_first_token_ms=50),
    row(10, A, 200, input_tokens=20, output_tokens=10, cost=0.02),
    row(35, B, 400, input_tokens=30, output_tokens=0, status="error"),
    row(50, A, 300, cost=0.03, time_to_first_token_ms=150),
    row(20, None, 5000),  # the application's own span: not a call
    row(70, A, 9999, input_tokens=1000, cost=1.0),  # after the window
    row(-1, B, 9999, input_tokens=1000, cost=1.0),  # before the window
]


def metric(name: str, rows: list[SpanRow] = ROWS, **kwargs: Any) -> Any:
    return compute_metric(name, rows, start=T0, end=END, **kwargs)


def points(result: Any) -> dict[str, list[tuple[datetime, Any]]]:
    return {s.labels.get("model", ""): list(s.points) for s in result.series}


# --- percentiles -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([1, 2, 3, 4, 5], 0.9, 4.6),  # h = 3.6 -> 4 + 0.6 * (5 - 4)
        ([50, 15, 40, 35, 20], 0.4, 29.0),  # sorted 15 20 35 40 50; h = 1.6 -> 20 + 0.6 * 15
        ([100, 200, 300, 400], 0.95, 385.0),  # h = 2.85 -> 300 + 0.85 * 100
        ([100, 200, 300, 400], 0.5, 250.0),
        ([7, 3], 0.0, 3.0),
        ([7, 3], 1.0, 7.0),
        ([42], 0.99, 42.0),
        ([], 0.5, None),
    ],
)
def test_percentile_interpolates_linearly_between_ranks(values: list[float], p: float, expected: Any) -> None:
    got = percentile_of(values, p)
    assert got is None if expected is None else got == pytest.approx(expected)


# --- one value over the window ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("inference_requests_total", {}, 4),
        ("token_consumption", {}, 75),  # 15 + 30 + 30 + 0
        ("cost", {}, 0.06),
        ("error_rate", {}, 0.25),
        ("inference_latency", {}, 385.0),  # p95 of 100 200 300 400
        ("inference_latency", {"percentile": 0.5}, 250.0),
        ("inference_latency", {"percentile": 0}, 100.0),
        ("time_to_first_token", {"percentile": 0.5}, 100.0),  # of 50 and 150 only
        ("time_to_first_token", {}, 145.0),  # h = 0.95 -> 50 + 0.95 * 100
        ("active_model_count", {}, 2),
    ],
)
def test_single_value_over_the_window(name: str, kwargs: dict[str, Any], expected: float) -> None:
    result = metric(name, **kwargs)
    assert result.value == pytest.approx(expected)
    assert result.series[0].labels == {}
    assert result.series[0].points[0][0] == END
    assert (result.start, result.end, result.step_seconds) == (T0, END, None)


def test_percentile_is_reported_only_for_percentile_metrics() -> None:
    assert metric("inference_latency").percentile == 0.95
    assert metric("inference_latency", percentile=0.5).percentile == 0.5
    assert metric("time_to_first_token", percentile=0.99).percentile == 0.99
    assert metric("cost", percentile=0.5).percentile is None


def test_rows_at_the_window_edges_count() -> None:
    edges = [row(0, A, 10), row(60, A, 20)]
    assert metric("inference_requests_total", edges).value == 2


def test_empty_window_sums_are_zero_and_ratios_undefined() -> None:
    assert metric("inference_requests_total", []).value == 0
    assert metric("token_consumption", []).value == 0
    assert metric("cost", []).value == 0
    assert metric("error_rate", []).value is None
    assert metric("inference_latency", []).value is None
    assert metric("time_to_first_token", ROWS[1:3]).value is None  # calls, but none streamed
    assert metric("inference_requests_total", [], group_by_model=True).series == ()
    assert metric("model_usage", []).series == ()


def test_a_call_without_a_model_is_grouped_as_unknown() -> None:
    anonymous = [row(1, None, 10, operation="embeddings"), row(2, A, 10)]
    result = metric("inference_requests_total", anonymous, group_by_model=True)
    assert {k: v[0][1] for k, v in points(result).items()} == {A: 1, "unknown": 1}


# --- grouping and steps ----------------------------------------------------------------------------------------------


def test_grouped_by_model_one_series_per_model_sorted_by_name() -> None:
    result = metric("inference_latency", percentile=0.5, group_by_model=True)
    assert [s.labels for s in result.series] == [{"model": B}, {"model": A}]
    assert points(result) == {B: [(END, 400.0)], A: [(END, 200.0)]}
    assert points(metric("cost", group_by_model=True)) == {B: [(END, 0.0)], A: [(END, pytest.approx(0.06))]}


def test_model_usage_is_always_per_model() -> None:
    assert points(metric("model_usage")) == {B: [(END, 1.0)], A: [(END, 3.0)]}


def test_step_cuts_the_window_into_buckets_stamped_with_their_end() -> None:
    result = metric("inference_requests_total", step_seconds=1800)
    assert result.step_seconds == 1800
    assert points(result) == {"": [(T0 + timedelta(minutes=30), 2.0), (END, 2.0)]}


def test_uneven_step_ends_with_a_short_bucket() -> None:
    result = metric("inference_requests_total", step_seconds=25 * 60)  # 0-25 a b, 25-50 c, 50-60 d
    assert points(result) == {"": [(T0 + timedelta(minutes=25), 2.0), (T0 + timedelta(minutes=50), 1.0), (END, 1.0)]}


def test_a_row_on_a_bucket_boundary_belongs_to_the_later_bucket() -> None:
    result = metric("inference_requests_total", [row(30, A, 1), row(60, A, 1)], step_seconds=1800)
    assert [v for _, v in result.series[0].points] == [0.0, 2.0]


def test_step_and_grouping_together_fill_every_bucket() -> None:
    half = T0 + timedelta(minutes=30)
    assert points(metric("inference_requests_total", step_seconds=1800, group_by_model=True)) == {
        B: [(half, 0.0), (END, 1.0)],
        A: [(half, 2.0), (END, 1.0)],
    }
    assert points(metric("inference_latency", step_seconds=1800, group_by_model=True)) == {
        B: [(half, None), (END, 400.0)],
        A: [(half, pytest.approx(195.0)), (END, 300.0)],  # p95 of 100, 200 = 100 + 0.95 * 100
    }
    assert points(metric("error_rate", step_seconds=1800)) == {"": [(half, 0.0), (END, 0.5)]}


def test_value_is_refused_for_series() -> None:
    with pytest.raises(ValueError, match="single series with a single point"):
        _ = metric("cost", step_seconds=1800).value


def test_to_dict_is_plain_json() -> None:
    result = metric("cost", group_by_model=True)
    assert result.to_dict() == {
        "metric": "cost",
        "start": "2025-01-01T00:00:00+00:00",
        "end": "2025-01-01T01:00:00+00:00",
        "step_seconds": None,
        "percentile": None,
        "series": [
            {"labels": {"model": B}, "points": [["2025-01-01T01:00:00+00:00", 0.0]]},
            {"labels": {"model": A}, "points": [["2025-01-01T01:00:00+00:00", pytest.approx(0.06)]]},
        ],
        "cost_sources": {"costed_calls": 3, "priced_calls": 0, "priced_cost": 0.0, "source": "gateway"},
    }


# --- bad parameters --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("latency", {}, "metric='latency' is not a known metric: expected one of token_consumption, "),
        ("inference_latency", {"percentile": 1.5}, "percentile=1.5 is not valid: expected a number from 0 to 1"),
        ("time_to_first_token", {"percentile": -0.1}, "percentile=-0.1 is not valid"),
        ("inference_latency", {"percentile": "p95"}, "percentile='p95' is not valid"),
        ("cost", {"step_seconds": 0}, "step_seconds=0 is not valid: expected a number of seconds greater than 0"),
        ("cost", {"step_seconds": -60}, "step_seconds=-60 is not valid"),
        ("cost", {"step_seconds": 0.1}, "step_seconds=0.1 is too small for the window: it makes 36000 buckets"),
    ],
)
def test_bad_parameters_are_named(name: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        metric(name, **kwargs)
    assert str(raised.value).startswith(message)


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ends .* before it starts"):
        compute_metric("cost", ROWS, start=END, end=T0)


def test_the_presets_the_issue_asks_for_exist_with_descriptions() -> None:
    wanted = {
        "token_consumption",
        "inference_requests_total",
        "inference_latency",
        "time_to_first_token",
        "error_rate",
        "cost",
        "model_usage",
    }
    assert wanted <= set(METRIC_PRESETS)
    assert all(isinstance(d, str) and d and "\n" not in d for d in METRIC_PRESETS.values())


# --- the stats table -------------------------------------------------------------------------------------------------


def test_stats_per_model_most_called_first() -> None:
    in_window = [r for r in ROWS if T0 <= r.start_time <= END]
    stats = model_stats(in_window)
    assert [s.model for s in stats] == [A, B]
    a, b = stats
    assert a == ModelStats(
        model=A,
        calls=3,
        errors=0,
        input_tokens=30,
        output_tokens=15,
        cost=pytest.approx(0.06),
        p50_latency_ms=200.0,
        p95_latency_ms=pytest.approx(290.0),  # h = 1.9 -> 200 + 0.9 * 100
        p50_ttft_ms=100.0,
        cost_sources=CostSources(costed_calls=3),
    )
    assert b == ModelStats(B, 1, 1, 30, 0, 0.0, 400.0, 400.0, None)
    assert a.total_tokens == 45
    assert b.cells() == (B, "1", "1", "30", "0", "-", "400", "400", "-")  # no call had a cost: none shown, not $0
    assert len(b.cells()) == len(STATS_HEADERS)
    assert b.to_dict() == {
        "model": B,
        "calls": 1,
        "errors": 1,
        "input_tokens": 30,
        "output_tokens": 0,
        "total_tokens": 30,
        "cost": 0.0,
        "p50_latency_ms": 400.0,
        "p95_latency_ms": 400.0,
        "p50_ttft_ms": None,
        "cost_sources": {"costed_calls": 0, "priced_calls": 0, "priced_cost": 0.0, "source": None},
    }


def test_stats_ties_are_ordered_by_name_and_totals_add_up() -> None:
    rows = [row(1, "b", 10), row(2, "a", 30, status="error", cost=0.5), row(3, None, 99)]
    assert [s.model for s in model_stats(rows)] == ["a", "b"]
    total = total_stats(rows)
    assert (total.model, total.calls, total.errors, total.cost, total.p50_latency_ms) == ("all", 2, 1, 0.5, 20.0)
    assert model_stats([]) == []
    assert total_stats([]).p50_latency_ms is None
