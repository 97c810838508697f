"""The openobserve query backend against a local HTTP server that answers in OpenObserve's documented shapes.

OpenObserve cannot run here. The server records every request (path, headers, JSON body) so the tests assert the SQL,
the microsecond time range and the Authorization header the backend sends; its answers are search responses whose
`hits` are rows in the stored traces/logs stream shape (protocols.md §1.3), some built from real instrumented spans
by OpenObserve's documented flattening.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import openai
import pytest

from conftest import make_client
from gateway_otel.query import QueryError, _openobserve
from gateway_otel.query._model import LogQuery, SpanQuery
from gateway_otel.query._openobserve import OpenObserveBackend, column
from openobserve_fake import FakeOpenObserve, stored_row

TOKEN = "Basic cm9vdEBleGFtcGxlLmNvbTpTRUNSRVQtcGFzc3dvcmQtOTk="
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)
T0_US, T1_US = 1740830400000000, 1740834000000000  # T0 and T1 in µs (date -d '2025-03-01T12:00Z' +%s = 1740830400)


@pytest.fixture
def oo() -> Iterator[FakeOpenObserve]:
    server = FakeOpenObserve()
    yield server
    server.close()


def backend(oo: FakeOpenObserve, **env: str) -> OpenObserveBackend:
    return OpenObserveBackend.from_env(
        {
            "OPENOBSERVE_URL": oo.url,
            "OPENOBSERVE_ORG": "acme",
            "OPENOBSERVE_AUTH_TOKEN": TOKEN,
            "OPENOBSERVE_TRACES_STREAM_NAME": "llm_traces",
            "OPENOBSERVE_LOGS_STREAM_NAME": "llm_logs",
            **env,
        }
    )


# --- what the backend sends ------------------------------------------------------------------------------------------


def test_span_query_sends_sql_microsecond_range_and_the_preset_credentials(oo: FakeOpenObserve) -> None:
    query = SpanQuery(
        start=T0, end=T1, trace_id="ABCDEF0123456789ABCDEF0123456789", model="o'neil/m-1", status="error",
        project_name="shop", session_id="s-1", limit=25,
    )  # fmt: skip
    assert backend(oo).spans(query) == []
    (request,) = oo.requests
    assert request["path"] == "/api/acme/_search?type=traces"
    assert request["headers"]["Authorization"] == TOKEN
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {
        "query": {
            "sql": "SELECT * FROM \"llm_traces\" WHERE trace_id = 'abcdef0123456789abcdef0123456789' AND "
            "(gen_ai_response_model = 'o''neil/m-1' OR gen_ai_request_model = 'o''neil/m-1') AND "
            "span_status = 'ERROR' AND service_name = 'shop' AND gen_ai_conversation_id = 's-1' "
            "ORDER BY start_time DESC",
            "start_time": T0_US,
            "end_time": T1_US + 1,  # the window's end is inclusive; OpenObserve's is not
            "from": 0,
            "size": 25,
        }
    }


def test_an_unfiltered_query_selects_the_whole_stream(oo: FakeOpenObserve) -> None:
    backend(oo).spans(SpanQuery(start=T0, end=T1))
    assert oo.requests[0]["body"]["query"]["sql"] == 'SELECT * FROM "llm_traces" ORDER BY start_time DESC'
    assert oo.requests[0]["body"]["query"]["size"] == 100


def test_email_and_password_make_the_same_basic_header_as_the_exporter(oo: FakeOpenObserve) -> None:
    env = {"OPENOBSERVE_AUTH_TOKEN": "", "OPENOBSERVE_EMAIL": "root@example.com", "OPENOBSERVE_PASSWORD": "pw"}
    backend(oo, **env).spans(SpanQuery(start=T0, end=T1))
    assert oo.requests[0]["headers"]["Authorization"] == "Basic cm9vdEBleGFtcGxlLmNvbTpwdw=="


def test_paging_until_a_short_page_when_every_row_is_wanted(oo: FakeOpenObserve, monkeypatch: Any) -> None:
    monkeypatch.setattr(_openobserve, "PAGE_SIZE", 2)
    rows = [{"trace_id": f"{i:032x}", "span_id": f"{i:016x}", "start_time": i, "end_time": i + 10**6} for i in range(5)]
    for page in (rows[:2], rows[2:4], rows[4:]):
        oo.answer(page)
    seen: list[int] = []
    default_org = OpenObserveBackend.from_env(
        {"OPENOBSERVE_URL": oo.url, "OPENOBSERVE_AUTH_TOKEN": TOKEN}, progress=seen.append
    )
    found = default_org.spans(SpanQuery(start=T0, end=T1, limit=None))
    assert [r.span_id for r in found] == [f"{i:016x}" for i in range(5)]
    assert [(r["body"]["query"]["from"], r["body"]["query"]["size"]) for r in oo.requests] == [(0, 2), (2, 2), (4, 2)]
    assert oo.requests[0]["path"] == "/api/default/_search?type=traces"
    assert seen == [2, 4, 5]


def test_a_limit_stops_paging_when_reached(oo: FakeOpenObserve, monkeypatch: Any) -> None:
    monkeypatch.setattr(_openobserve, "PAGE_SIZE", 2)
    row = {"trace_id": "1" * 32, "span_id": "2" * 16, "start_time": 0, "end_time": 0}
    oo.answer([row, row])
    oo.answer([row])
    assert len(backend(oo).spans(SpanQuery(start=T0, end=T1, limit=3))) == 3
    assert [(r["body"]["query"]["from"], r["body"]["query"]["size"]) for r in oo.requests] == [(0, 2), (2, 1)]


# --- what the backend reads ------------------------------------------------------------------------------------------


def test_a_documented_row_becomes_a_span_row(oo: FakeOpenObserve) -> None:
    hit = {
        "_timestamp": 1740830460000000,
        "trace_id": "b1eeb579ae863bdf9408e7d64c02d5d1",
        "span_id": "9408e7d64c02d5d1",
        "reference_parent_span_id": "",
        "span_status": "ERROR",
        "span_kind": "3",
        "operation_name": "chat openai/gpt-4o",
        "start_time": 1740830460000000000,
        "end_time": 1740830461250000000,
        "duration": 1250000,
        "service_name": "shop",
        "service_openinference_project_name": "shop-project",
        "service_telemetry_sdk_language": "python",
        "events": '[{"name": "gen_ai.first_chunk", "_timestamp": 1740830460500000000, "attributes": {"k": 1}}]',
        "gen_ai_operation_name": "chat",
        "gen_ai_request_model": "openai/gpt-4o",
        "gen_ai_response_model": "openai/gpt-4o-2024-08-06",
        "gateway_upstream_provider": "Azure",
        "gateway_name": "openrouter",
        "gen_ai_usage_input_tokens": 12,
        "gen_ai_usage_output_tokens": "7",  # OpenObserve may widen a column to text
        "gen_ai_usage_cost": 0.00042,
        "gen_ai_response_time_to_first_chunk": 0.5,
        "gen_ai_conversation_id": "s-1",
        "gateway_error_message": "Provider returned error",
        "llm_model_name": None,
    }
    oo.answer([hit])
    (row,) = backend(oo).spans(SpanQuery(start=T0, end=T1))
    assert row.to_dict() == {
        "trace_id": "b1eeb579ae863bdf9408e7d64c02d5d1",
        "span_id": "9408e7d64c02d5d1",
        "parent_span_id": None,
        "name": "chat openai/gpt-4o",
        "start_time": "2025-03-01T12:01:00+00:00",
        "end_time": "2025-03-01T12:01:01.250000+00:00",
        "duration_ms": 1250.0,
        "status": "error",
        "status_message": "Provider returned error",
        "operation": "chat",
        "model": "openai/gpt-4o-2024-08-06",
        "request_model": "openai/gpt-4o",
        "provider": "Azure",
        "gateway": "openrouter",
        "input_tokens": 12,
        "output_tokens": 7,
        "total_tokens": 19,
        "cost": 0.00042,
        "cost_source": None,  # the hit does not say (a span written before gateway.cost.source)
        "time_to_first_token_ms": 500.0,
        "project_name": "shop-project",
        "session_id": "s-1",
        "attributes": {
            "gen_ai_operation_name": "chat",
            "gen_ai_request_model": "openai/gpt-4o",
            "gen_ai_response_model": "openai/gpt-4o-2024-08-06",
            "gateway_upstream_provider": "Azure",
            "gateway_name": "openrouter",
            "gen_ai_usage_input_tokens": 12,
            "gen_ai_usage_output_tokens": "7",
            "gen_ai_usage_cost": 0.00042,
            "gen_ai_response_time_to_first_chunk": 0.5,
            "gen_ai_conversation_id": "s-1",
            "gateway_error_message": "Provider returned error",
        },
        "events": [
            {"name": "gen_ai.first_chunk", "timestamp": "2025-03-01T12:01:00.500000+00:00", "attributes": {"k": 1}}
        ],
    }
    oo.answer([hit])
    (light,) = backend(oo).spans(SpanQuery(start=T0, end=T1, detail=False))
    assert (light.attributes, light.events, light.cost) == ({}, (), 0.00042)


def test_real_instrumented_spans_read_back_through_openobserves_shape(
    oo: FakeOpenObserve, telemetry: Any, sim: Any
) -> None:
    client = make_client(sim)
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    for _ in client.chat.completions.create(
        model="anthropic/claude-3.5-haiku", stream=True, messages=[{"role": "user", "content": "stream"}]
    ):
        pass
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-Simulator-Scenario": "error-429"},
        )
    exported = telemetry.spans()
    oo.answer([stored_row(s) for s in reversed(exported)])
    rows = backend(oo).spans(SpanQuery(start=T0, end=T1))
    assert len(rows) == 3
    failed, streamed, plain = rows
    for row, span in zip(rows, reversed(exported), strict=True):
        attrs = span.attributes
        assert row.trace_id == format(span.context.trace_id, "032x")
        assert row.name == span.name
        assert row.model == attrs.get("gen_ai.response.model", attrs["gen_ai.request.model"])
        assert row.input_tokens == attrs.get("gen_ai.usage.input_tokens")
        assert row.output_tokens == attrs.get("gen_ai.usage.output_tokens")
        assert row.cost == attrs.get("gen_ai.usage.cost")
        assert row.provider == attrs.get("gateway.upstream.provider")
        assert row.duration_ms == (span.end_time - span.start_time) / 1e6
        assert row.project_name == "shop"
    assert (plain.status, plain.operation, plain.gateway) == ("ok", "chat", "openrouter")
    assert plain.input_tokens and plain.cost and plain.time_to_first_token_ms is None
    ttft = exported[1].attributes["gen_ai.response.time_to_first_chunk"]
    assert streamed.time_to_first_token_ms == pytest.approx(ttft * 1000)
    assert failed.status == "error" and failed.status_message


# --- logs -------------------------------------------------------------------------------------------------------------


def test_logs_come_from_the_logs_stream_with_a_minimum_severity(oo: FakeOpenObserve) -> None:
    oo.answer(
        [
            {
                "_timestamp": 1740830460000000,
                "body": "chat openai/gpt-4o failed: 429 rate limited",
                "severity": "ERROR",
                "trace_id": "b1eeb579ae863bdf9408e7d64c02d5d1",
                "span_id": "9408e7d64c02d5d1",
                "service_name": "shop",
                "dropped_attributes_count": 0,
                "gen_ai_request_model": "openai/gpt-4o",
            },
            {"_timestamp": 1740830400000000, "body": {"event": "x"}, "severity": 13},
        ]
    )
    records = backend(oo).logs(LogQuery(start=T0, end=T1, severity="warning", project_name="shop", limit=50))
    (request,) = oo.requests
    assert request["path"] == "/api/acme/_search?type=logs"
    assert request["headers"]["Authorization"] == TOKEN
    assert request["body"]["query"] == {
        "sql": "SELECT * FROM \"llm_logs\" WHERE upper(severity) IN ('WARN', 'WARNING', 'ERROR', 'CRITICAL', "
        "'FATAL') AND service_name = 'shop' ORDER BY _timestamp DESC",
        "start_time": T0_US,
        "end_time": T1_US + 1,
        "from": 0,
        "size": 50,
    }
    assert [r.to_dict() for r in records] == [
        {
            "time": "2025-03-01T12:01:00+00:00",
            "severity": "error",
            "body": "chat openai/gpt-4o failed: 429 rate limited",
            "trace_id": "b1eeb579ae863bdf9408e7d64c02d5d1",
            "span_id": "9408e7d64c02d5d1",
            "project_name": "shop",
            "attributes": {"gen_ai_request_model": "openai/gpt-4o"},
        },
        {
            "time": "2025-03-01T12:00:00+00:00",
            "severity": "warning",
            "body": '{"event": "x"}',
            "trace_id": None,
            "span_id": None,
            "project_name": None,
            "attributes": {},
        },
    ]


def test_logs_without_a_severity_are_not_filtered(oo: FakeOpenObserve) -> None:
    backend(oo).logs(LogQuery(start=T0, end=T1))
    assert oo.requests[0]["body"]["query"]["sql"] == 'SELECT * FROM "llm_logs" ORDER BY _timestamp DESC'


# --- failures: one clear line, never the credentials ------------------------------------------------------------------


def _error(oo: FakeOpenObserve, **env: str) -> str:
    with pytest.raises(QueryError) as raised:
        backend(oo, **env).spans(SpanQuery(start=T0, end=T1))
    message = str(raised.value)
    assert "\n" not in message
    assert "cm9vd" not in message and "SECRET" not in message and "pw" not in message.split()
    return message


def test_refused_credentials_say_which_settings_to_check(oo: FakeOpenObserve) -> None:
    oo.answers.append((401, {"code": 401, "message": f"Unauthorized Access {TOKEN}"}))
    assert _error(oo) == (
        f"OpenObserve refused the query (401 at {oo.url}/api/acme/_search): check OPENOBSERVE_AUTH_TOKEN "
        "(or OPENOBSERVE_EMAIL / OPENOBSERVE_PASSWORD) and OPENOBSERVE_ORG"
    )


def test_a_search_error_is_passed_on_with_its_code(oo: FakeOpenObserve) -> None:
    oo.answers.append((400, {"code": 20004, "message": "unknown field 'servce'", "suggestions": ["service"]}))
    assert _error(oo) == (
        f"OpenObserve refused the query (400 at {oo.url}/api/acme/_search): unknown field 'servce' (code 20004)"
    )


def test_an_answer_that_is_not_json_or_has_no_hits(oo: FakeOpenObserve) -> None:
    oo.answers.append((200, b"<html>login</html>"))
    assert _error(oo).startswith("OpenObserve answered something that is not JSON")
    oo.answers.append((200, {"took": 1}))
    assert _error(oo).startswith("OpenObserve answered without a list of hits")


def test_unreachable_and_slow_servers(oo: FakeOpenObserve) -> None:
    port = oo.server.server_address[1]
    oo.close()
    assert _error(oo).startswith(f"OpenObserve is unreachable at http://127.0.0.1:{port}/api/acme/_search: ")
    slow = FakeOpenObserve()
    slow.hang = True
    try:
        message = _error(slow, OPENOBSERVE_TIMEOUT="0.3")
    finally:
        slow.close()
    assert message == f"OpenObserve did not answer within 0.3 s ({slow.url}/api/acme/_search)"


def test_credentials_in_the_url_are_not_shown(oo: FakeOpenObserve) -> None:
    url = oo.url.replace("http://", "http://root:SECRET@")
    oo.answers.append((500, {"message": "boom"}))
    assert _error(oo, OPENOBSERVE_URL=url) == f"OpenObserve refused the query (500 at {oo.url}/api/acme/_search): boom"


def test_missing_credentials_are_a_clear_error_naming_the_variable() -> None:
    with pytest.raises(QueryError, match="the openobserve backend is not configured: OPENOBSERVE_AUTH_TOKEN is not"):
        OpenObserveBackend.from_env({"OPENOBSERVE_URL": "http://127.0.0.1:9"})


def test_column_names_follow_openobserves_flattening() -> None:
    assert column("gen_ai.usage.input_tokens") == "gen_ai_usage_input_tokens"
    assert column("llm.token_count.prompt") == "llm_token_count_prompt"
    assert column("Gateway.Upstream-Provider") == "gateway_upstream_provider"
