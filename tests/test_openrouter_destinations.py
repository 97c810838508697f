"""`gateway-otel openrouter destinations list|get` through the real openrouter SDK against a local management API."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from gateway_otel.cli import main
from gateway_otel.openrouter import _broadcast
from openrouter_server import WORKSPACE, ManagementServer, destination, serve

KEY = "sk-or-v1-mgmt-SENTINEL-5f1e2d3c4b5a69788796a5b4"
PLAIN_SECRETS = ("plain-collector-secret-0001", "dd-plain-secret-value-9999", "json-secret-credentials", "pw@", "abc")

DESTINATIONS = [
    destination(
        1,
        "arize",
        {
            "apiKey": "ak-1...zz99",
            "spaceKey": "U3BhY2U6MTIz",
            "modelId": "checkout",
            "baseUrl": "https://otlp.arize.com",
        },
    ),
    destination(
        2,
        "langfuse",
        {"baseUrl": "https://us.cloud.langfuse.com", "publicKey": "pk-l...EfGh", "secretKey": "sk-l...AbCd"},
    ),
    destination(
        3,
        "otel-collector",
        {
            "endpoint": "https://user:pw@collector.example.com:4318/v1/traces?token=abc",
            "headers": {"Authorization": "Bearer plain-collector-secret-0001"},
        },
        enabled=False,
        privacy_mode=True,
        sampling_rate=0.25,
    ),
    destination(4, "webhook", {"url": "https://hooks.example.com/otel", "method": "POST"}, name=None),
    destination(5, "datadog", {"apiKey": "dd-plain-secret-value-9999", "mlApp": "shop"}),
    {  # a type the SDK does not know (BigQuery is in OpenRouter's docs, not in SDK 1.3.84)
        "id": "99999999-aaaa-bbbb-cccc-000000000006",
        "type": "bigquery",
        "name": "BQ",
        "enabled": True,
        "privacy_mode": True,
        "sampling_rate": 0.5,
        "config": {"projectId": "p1", "credentials": "{json-secret-credentials}"},
    },
    {  # the docs' own example: no `regions`, so the SDK cannot type it
        "api_key_hashes": None,
        "config": {"baseUrl": "https://cloud.langfuse.com", "publicKey": "pk-l...1234", "secretKey": "sk-l...5678"},
        "enabled": True,
        "id": "99999999-aaaa-bbbb-cccc-000000000007",
        "name": "Production Langfuse",
        "privacy_mode": False,
        "sampling_rate": 1,
        "type": "langfuse",
        "workspace_id": WORKSPACE,
    },
]


@pytest.fixture
def server(monkeypatch: Any) -> Iterator[ManagementServer]:
    monkeypatch.setenv("OPENROUTER_MANAGEMENT_KEY", KEY)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with serve(ManagementServer(KEY, [dict(d) for d in DESTINATIONS])) as running:
        yield running


def run_cli(capsys: Any, server: ManagementServer, *args: str) -> tuple[int, str, str]:
    code = main(["openrouter", "destinations", *args, "--server-url", server.url, "--retry-for", "0.2"])
    out, err = capsys.readouterr()
    assert KEY not in out + err
    for secret in PLAIN_SECRETS:
        assert secret not in out + err
    return code, out, err


def test_list_walks_every_page_and_prints_the_table(capsys: Any, server: ManagementServer) -> None:
    code, out, err = run_cli(capsys, server, "list", "--limit", "3", "--workspace", WORKSPACE)
    assert (code, err) == (0, "")
    assert [(r.path, r.query) for r in server.requests] == [
        ("/api/v1/observability/destinations", {"offset": str(o), "limit": "3", "workspace_id": WORKSPACE})
        for o in (0, 3, 6)
    ]
    assert all(r.authorization == f"Bearer {KEY}" for r in server.requests)
    assert out == EXPECTED_TABLE


EXPECTED_TABLE = """\
id                                    type            name                 enabled  privacy  sampling  config
------------------------------------  --------------  -------------------  -------  -------  --------  -------------------------------------------------------------------------------------------------
99999999-aaaa-bbbb-cccc-000000000001  arize           arize 1              yes      off      1         apiKey=ak-1...zz99, modelId=checkout, spaceKey=U3BhY2U6MTIz, baseUrl=https://otlp.arize.com
99999999-aaaa-bbbb-cccc-000000000002  langfuse        langfuse 2           yes      off      1         publicKey=pk-l...EfGh, secretKey=sk-l...AbCd, baseUrl=https://us.cloud.langfuse.com
99999999-aaaa-bbbb-cccc-000000000003  otel-collector  otel-collector 3     no       on       0.25      endpoint=https://collector.example.com:4318/v1/traces?****, headers.Authorization=Bearer ****0001
99999999-aaaa-bbbb-cccc-000000000004  webhook         -                    yes      off      1         url=https://hooks.example.com/otel, method=POST
99999999-aaaa-bbbb-cccc-000000000005  datadog         datadog 5            yes      off      1         apiKey=****9999, mlApp=shop, url=https://api.datadoghq.com
99999999-aaaa-bbbb-cccc-000000000006  bigquery*       BQ                   yes      on       0.5       projectId=p1, credentials=****als}
99999999-aaaa-bbbb-cccc-000000000007  langfuse*       Production Langfuse  yes      off      1         baseUrl=https://cloud.langfuse.com, publicKey=pk-l...1234, secretKey=sk-l...5678
* the installed openrouter SDK could not type it (a new type or shape): shown from the raw JSON
7 destinations
"""  # noqa: E501


def test_list_json(capsys: Any, server: ManagementServer) -> None:
    code, out, _ = run_cli(capsys, server, "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert [d["type"] for d in data] == [
        "arize",
        "langfuse",
        "otel-collector",
        "webhook",
        "datadog",
        "bigquery",
        "langfuse",
    ]
    assert [d["known_type"] for d in data] == [True] * 5 + [False, False]
    assert data[2]["config"] == {
        "endpoint": "https://collector.example.com:4318/v1/traces?****",
        "headers": {"Authorization": "Bearer ****0001"},
    }
    assert data[4]["config"] == {
        "apiKey": "****9999",
        "mlApp": "shop",
        "url": "https://api.datadoghq.com",
    }  # SDK default
    assert data[5]["config"] == {"projectId": "p1", "credentials": "****als}"}
    assert data[0] == {
        "id": "99999999-aaaa-bbbb-cccc-000000000001",
        "type": "arize",
        "name": "arize 1",
        "enabled": True,
        "privacy_mode": False,
        "sampling_rate": 1.0,
        "regions": ["global"],
        "workspace_id": WORKSPACE,
        "config": {
            "apiKey": "ak-1...zz99",
            "modelId": "checkout",
            "spaceKey": "U3BhY2U6MTIz",
            "baseUrl": "https://otlp.arize.com",
        },
        "known_type": True,
    }
    assert [r.query["offset"] for r in server.requests] == ["0"]  # 7 < 100: one page


def test_an_exactly_full_last_page_asks_once_more(capsys: Any, server: ManagementServer) -> None:
    server.destinations = server.destinations[:6]
    code, out, _ = run_cli(capsys, server, "list", "--limit", "3")
    assert code == 0 and out.endswith("6 destinations\n")
    assert [r.query["offset"] for r in server.requests] == ["0", "3", "6"]
    assert "workspace_id" not in server.requests[0].query


def test_get_one(capsys: Any, server: ManagementServer) -> None:
    code, out, err = run_cli(capsys, server, "get", "99999999-aaaa-bbbb-cccc-000000000003")
    assert (code, err) == (0, "")
    assert server.requests[-1].path == "/api/v1/observability/destinations/99999999-aaaa-bbbb-cccc-000000000003"
    assert out.splitlines() == [
        "id             99999999-aaaa-bbbb-cccc-000000000003",
        "type           otel-collector",
        "name           otel-collector 3",
        "enabled        False",
        "privacy_mode   True",
        "sampling_rate  0.25",
        "regions        ['global']",
        f"workspace_id   {WORKSPACE}",
        "config         endpoint=https://collector.example.com:4318/v1/traces?****, "
        "headers.Authorization=Bearer ****0001",
        "known_type     True",
    ]


@pytest.mark.parametrize(
    ("status", "plain", "args", "message"),
    [
        (
            401,
            False,
            ("list",),
            "OpenRouter rejected the management key (401): OPENROUTER_MANAGEMENT_KEY or "
            "OPENROUTER_API_KEY is missing or wrong",
        ),
        (403, False, ("list",), "OpenRouter refused (403): this key may not manage observability destinations"),
        (500, False, ("list",), "OpenRouter answered 500 (Internal Server Error) to every attempt for 0.2 s"),
        (503, True, ("get", "x"), "OpenRouter answered 503 (Service Unavailable) to every attempt for 0.2 s"),
        (400, False, ("list",), "OpenRouter answered 400: Internal Server Error"),
    ],
)
def test_errors_are_one_clear_line(
    capsys: Any, server: ManagementServer, status: int, plain: bool, args: tuple[str, ...], message: str
) -> None:
    server.fail_with, server.plain_error_body = status, plain
    code, out, err = run_cli(capsys, server, *args)
    assert (code, out) == (1, "")
    assert err.startswith(f"gateway-otel: {message}") and err.count("\n") == 1
    if status >= 500:
        assert len(server.requests) >= 2  # retried before giving up
    else:
        assert len(server.requests) == 1


def test_a_wrong_key_is_a_401(capsys: Any, server: ManagementServer, monkeypatch: Any, caplog: Any) -> None:
    monkeypatch.delenv("OPENROUTER_MANAGEMENT_KEY")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-not-a-management-key-000000")
    with caplog.at_level(logging.DEBUG, logger="gateway_otel"):
        code, _, err = run_cli(capsys, server, "list")
    assert code == 1 and "(401)" in err and "sk-or-v1-not" not in err
    # The SDK's error is logged at debug level, by type, with the one-line message: never the key, no traceback.
    (record,) = [r for r in caplog.records if r.getMessage().startswith("openrouter SDK raised")]
    assert record.levelno == logging.DEBUG and "(401)" in record.getMessage() and record.exc_info is None
    assert "sk-or-v1-not" not in caplog.text
    assert server.requests[0].authorization == "Bearer sk-or-v1-not-a-management-key-000000"


def test_no_such_destination(capsys: Any, server: ManagementServer) -> None:
    code, out, err = run_cli(capsys, server, "get", "00000000-0000-0000-0000-000000000000")
    assert (code, out) == (1, "")
    assert err == "gateway-otel: no such destination: 00000000-0000-0000-0000-000000000000 (404)\n"


def test_no_key(capsys: Any, server: ManagementServer, monkeypatch: Any) -> None:
    monkeypatch.delenv("OPENROUTER_MANAGEMENT_KEY")
    code, _, err = run_cli(capsys, server, "list")
    assert code == 2 and server.requests == []
    assert err == "gateway-otel: no OpenRouter management key: set OPENROUTER_MANAGEMENT_KEY or OPENROUTER_API_KEY\n"


def test_unreachable(capsys: Any, server: ManagementServer) -> None:
    code = main(["openrouter", "destinations", "list", "--server-url", "http://127.0.0.1:9/api/v1", "--retry-for", "0"])
    _, err = capsys.readouterr()
    assert code == 1 and err.startswith("gateway-otel: cannot reach OpenRouter at http://127.0.0.1:9/api/v1: ")


def test_bad_limit_and_url(capsys: Any, server: ManagementServer) -> None:
    assert run_cli(capsys, server, "list", "--limit", "101")[0] == 2
    assert main(["openrouter", "destinations", "list", "--server-url", "ftp://x"]) == 2
    assert "--server-url='ftp://x' is not valid: expected an http:// or https:// URL" in capsys.readouterr().err


def test_without_the_sdk(capsys: Any, server: ManagementServer, monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "openrouter", None)
    code, _, err = run_cli(capsys, server, "list")
    assert code == 1
    assert err == "gateway-otel: the openrouter SDK is not installed: pip install 'gateway-otel[openrouter]'\n"


def test_masking_is_pure() -> None:
    assert _broadcast.mask_config(
        {"password": "short", "token": "0123456789abcdefXYZW", "host": "db.example.com", "nested": {"secretKey": "s"}}
    ) == {"password": "****", "token": "****XYZW", "host": "db.example.com", "nested": {"secretKey": "****"}}


def test_get_in_a_workspace(capsys: Any, server: ManagementServer) -> None:
    code, out, _ = run_cli(
        capsys, server, "get", "99999999-aaaa-bbbb-cccc-000000000005", "--workspace", WORKSPACE, "--json"
    )
    assert code == 0 and json.loads(out)["type"] == "datadog"
    assert all(r.query.get("workspace_id") == WORKSPACE for r in server.requests)
    code, _, err = run_cli(capsys, server, "get", "nope", "--workspace", WORKSPACE)
    assert code == 1 and err == f"gateway-otel: no such destination: nope in workspace {WORKSPACE}\n"


def test_a_bug_is_not_disguised_as_an_api_error(server: ManagementServer, monkeypatch: Any) -> None:
    monkeypatch.setattr(_broadcast, "_from_sdk", lambda model: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        _broadcast.list_broadcast_destinations(KEY, url=server.url)
