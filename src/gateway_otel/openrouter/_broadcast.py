"""OpenRouter Broadcast: the observability destinations OpenRouter itself exports to, through the official
`openrouter` SDK (optional extra `gateway-otel[openrouter]`).

`list_broadcast_destinations()` walks every page of `observability.list()`; `get_broadcast_destination(id)` reads
one. Every destination is read from its JSON (the SDK's typed model dumped, or the raw dict of one the SDK could
not type), so a destination type the SDK does not know yet, or one missing a field, is still shown as what it is.
Secrets are masked here, whatever the API returned; the management key never appears in a result or an error.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .._env import parse_url
from .._errors import BroadcastError, ConfigurationError
from .._secrets import mask, url_without_credentials

logger = logging.getLogger("gateway_otel")

__all__ = [
    "DEFAULT_SERVER_URL",
    "BroadcastDestination",
    "BroadcastError",
    "get_broadcast_destination",
    "list_broadcast_destinations",
    "management_key",
]

DEFAULT_SERVER_URL = "https://openrouter.ai/api/v1"
KEY_VARIABLES = ("OPENROUTER_MANAGEMENT_KEY", "OPENROUTER_API_KEY")
SERVER_URL_VARIABLE = "GATEWAY_OTEL_OPENROUTER_URL"
_MAX_PAGE = 100
_MAX_PAGES = 1000  # a server that never stops paginating must not hang the command
_SECRET_KEY = re.compile(r"key|secret|token|password|dsn|credential|auth", re.IGNORECASE)
_NOT_SECRET = frozenset({"spaceKey", "publicKey"})  # identifiers, not credentials (still masked if the API did)
_URL_KEYS = ("baseUrl", "endpoint", "url", "otlpEndpoint", "host")
_STATUS_TEXT = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(frozen=True)
class BroadcastDestination:
    """One of OpenRouter's observability (Broadcast) destinations, secrets masked."""

    id: str
    type: str
    name: str | None
    enabled: bool | None
    privacy_mode: bool | None
    sampling_rate: float | None
    regions: tuple[str, ...] = ()
    workspace_id: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    """The type's settings (camelCase, as the API names them), every secret masked."""
    typed: bool = True
    """False when the SDK did not recognise the destination (a newer type, or a shape it rejects)."""

    @property
    def target(self) -> str:
        """Where it sends, in a few words: the project and the host, never a credential."""
        config = self.config
        parts = []
        for key in ("modelId", "project", "projectName", "mlApp", "projectId", "database", "bucketName", "entity"):
            value = config.get(key)
            if isinstance(value, str) and value:
                parts.append(f"{key}={value}")
        host = self.host
        if host:
            parts.append(host)
        return " ".join(parts)

    @property
    def host(self) -> str | None:
        """The host its configured URL points at (lowercase), if it has one."""
        for key in _URL_KEYS:
            value = self.config.get(key)
            if isinstance(value, str) and value:
                return _host(value)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "enabled": self.enabled,
            "privacy_mode": self.privacy_mode,
            "sampling_rate": self.sampling_rate,
            "regions": list(self.regions),
            "workspace_id": self.workspace_id,
            "config": dict(self.config),
            "known_type": self.typed,
        }


def _host(value: str) -> str | None:
    parts = urlsplit(value if "://" in value else f"https://{value}")
    return (parts.hostname or "").lower() or None


def mask_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Destination settings with every credential masked: secret-named keys, all header values, URL user info."""
    masked: dict[str, Any] = {}
    for key, value in config.items():
        if value is None:
            continue
        if key == "headers" and isinstance(value, Mapping):
            masked[key] = {name: mask(v) for name, v in value.items()}
        elif isinstance(value, Mapping):
            masked[key] = mask_config(value)
        elif _SECRET_KEY.search(key) and key not in _NOT_SECRET:
            masked[key] = mask(value)
        elif isinstance(value, str) and "://" in value:
            masked[key] = url_without_credentials(value, query="mask")
        else:
            masked[key] = value
    return masked


def _optional(value: Any, kind: type) -> Any:
    if kind is float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return value if isinstance(value, kind) else None


def from_json(data: Mapping[str, Any], *, typed: bool = True) -> BroadcastDestination:
    """A destination from the API's JSON object (snake_case fields, camelCase `config`)."""
    config = data.get("config")
    regions = data.get("regions")
    return BroadcastDestination(
        id=str(data.get("id") or "?"),
        type=str(data.get("type") or "unknown"),
        name=_optional(data.get("name"), str),
        enabled=_optional(data.get("enabled"), bool),
        privacy_mode=_optional(data.get("privacy_mode"), bool),
        sampling_rate=_optional(data.get("sampling_rate"), float),
        regions=tuple(str(r) for r in regions) if isinstance(regions, list) else (),
        workspace_id=_optional(data.get("workspace_id"), str),
        config=mask_config(config) if isinstance(config, Mapping) else {},
        typed=typed,
    )


def _from_sdk(model: Any) -> BroadcastDestination:
    raw = getattr(model, "raw", None)
    if getattr(model, "is_unknown", False) and isinstance(raw, Mapping):
        return from_json(raw, typed=False)
    return from_json(model.model_dump(mode="json", by_alias=True))


def management_key(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(key, the variable it came from): `OPENROUTER_MANAGEMENT_KEY`, else `OPENROUTER_API_KEY`; None when unset."""
    env = os.environ if environ is None else environ
    for name in KEY_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            return value, name
    return None


def server_url(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    name, value = ("--server-url", explicit) if explicit else (SERVER_URL_VARIABLE, env.get(SERVER_URL_VARIABLE))
    if not value or not value.strip():
        return DEFAULT_SERVER_URL
    return parse_url(name, value.strip())


def _client(key: str, url: str, retry_seconds: float) -> tuple[Any, Any]:
    try:
        from openrouter import OpenRouter, utils
    except ImportError:
        raise BroadcastError("the openrouter SDK is not installed: pip install 'gateway-otel[openrouter]'") from None
    if retry_seconds < 0:
        raise ConfigurationError(f"retry_seconds={retry_seconds!r} is not valid: expected 0 or more seconds")
    backoff = utils.BackoffStrategy(200, 4000, 1.5, int(retry_seconds * 1000), jitter_ms=250)
    retries = utils.RetryConfig("backoff", backoff, True)
    return OpenRouter(api_key=key, server_url=url, retry_config=retries, timeout_ms=30_000), retries


def _is_transport_error(exc: BaseException) -> bool:
    """A connection failure or timeout of the SDK's HTTP client (httpx), without importing httpx."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return type(exc).__module__.startswith("httpx") and bool(names & {"NetworkError", "TimeoutException"})


def _error(exc: BaseException, key: str, url: str, retry_seconds: float, what: str) -> BroadcastError | None:
    """One clear line for what the SDK raised (the key never appears in it); None for a bug, to re-raise."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        if status == 401:
            text = (
                f"OpenRouter rejected the management key (401): {' or '.join(KEY_VARIABLES)} is missing or wrong; "
                "create a management key at https://openrouter.ai/settings/management-keys"
            )
        elif status == 403:
            text = (
                "OpenRouter refused (403): this key may not manage observability destinations; "
                "set OPENROUTER_MANAGEMENT_KEY to a management key"
            )
        elif status == 404:
            text = f"no such destination: {what} (404)" if what else f"not found at {url} (404)"
        elif status >= 500:
            reason = _STATUS_TEXT.get(status, "server error")
            text = (
                f"OpenRouter answered {status} ({reason}) to every attempt for {retry_seconds:g} s; "
                "try again later (see https://status.openrouter.ai)"
            )
        else:
            data = getattr(exc, "data", None)
            message = getattr(getattr(data, "error", None), "message", None) or str(exc)
            text = f"OpenRouter answered {status}: {message}"
    elif type(exc).__name__ == "ResponseValidationError":
        text = f"OpenRouter's answer did not have the documented shape: {str(exc).splitlines()[0]}"
    elif _is_transport_error(exc):
        text = f"cannot reach OpenRouter at {url}: {type(exc).__name__}: {exc}"
    else:
        return None
    return BroadcastError(text.replace(key, "[REDACTED]") if key else text, status if isinstance(status, int) else None)


def _call(key: str, url: str, retry_seconds: float, what: str, action: Any) -> Any:
    client, retries = _client(key, url, retry_seconds)
    try:
        with client:
            return action(client, retries)
    except BroadcastError:
        raise
    except Exception as exc:  # whatever the SDK raises: one clear line for the known kinds, the rest re-raised
        error = _error(exc, key, url, retry_seconds, what)
        if error is None:
            raise
        logger.debug("openrouter SDK raised %s: %s", type(exc).__qualname__, error)  # no traceback: it may hold the key
        raise error from None


def list_broadcast_destinations(
    key: str,
    *,
    workspace_id: str | None = None,
    page_size: int = _MAX_PAGE,
    url: str = DEFAULT_SERVER_URL,
    retry_seconds: float = 20.0,
) -> list[BroadcastDestination]:
    """Every destination of the workspace (the key's default one when `workspace_id` is None), all pages."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= _MAX_PAGE:
        raise ConfigurationError(f"limit={page_size!r} is not valid: expected a page size from 1 to {_MAX_PAGE}")

    def walk(client: Any, retries: Any) -> list[BroadcastDestination]:
        found: list[BroadcastDestination] = []
        page = client.observability.list(limit=page_size, workspace_id=workspace_id, retries=retries)
        for _ in range(_MAX_PAGES):
            if page is None:
                return found
            found.extend(_from_sdk(d) for d in page.result.data)
            page = page.next()
        raise BroadcastError(f"OpenRouter kept paginating past {_MAX_PAGES} pages of {page_size}; stopped")

    return _call(key, url, retry_seconds, "", walk)


def get_broadcast_destination(
    destination_id: str,
    key: str,
    *,
    workspace_id: str | None = None,
    url: str = DEFAULT_SERVER_URL,
    retry_seconds: float = 20.0,
) -> BroadcastDestination:
    """One destination by its id (a UUID)."""

    def get(client: Any, retries: Any) -> BroadcastDestination:
        get_one = client.observability.get
        if workspace_id is None or "workspace_id" in inspect.signature(get_one).parameters:
            scope = {} if workspace_id is None else {"workspace_id": workspace_id}
            return _from_sdk(get_one(id=destination_id, retries=retries, **scope).data)
        # SDK 1.3.84's get() takes no workspace_id (its docs say it does): find it in that workspace's list.
        page = client.observability.list(limit=_MAX_PAGE, workspace_id=workspace_id, retries=retries)
        for _ in range(_MAX_PAGES):
            if page is None:
                break
            for item in page.result.data:
                found = _from_sdk(item)
                if found.id == destination_id:
                    return found
            page = page.next()
        raise BroadcastError(f"no such destination: {destination_id} in workspace {workspace_id}")

    return _call(key, url, retry_seconds, destination_id, get)
