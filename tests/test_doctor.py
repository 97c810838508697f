"""`gateway-otel doctor`: the pure checks, then the command end to end against a local management API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway_otel import Settings
from gateway_otel.cli import main
from gateway_otel.cli._doctor import findings
from gateway_otel.destinations._presets import resolve
from gateway_otel.openrouter._broadcast import from_json
from openrouter_server import ManagementServer, destination, serve

KEY = "sk-or-v1-mgmt-SENTINEL-0d0c0b0a09080706"
ARIZE_ENV = {
    "ARIZE_SPACE_ID": "U3BhY2U6MTIz",
    "ARIZE_API_KEY": "ak-local-secret-0000001234",
    "ARIZE_PROJECT_NAME": "checkout",
}
ARIZE_BROADCAST = destination(
    1,
    "arize",
    {"apiKey": "ak-1...zz99", "spaceKey": "U3BhY2U6MTIz", "modelId": "checkout", "baseUrl": "https://otlp.arize.com"},
    name="Prod Arize",
)
COLLECTOR_BROADCAST = destination(2, "otel-collector", {"endpoint": "https://collector.example.com/v1/traces"})


def remote(data: dict[str, Any], **changes: Any) -> Any:
    return from_json({**data, **changes})


def arize(**env: str) -> Any:
    return resolve("arize", {**ARIZE_ENV, **env})


DUPLICATE_ARIZE = (
    "the same OpenRouter calls reach Arize AX project 'checkout' twice: from this process (destination arize) and "
    "from OpenRouter Broadcast (destination 'Prod Arize', id 99999999-aaaa-bbbb-cccc-000000000001); token and cost "
    "totals there count each call twice. Change one: set ARIZE_PROJECT_NAME to another project or remove arize from "
    "GATEWAY_OTEL_DESTINATIONS, or give that Broadcast destination another Model Id (its project) or disable it in "
    "OpenRouter (Settings → Observability)."
)


def test_same_arize_project_on_both_sides_is_a_warning() -> None:
    found = findings([arize()], [remote(ARIZE_BROADCAST)], Settings())
    assert [(f.level, f.message) for f in found] == [("warning", DUPLICATE_ARIZE)]


@pytest.mark.parametrize(
    ("local_env", "changes"),
    [
        ({"ARIZE_PROJECT_NAME": "other"}, {}),
        ({}, {"config": {**ARIZE_BROADCAST["config"], "spaceKey": "U3BhY2U6OTk5"}}),
        ({}, {"enabled": False}),
        ({"GATEWAY_OTEL_ARIZE_ENABLED": "false"}, {}),
        ({"ARIZE_COLLECTOR_ENDPOINT": "https://otlp.eu-west-1a.arize.com/v1"}, {}),
    ],
    ids=["other-project", "other-space", "broadcast-disabled", "local-disabled", "other-region"],
)
def test_different_arize_targets_are_fine(local_env: dict[str, str], changes: dict[str, Any]) -> None:
    assert findings([arize(**local_env)], [remote(ARIZE_BROADCAST, **changes)], Settings()) == []


def test_a_masked_space_still_matches_on_the_project() -> None:
    masked = {**ARIZE_BROADCAST["config"], "spaceKey": "U3Bh...MTIz"}
    assert [f.message for f in findings([arize()], [remote(ARIZE_BROADCAST, config=masked)], Settings())] == [
        DUPLICATE_ARIZE
    ]


def test_same_collector_host() -> None:
    local = resolve("otlp", {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example.com:4318"})
    found = findings([local], [remote(COLLECTOR_BROADCAST)], Settings())
    assert [f.message for f in found] == [
        "the same OpenRouter calls reach collector.example.com twice: from this process (destination otlp) and from "
        "OpenRouter Broadcast (destination 'otel-collector 2', id 99999999-aaaa-bbbb-cccc-000000000002); token and "
        "cost totals there count each call twice. Change one: remove otlp from GATEWAY_OTEL_DESTINATIONS (or point "
        "OTEL_EXPORTER_OTLP_ENDPOINT elsewhere), or disable that destination in OpenRouter (Settings → Observability)."
    ]
    elsewhere = resolve("otlp", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"})
    assert findings([elsewhere], [remote(COLLECTOR_BROADCAST)], Settings()) == []


def test_privacy_and_trace_join_advice() -> None:
    broadcast = [remote(ARIZE_BROADCAST), remote(COLLECTOR_BROADCAST, privacy_mode=True)]
    found = findings([], broadcast, Settings(capture_content=False, openrouter_trace=False))
    assert [f.message for f in found] == [
        "this process records no prompts or completions (capture_content is off) but OpenRouter Broadcast sends them "
        "to 'Prod Arize' (arize): turn on Privacy Mode for it in OpenRouter (Settings → Observability).",
        "OpenRouter Broadcast is on but trace join is off (GATEWAY_OTEL_OPENROUTER_TRACE=false): its spans form "
        "traces unrelated to this process's; set GATEWAY_OTEL_OPENROUTER_TRACE=auto to nest them.",
    ]
    assert findings([], broadcast, Settings()) == []


@pytest.fixture
def env(monkeypatch: Any, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("OPENROUTER_MANAGEMENT_KEY", "OPENROUTER_API_KEY", "GATEWAY_OTEL_OPENROUTER_TRACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_OTEL_DESTINATIONS", "arize")
    for name, value in ARIZE_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def server() -> Iterator[ManagementServer]:
    with serve(ManagementServer(KEY, [ARIZE_BROADCAST, COLLECTOR_BROADCAST])) as running:
        yield running


def doctor(capsys: Any, server: ManagementServer, *args: str) -> tuple[int, str, str]:
    code = main(["doctor", "--server-url", server.url, "--retry-for", "0.1", *args])
    out, err = capsys.readouterr()
    for secret in (KEY, ARIZE_ENV["ARIZE_API_KEY"]):
        assert secret not in out + err
    return code, out, err


def test_doctor_end_to_end(env: None, capsys: Any, server: ManagementServer, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENROUTER_MANAGEMENT_KEY", KEY)
    code, out, err = doctor(capsys, server)
    assert (code, err) == (1, "")
    assert out == "\n".join(
        [
            "This process exports to (GATEWAY_OTEL_DESTINATIONS):",
            "  id     enabled  privacy  sampling  target",
            "  -----  -------  -------  --------  ------------------------------------------",
            "  arize  yes      off      1         project=checkout https://otlp.arize.com/v1",
            "OpenRouter Broadcast (with OPENROUTER_MANAGEMENT_KEY):",
            "  id                                    type            name              enabled  privacy  sampling  "
            "target",
            "  ------------------------------------  --------------  ----------------  -------  -------  --------  "
            "-------------------------------",
            "  99999999-aaaa-bbbb-cccc-000000000001  arize           Prod Arize        yes      off      1         "
            "modelId=checkout otlp.arize.com",
            "  99999999-aaaa-bbbb-cccc-000000000002  otel-collector  otel-collector 2  yes      off      1         "
            "collector.example.com",
            "Trace join: on for calls to OpenRouter (GATEWAY_OTEL_OPENROUTER_TRACE=auto); W3C traceparent: off "
            "(GATEWAY_OTEL_TRACEPARENT); content capture: on",
            f"warning: {DUPLICATE_ARIZE}",
            "1 problem found",
            "",
        ]
    )
    assert [r.authorization for r in server.requests] == [f"Bearer {KEY}"]


def test_doctor_json_and_fix(env: None, capsys: Any, server: ManagementServer, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENROUTER_MANAGEMENT_KEY", KEY)
    monkeypatch.setenv("ARIZE_PROJECT_NAME", "checkout-app")  # the advice, followed
    code, out, _ = doctor(capsys, server, "--json")
    data = json.loads(out)
    assert code == 0 and data["findings"] == []
    assert [d["type"] for d in data["broadcast"]] == ["arize", "otel-collector"]
    assert (data["trace_join"], data["propagate_traceparent"]) == ("auto", False)
    assert data["destinations"][0]["headers"]["authorization"].startswith("****")


def test_doctor_without_a_key(env: None, capsys: Any, server: ManagementServer) -> None:
    code, out, _ = doctor(capsys, server)
    assert code == 0 and server.requests == []
    assert (
        "OpenRouter Broadcast (not checked: set OPENROUTER_MANAGEMENT_KEY or OPENROUTER_API_KEY to compare with "
        "OpenRouter Broadcast):\n"
    ) in out
    assert out.endswith("No problems found.\n")


def test_doctor_reports_what_it_could_not_check(
    env: None, capsys: Any, server: ManagementServer, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OPENROUTER_MANAGEMENT_KEY", "sk-or-v1-wrong-key-0000000000")
    monkeypatch.setenv("GATEWAY_OTEL_OPENROUTER_TRACE", "sometimes")
    monkeypatch.delenv("ARIZE_API_KEY")
    code, out, _ = doctor(capsys, server)
    assert code == 1 and "sk-or-v1-wrong" not in out
    assert [line for line in out.splitlines() if line.startswith("error: ")] == [
        "error: settings: GATEWAY_OTEL_OPENROUTER_TRACE='sometimes' is not valid: expected auto, true or false",
        "error: this process's destinations: ARIZE_API_KEY is not set: expected your Arize API key",
        "error: OpenRouter Broadcast: OpenRouter rejected the management key (401): OPENROUTER_MANAGEMENT_KEY or "
        "OPENROUTER_API_KEY is missing or wrong; create a management key at "
        "https://openrouter.ai/settings/management-keys",
    ]


def test_an_application_key_is_a_note_not_a_problem(
    env: None, capsys: Any, server: ManagementServer, monkeypatch: Any
) -> None:
    """The ordinary OPENROUTER_API_KEY of an app cannot read Broadcast's settings (OpenRouter answers 401):
    doctor says the comparison was not made and why, and exits 0."""
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-an-app-key-0000000000000")
    code, out, _ = doctor(capsys, server)
    assert len(server.requests) >= 1  # it tried, with that key
    assert code == 0, out
    assert (
        "OpenRouter Broadcast (not checked: OPENROUTER_API_KEY is an application key, and reading Broadcast's "
        "settings needs a management key (OpenRouter answered 401); set OPENROUTER_MANAGEMENT_KEY to compare):\n"
    ) in out
    assert "error:" not in out and out.endswith("No problems found.\n")


def test_without_the_openrouter_extra_the_comparison_is_a_note(
    env: None, capsys: Any, server: ManagementServer, monkeypatch: Any
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openrouter" else real_find_spec(name, *a)
    )
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    code, out, _ = doctor(capsys, server)
    assert code == 0 and server.requests == []
    assert (
        "OpenRouter Broadcast (not checked: comparing with OpenRouter Broadcast needs the openrouter SDK "
        "(pip install 'gateway-otel[openrouter]')):\n"
    ) in out
    assert out.endswith("No problems found.\n")


def test_an_unreachable_openrouter_is_a_note_with_an_app_key_and_an_error_with_a_management_key(
    env: None, capsys: Any, monkeypatch: Any
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/api/v1"
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    code = main(["doctor", "--server-url", closed, "--retry-for", "0"])
    out = capsys.readouterr().out
    assert code == 0 and f"not checked with OPENROUTER_API_KEY: cannot reach OpenRouter at {closed}" in out
    monkeypatch.setenv("OPENROUTER_MANAGEMENT_KEY", KEY)
    code = main(["doctor", "--server-url", closed, "--retry-for", "0"])
    out = capsys.readouterr().out
    assert code == 1 and f"error: OpenRouter Broadcast: cannot reach OpenRouter at {closed}" in out
    assert KEY not in out
