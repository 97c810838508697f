"""Destination presets: each backend's well-known variables → one typed, checked `Destination`.

- `otlp`: `OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT}`; traces, metrics, logs.
- `openobserve`: `OPENOBSERVE_URL` (http://localhost:5080), `OPENOBSERVE_ORG` (default), `OPENOBSERVE_AUTH_TOKEN`
  or `OPENOBSERVE_EMAIL` + `OPENOBSERVE_PASSWORD`, `OPENOBSERVE_TRACES_STREAM_NAME` (default),
  `OPENOBSERVE_LOGS_STREAM_NAME` (default), `OPENOBSERVE_PROTOCOL` (http/protobuf), `OPENOBSERVE_TIMEOUT` (30);
  traces, metrics and logs.
- `arize`: `ARIZE_SPACE_ID`, `ARIZE_API_KEY` (both required), `ARIZE_PROJECT_NAME` (default),
  `ARIZE_COLLECTOR_ENDPOINT` (https://otlp.arize.com/v1), `ARIZE_PROTOCOL` (grpc); traces.
- `phoenix`: `PHOENIX_COLLECTOR_ENDPOINT` (http://localhost:6006), `PHOENIX_PROJECT_NAME` / `PHOENIX_PROJECT`
  (default), `PHOENIX_API_KEY`; traces.
- `console`: traces and metrics to stdout.
- `local`: traces and logs into a SQLite file, `GATEWAY_OTEL_LOCAL_PATH` (the per-user data directory's
  `gateway-otel/telemetry.db`), with retention `GATEWAY_OTEL_LOCAL_MAX_AGE` (30d) and
  `GATEWAY_OTEL_LOCAL_MAX_SIZE_MB` (500); the default when no destination is configured.

Every destination also takes `GATEWAY_OTEL_<ID>_ENABLED` (true), `GATEWAY_OTEL_<ID>_PRIVACY_MODE` (false) and
`GATEWAY_OTEL_<ID>_SAMPLING_RATE` (1.0), where `<ID>` is the preset name in upper case.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .._env import get as _get
from .._env import parse_bool, parse_seconds, parse_url
from .._errors import ConfigurationError
from .._secrets import mask, url_without_credentials
from ..store import store_config
from ._otlp import PROTOCOLS, otlp_target

_SHOWN_HEADERS = frozenset(
    {"stream-name", "organization", "x-project-name", "arize-space-id", "space_id", "arize-interface", "content-type"}
)
"""The headers our presets set that name a place, not a credential: shown as they are. Every other header value
(`x-honeycomb-team`, `dd-api-key`, `signoz-ingestion-key`, `authorization`...) is masked with the one rule."""


@dataclass(frozen=True)
class Destination:
    """One place this process exports to, as OpenRouter's destinations API describes its own."""

    id: str
    type: str
    name: str
    endpoint: str
    protocol: str = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 10.0
    enabled: bool = True
    privacy_mode: bool = False
    sampling_rate: float = 1.0
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    metrics_endpoint: str | None = None
    """Where metrics go; None when the backend takes no metrics."""
    logs_endpoint: str | None = None
    """Where log records go; None when the backend takes no logs."""
    logs_headers: Mapping[str, str] | None = field(default=None, repr=False)
    """Headers for log records when they differ from the traces' (OpenObserve's logs stream)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Settings particular to one preset (the local store's path and retention)."""

    @property
    def masked_headers(self) -> dict[str, str]:
        return {k: v if k.lower() in _SHOWN_HEADERS else mask(v) for k, v in self.headers.items()}

    @property
    def shown_endpoint(self) -> str:
        """The endpoint as shown to a person: no user-info, the query string masked."""
        return _shown(self.endpoint) or ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, secrets masked."""
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "enabled": self.enabled,
            "privacy_mode": self.privacy_mode,
            "sampling_rate": self.sampling_rate,
            "endpoint": _shown(self.endpoint),
            "protocol": self.protocol,
            "headers": self.masked_headers,
            "resource_attributes": dict(self.resource_attributes),
            "metrics_endpoint": _shown(self.metrics_endpoint),
            **({"options": dict(self.options)} if self.options else {}),
        }


def _shown(url: str | None) -> str | None:
    return url_without_credentials(url, query="mask") if url and "://" in url else url


def _require(env: Mapping[str, str], name: str, what: str) -> str:
    value = _get(env, name)
    if value is None:
        raise ConfigurationError(f"{name} is not set: expected {what}")
    return value


def _protocol(env: Mapping[str, str], name: str, default: str) -> str:
    value = (_get(env, name, default) or default).lower()
    if value not in PROTOCOLS:
        raise ConfigurationError(f"{name}={value!r} is not valid: expected http/protobuf or grpc")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name)
    return default if raw is None else parse_seconds(name, raw)


@dataclass(frozen=True)
class OpenObserveSettings:
    """OpenObserve's variables, parsed once; the exporter preset and the query backend both read these."""

    url: str
    org: str
    token: str = field(repr=False)
    traces_stream: str
    logs_stream: str
    protocol: str
    timeout: float


def openobserve_settings(env: Mapping[str, str]) -> OpenObserveSettings:
    url = parse_url("OPENOBSERVE_URL", _get(env, "OPENOBSERVE_URL", "http://localhost:5080") or "")
    org = _get(env, "OPENOBSERVE_ORG", "default") or "default"
    token = _get(env, "OPENOBSERVE_AUTH_TOKEN")
    if token is None:
        email, password = _get(env, "OPENOBSERVE_EMAIL"), _get(env, "OPENOBSERVE_PASSWORD")
        if not (email and password):
            raise ConfigurationError(
                "OPENOBSERVE_AUTH_TOKEN is not set: expected 'Basic <base64 of email:password>' "
                "(or set OPENOBSERVE_EMAIL and OPENOBSERVE_PASSWORD)"
            )
        token = "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()
    elif not token.lower().startswith(("basic ", "bearer ")):
        token = f"Basic {token}"
    return OpenObserveSettings(
        url=url,
        org=org,
        token=token,
        traces_stream=_get(env, "OPENOBSERVE_TRACES_STREAM_NAME", "default") or "default",
        logs_stream=_get(env, "OPENOBSERVE_LOGS_STREAM_NAME", "default") or "default",
        protocol=_protocol(env, "OPENOBSERVE_PROTOCOL", "http/protobuf"),
        timeout=_seconds(env, "OPENOBSERVE_TIMEOUT", 30.0),
    )


def _openobserve_preset(env: Mapping[str, str]) -> dict[str, Any]:
    oo = openobserve_settings(env)
    url, org, token, stream, logs_stream, timeout = (
        oo.url,
        oo.org,
        oo.token,
        oo.traces_stream,
        oo.logs_stream,
        oo.timeout,
    )
    if oo.protocol == "grpc":
        host = urlsplit(url).netloc.rsplit(":", 1)[0]
        headers = {"authorization": token, "organization": org, "stream-name": stream}
        return {
            "endpoint": f"{'http' if url.startswith('http://') else 'https'}://{host}:5081",
            "protocol": oo.protocol,
            "headers": headers,
            "timeout": timeout,
            "metrics_endpoint": f"{host}:5081",
            "logs_endpoint": f"{host}:5081",
            "logs_headers": {**headers, "stream-name": logs_stream},
        }
    return {
        "endpoint": f"{url}/api/{org}/v1/traces",
        "protocol": oo.protocol,
        "timeout": timeout,
        "headers": {"authorization": token, "stream-name": stream},
        "metrics_endpoint": f"{url}/api/{org}/v1/metrics",
        "logs_endpoint": f"{url}/api/{org}/v1/logs",
        "logs_headers": {"authorization": token, "stream-name": logs_stream},
    }


def _arize_preset(env: Mapping[str, str]) -> dict[str, Any]:
    space = _require(env, "ARIZE_SPACE_ID", "your Arize space id (Space settings → API keys)")
    key = _require(env, "ARIZE_API_KEY", "your Arize API key")
    project = _get(env, "ARIZE_PROJECT_NAME", "default") or "default"
    protocol = _protocol(env, "ARIZE_PROTOCOL", "grpc")
    endpoint = parse_url(
        "ARIZE_COLLECTOR_ENDPOINT", _get(env, "ARIZE_COLLECTOR_ENDPOINT", "https://otlp.arize.com/v1") or ""
    )
    if protocol != "grpc" and not endpoint.endswith("/traces"):
        endpoint += "/traces"  # Arize ingests at /v1/traces only
    headers = {
        "authorization": key,
        "api_key": key,
        "arize-space-id": space,
        "space_id": space,
        "arize-interface": "otel",
    }
    return {
        "endpoint": endpoint,
        "protocol": protocol,
        "headers": headers,
        "resource_attributes": {"openinference.project.name": project},
        "metrics_endpoint": None,
    }


@dataclass(frozen=True)
class PhoenixSettings:
    """Phoenix's variables, parsed once; the exporter preset and the query backend both read these."""

    base_url: str  # the server, e.g. http://localhost:6006 (REST API under /v1/...)
    traces_endpoint: str
    project: str
    api_key: str | None = field(default=None, repr=False)


def phoenix_settings(env: Mapping[str, str]) -> PhoenixSettings:
    raw = _get(env, "PHOENIX_COLLECTOR_ENDPOINT", "http://localhost:6006") or ""
    base = parse_url("PHOENIX_COLLECTOR_ENDPOINT", raw)
    endpoint = base if base.endswith("/v1/traces") else f"{base}/v1/traces"
    return PhoenixSettings(
        base_url=endpoint.removesuffix("/v1/traces"),
        traces_endpoint=endpoint,
        project=_get(env, "PHOENIX_PROJECT_NAME") or _get(env, "PHOENIX_PROJECT") or "default",
        api_key=_get(env, "PHOENIX_API_KEY"),
    )


def _phoenix_preset(env: Mapping[str, str]) -> dict[str, Any]:
    px = phoenix_settings(env)
    headers = {"x-project-name": px.project}
    if px.api_key:
        headers["authorization"] = f"Bearer {px.api_key}"
    return {
        "endpoint": px.traces_endpoint,
        "headers": headers,
        "resource_attributes": {"openinference.project.name": px.project},
        "metrics_endpoint": None,
    }


def _otlp_preset(env: Mapping[str, str]) -> dict[str, Any]:
    traces, metrics, logs = otlp_target(env, "TRACES"), otlp_target(env, "METRICS"), otlp_target(env, "LOGS")
    return {
        "endpoint": traces.endpoint,
        "protocol": traces.protocol,
        "headers": traces.headers,
        "timeout": traces.timeout,
        "metrics_endpoint": metrics.endpoint,
        "logs_endpoint": logs.endpoint,
        "logs_headers": logs.headers,
    }


def _console_preset(env: Mapping[str, str]) -> dict[str, Any]:
    return {"endpoint": "stdout", "protocol": "console", "metrics_endpoint": "stdout", "logs_endpoint": "stdout"}


def _local_preset(env: Mapping[str, str]) -> dict[str, Any]:
    config = store_config(env)
    return {
        "endpoint": str(config.path),
        "protocol": "sqlite",
        "metrics_endpoint": None,
        "logs_endpoint": str(config.path),
        "options": config.to_options(),
    }


PRESETS: dict[str, tuple[str, Callable[[Mapping[str, str]], dict[str, Any]]]] = {
    "otlp": ("OTLP", _otlp_preset),
    "openobserve": ("OpenObserve", _openobserve_preset),
    "arize": ("Arize AX", _arize_preset),
    "phoenix": ("Phoenix", _phoenix_preset),
    "console": ("Console", _console_preset),
    "local": ("Local (SQLite)", _local_preset),
}


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    return default if raw is None else parse_bool(name, raw)


def resolve(preset: str, env: Mapping[str, str]) -> Destination:
    """The destination called `preset`, from its variables; a wrong or missing one raises `ConfigurationError`."""
    display, build = PRESETS[preset]
    prefix = f"GATEWAY_OTEL_{preset.upper()}_"
    enabled = parse_bool(prefix + "ENABLED", env[prefix + "ENABLED"]) if _get(env, prefix + "ENABLED") else True
    privacy = (
        parse_bool(prefix + "PRIVACY_MODE", env[prefix + "PRIVACY_MODE"])
        if _get(env, prefix + "PRIVACY_MODE")
        else False
    )
    rate_raw = _get(env, prefix + "SAMPLING_RATE")
    rate = 1.0
    if rate_raw is not None:
        try:
            rate = float(rate_raw)
        except ValueError:
            rate = -1.0
        if not 0 < rate <= 1:
            raise ConfigurationError(f"{prefix}SAMPLING_RATE={rate_raw!r} is not valid: expected a number in (0, 1]")
    settings = build(env) if enabled else {"endpoint": "", "metrics_endpoint": None}
    return Destination(
        id=preset, type=preset, name=display, enabled=enabled, privacy_mode=privacy, sampling_rate=rate, **settings
    )
