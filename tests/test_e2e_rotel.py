"""End to end through a real collector: the application exports with the generic `otlp` preset (standard
`OTEL_EXPORTER_OTLP_*` variables only) to `rotel`, which forwards the traces to a real Phoenix — over OTLP/HTTP and
over gRPC. The calls go through the real LiteLLM proxy, as in `test_e2e_litellm.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from e2e_support import E2E, new_project, run_app
from litellm_proxy import MOCK_REPLY, LiteLLMProxy
from phoenix_server import PhoenixServer
from rotel_collector import RotelCollector, ensure_rotel_env

pytestmark = E2E

SCENARIOS = ["chat", "stream_usage", "rate_limit"]


@pytest.fixture(scope="module")
def rotel(phoenix: PhoenixServer) -> Iterator[RotelCollector]:
    with RotelCollector(ensure_rotel_env(), phoenix.url) as collector:
        yield collector


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_otlp_preset_through_a_collector(
    protocol: str,
    phoenix: PhoenixServer,
    litellm_proxy: LiteLLMProxy,
    rotel: RotelCollector,
) -> None:
    project = new_project("e2e-rotel")
    env = {
        "OPENAI_BASE_URL": litellm_proxy.base_url,
        "OPENAI_API_KEY": litellm_proxy.key,
        "GATEWAY_OTEL_DESTINATIONS": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": rotel.http_endpoint if protocol == "http/protobuf" else rotel.grpc_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_SERVICE_NAME": "e2e-app",
        # With a plain OTLP exporter the Phoenix project is a resource attribute, as Phoenix documents it.
        "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
    }
    seen = run_app(env, SCENARIOS)
    assert seen["chat"]["text"] == MOCK_REPLY

    try:
        found = phoenix.wait_for_spans(project, len(SCENARIOS))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rotel.log_tail(2000)}") from None
    spans: dict[str, dict[str, Any]] = {}
    for span in found:
        user = span["attributes"].get("user.id", "")
        assert user not in spans, f"two spans for {user!r}"
        spans[user.removeprefix("e2e-")] = span
    assert sorted(spans) == sorted(SCENARIOS)

    chat = spans["chat"]
    assert chat["name"] == "chat mock-gpt" and chat["status_code"] == "OK"
    assert chat["attributes"]["gateway.name"] == "litellm"
    assert chat["attributes"]["gen_ai.response.model"] == "openai/gpt-4o-mini"
    assert chat["attributes"]["gen_ai.usage.cost"] > 0
    stream = spans["stream_usage"]["attributes"]
    assert stream["gateway.stream.outcome"] == "completed" and stream["llm.token_count.total"] > 0
    limited = spans["rate_limit"]
    assert limited["status_code"] == "ERROR" and limited["attributes"]["error.type"] == "429"
