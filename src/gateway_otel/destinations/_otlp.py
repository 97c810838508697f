"""The standard OTLP exporter variables, read the way the OpenTelemetry SDK reads them.

`OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT}`: the signal-specific variable wins
over the general one; an HTTP endpoint from the general variable gets the signal's path (`v1/traces`...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from .._env import first, parse_seconds, parse_url
from .._errors import ConfigurationError

PROTOCOLS = ("http/protobuf", "grpc")
_HTTP_PATHS = {"TRACES": "v1/traces", "METRICS": "v1/metrics", "LOGS": "v1/logs"}
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
"""Either one set makes `otlp` the default destination."""
_DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}
"""Where the SDK's exporters send when no endpoint is set, as the specification says."""


def otlp_default_endpoint(protocol: str) -> str:
    return _DEFAULT_ENDPOINTS.get(protocol, _DEFAULT_ENDPOINTS["http/protobuf"])


def defaulted_signals(env: Mapping[str, str]) -> list[str]:
    """The signals (`traces`, `metrics`, `logs`) with no endpoint variable set, so sent to the default endpoint."""
    return [
        signal.lower()
        for signal in _HTTP_PATHS
        if not first(env, f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    ]


@dataclass(frozen=True)
class OtlpTarget:
    """Where and how one OTLP signal is sent, as read from the environment."""

    protocol: str
    endpoint: str
    headers: dict[str, str]
    timeout: float


def _parse_headers(name: str, raw: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(
                f"{name} is not valid: expected comma-separated key=value pairs (e.g. 'key1=value1,key2=value2')"
            )
        headers[unquote(key.strip()).lower()] = unquote(value.strip())
    return headers


def otlp_target(env: Mapping[str, str], signal: str) -> OtlpTarget:
    """The OTLP settings for `signal` (`TRACES` or `METRICS`): signal-specific variable first, then the general one."""
    found = first(env, f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = found[1].lower() if found else "http/protobuf"
    if found and protocol not in PROTOCOLS:
        raise ConfigurationError(f"{found[0]}={found[1]!r} is not valid: expected one of {', '.join(PROTOCOLS)}")
    specific = first(env, f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    general = first(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    source, endpoint = specific or general or ("", _DEFAULT_ENDPOINTS["grpc"] if protocol == "grpc" else "")
    if protocol != "grpc" and endpoint:
        parse_url(source, endpoint)  # a host, a port in range, no credentials echoed in the error
    if protocol != "grpc" and not specific:
        endpoint = f"{(endpoint or _DEFAULT_ENDPOINTS[protocol]).rstrip('/')}/{_HTTP_PATHS[signal]}"
    header_source = first(env, f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    headers = _parse_headers(*header_source) if header_source else {}
    timeout_source = first(env, f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    timeout = parse_seconds(*timeout_source) if timeout_source else 10.0
    return OtlpTarget(protocol, endpoint, headers, timeout)
