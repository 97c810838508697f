"""What the simulator reads of a request: its headers (case-insensitive, credentials kept redacted), the request as
recorded for tests, whether it carries a credential, and whether it was sent to a provider's own host."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._prices import PROVIDER_IDS
from ..gateways import detect_gateway

_SENSITIVE_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"})


class Headers(Mapping[str, str]):
    """A read-only header mapping with case-insensitive lookup; credentials are stored redacted."""

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self._items = {k.lower(): (k, _redact(k, v)) for k, v in pairs}

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


def _redact(name: str, value: str) -> str:
    if name.lower() not in _SENSITIVE_HEADERS:
        return value
    scheme, _, secret = value.partition(" ")
    return f"{scheme} [REDACTED]" if secret else "[REDACTED]"


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the simulator received it, so a test can assert what the client really sent."""

    method: str
    path: str
    headers: Headers
    """Case-insensitive; `Authorization` and other credentials are redacted (the simulator never keeps a key)."""
    body: Any
    """The parsed JSON body (None when the body was empty or not JSON)."""


def to_direct_provider(headers: Mapping[str, str]) -> bool:
    """Whether the request's `Host` is a provider called directly (one `_prices` knows: OpenAI, Azure, Groq...)."""
    host = next((v for k, v in headers.items() if k.lower() == "host"), "")
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return bool(name) and detect_gateway(name).name in PROVIDER_IDS


def has_credential(headers: Mapping[str, str]) -> bool:
    """Whether the request carries a non-empty bearer credential (its value is never looked at further)."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, secret = value.strip().partition(" ")
    return bool(secret.strip()) if scheme.lower() == "bearer" else bool(scheme)
