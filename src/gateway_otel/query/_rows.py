"""Reading remote backends: span attributes → SpanRow's lifted fields, time parsing, and one small JSON HTTP client.

Every backend stores the same span attributes under its own key spelling (Phoenix keeps dotted keys, OpenObserve
flattens them to `gen_ai_usage_input_tokens`); `lift` takes a key-spelling function so the lifting is written once.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._model import QueryError

_MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
_PROVIDER = ("gateway.upstream.provider", "gen_ai.provider.name", "llm.provider")
_INPUT = ("gen_ai.usage.input_tokens", "llm.token_count.prompt")
_OUTPUT = ("gen_ai.usage.output_tokens", "llm.token_count.completion")
_COST = ("gen_ai.usage.cost", "llm.cost.total")
_SESSION = ("session.id", "gen_ai.conversation.id")


def _first(attrs: Mapping[str, Any], key: Callable[[str], str], names: tuple[str, ...]) -> Any:
    for name in names:
        value = attrs.get(key(name))
        if value is not None and value != "":
            return value
    return None


def _int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def lift(attrs: Mapping[str, Any], key: Callable[[str], str] = lambda name: name) -> dict[str, Any]:
    """SpanRow's LLM fields from span attributes; `key` spells an attribute name the way the backend stores it."""
    ttft_seconds = _float(_first(attrs, key, ("gen_ai.response.time_to_first_chunk",)))
    return {
        "operation": _str(_first(attrs, key, ("gen_ai.operation.name",))),
        "model": _str(_first(attrs, key, _MODEL)),
        "request_model": _str(_first(attrs, key, ("gen_ai.request.model",))),
        "provider": _str(_first(attrs, key, _PROVIDER)),
        "gateway": _str(_first(attrs, key, ("gateway.name",))),
        "input_tokens": _int(_first(attrs, key, _INPUT)),
        "output_tokens": _int(_first(attrs, key, _OUTPUT)),
        "cost": _float(_first(attrs, key, _COST)),
        "time_to_first_token_ms": None if ttft_seconds is None else ttft_seconds * 1000,
        "session_id": _str(_first(attrs, key, _SESSION)),
    }


_FRACTION = re.compile(r"\.(\d+)")


def parse_iso(text: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime (accepts `Z` and any number of fractional digits)."""
    value = text.strip().replace("Z", "+00:00").replace(" ", "T", 1)
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value, count=1)
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def from_unix_ns(ns: Any) -> datetime:
    seconds, rest = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=rest // 1000)


def to_unix_us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def display_url(url: str, *, query: bool = False) -> str:
    """The URL without any user:password part (and without its query unless asked), for messages and requests."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query if query else "", ""))


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urlsplit(url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never proxy loopback
    return urllib.request.build_opener()


def request_json(
    what: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: float,
    body: Any = None,
    describe_error: Callable[[int, Any], str] | None = None,
) -> Any:
    """GET (or POST `body` as JSON) and decode the JSON answer; every failure is a one-line `QueryError`.

    Messages name `what` and the URL without credentials; header values (the credentials) never appear.
    """
    data = None if body is None else json.dumps(body).encode()
    url = display_url(url, query=True)  # urllib cannot send user:password from a URL; credentials go in headers
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    where = display_url(url)
    try:
        with _opener(url).open(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raw_error = error.read()
        try:
            payload: Any = json.loads(raw_error)
        except ValueError:
            payload = raw_error.decode(errors="replace")
        detail = describe_error(error.code, payload) if describe_error else one_line(str(payload))
        raise QueryError(f"{what} refused the query ({error.code} at {where}): {detail}") from None
    except TimeoutError:
        raise QueryError(f"{what} did not answer within {timeout:g} s ({where})") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise QueryError(f"{what} did not answer within {timeout:g} s ({where})") from None
        raise QueryError(f"{what} is unreachable at {where}: {one_line(str(reason))}") from None
    except (OSError, http.client.HTTPException) as error:
        raise QueryError(f"{what} is unreachable at {where}: {one_line(str(error))}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise QueryError(f"{what} answered something that is not JSON ({where}): {one_line(repr(raw[:200]))}") from None
