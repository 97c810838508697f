"""docker-compose.yml, deploy/otel-collector.yaml and .env.example: valid, consistent with each other, and complete.

No Docker engine is needed. `docker-compose config -q` runs when the binary is installed (tests/run.sh installs
compose v1 when it is missing: `apt-get install -y --no-install-recommends docker-compose`); under CI (`CI=true`) a
missing binary fails the test instead of skipping it. The structural checks need PyYAML and skip without it; the
.env.example checks need nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
COLLECTOR = ROOT / "deploy" / "otel-collector.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

ENV_VARIABLES = (
    "OPENROUTER_API_KEY",
    "OPENOBSERVE_URL",
    "OPENOBSERVE_ORG",
    "OPENOBSERVE_AUTH_TOKEN",
    "OPENOBSERVE_TRACES_STREAM_NAME",
    "ZO_ROOT_USER_EMAIL",
    "ZO_ROOT_USER_PASSWORD",
    "ARIZE_SPACE_ID",
    "ARIZE_API_KEY",
    "ARIZE_PROJECT_NAME",
    "PHOENIX_COLLECTOR_ENDPOINT",
    "PHOENIX_PROJECT_NAME",
    "PHOENIX_API_KEY",
    "GATEWAY_OTEL_DESTINATIONS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def test_compose_file_validates_with_docker_compose() -> None:
    """The engine-free validation a user's `docker-compose up` would do first (v1 rejects inline `configs:`)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        install = "apt-get install -y --no-install-recommends docker-compose"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but docker-compose is not installed: tests/run.sh should have run `{install}`")
        pytest.skip(f"docker-compose not installed ({install})")
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout


def _load(path: Path) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed for the structural checks")
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def _published(service: dict[str, Any]) -> dict[int, int]:
    """`"[ip:]host:container[/proto]"` port strings → {container port: host port}."""
    out: dict[int, int] = {}
    for entry in service.get("ports", []):
        *_, host, container = str(entry).split("/")[0].split(":")
        out[int(container)] = int(host)
    return out


def test_compose_services_ports_and_collector_mount() -> None:
    services = _load(COMPOSE)["services"]
    assert {"openobserve", "phoenix", "otel-collector"} <= set(services)

    openobserve = services["openobserve"]
    assert openobserve["image"] == "public.ecr.aws/zinclabs/openobserve:latest"
    assert _published(openobserve) == {5080: 5080, 5081: 5081}
    assert re.fullmatch(r"\$\{ZO_ROOT_USER_EMAIL:-[^}]+\}", openobserve["environment"]["ZO_ROOT_USER_EMAIL"])
    assert re.fullmatch(r"\$\{ZO_ROOT_USER_PASSWORD:-[^}]+\}", openobserve["environment"]["ZO_ROOT_USER_PASSWORD"])
    assert any(str(v).endswith(":/data") for v in openobserve["volumes"]), "OpenObserve needs a data volume"

    phoenix = services["phoenix"]
    assert phoenix["image"] == "arizephoenix/phoenix:latest"
    assert _published(phoenix) == {6006: 6006, 4317: 4317}

    collector = services["otel-collector"]
    assert collector["image"] == "otel/opentelemetry-collector-contrib:latest"
    assert _published(collector) == {4318: 4318, 4317: 14317}
    mounts = [str(v).split(":") for v in collector["volumes"]]
    sources = {source: target for source, target, *_ in mounts}
    assert sources.get("./deploy/otel-collector.yaml") == "/etc/otelcol-contrib/config.yaml"
    assert (COMPOSE.parent / "deploy" / "otel-collector.yaml").is_file()
    assert "OPENOBSERVE_AUTH_TOKEN" in collector["environment"]


def test_collector_fans_traces_out_to_openobserve_and_phoenix() -> None:
    config = _load(COLLECTOR)
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert "batch" in config["processors"]
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"] and "batch" in traces["processors"]

    exporters = {name: config["exporters"][name] for name in traces["exporters"]}
    by_endpoint = {exporter["endpoint"]: (name, exporter) for name, exporter in exporters.items()}
    assert set(by_endpoint) == {"http://openobserve:5080/api/default", "http://phoenix:6006"}
    for name, _ in by_endpoint.values():
        assert name.split("/")[0] == "otlphttp", name  # Phoenix takes protobuf over HTTP only

    _, openobserve = by_endpoint["http://openobserve:5080/api/default"]
    assert openobserve["headers"]["Authorization"] == "${env:OPENOBSERVE_AUTH_TOKEN}"
    assert openobserve["headers"]["stream-name"] == "default"
    for name in ("grpc", "http"):  # inside a container the receivers must not listen on localhost only
        assert config["receivers"]["otlp"]["protocols"][name]["endpoint"].startswith("0.0.0.0:")


def _env_example() -> dict[str, str]:
    """Variable → value, commented-out assignments (`# NAME=value`) included."""
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            out[match[1]] = match[2]
    return out


def test_env_example_lists_every_variable_with_placeholders() -> None:
    variables = _env_example()
    assert set(ENV_VARIABLES) <= set(variables), sorted(set(ENV_VARIABLES) - set(variables))
    compose_variables = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    assert compose_variables <= set(variables), sorted(compose_variables - set(variables))
    for name, value in variables.items():
        # A long unbroken run of letters and digits looks like a real key or base64 token; placeholders are words.
        assert not re.search(r"[A-Za-z0-9+/=]{20,}", value), (name, value)
