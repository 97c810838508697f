"""What the remote backends (OpenObserve, Phoenix) share: time parsing, and one small JSON HTTP client whose errors
are one-line `QueryError`s without credentials. Their span attributes become `SpanRow` fields through
`gateway_otel._semconv.lift`, the same lift the local store uses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import urllib.request

from .._errors import QueryError
from .._secrets import url_without_credentials

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
    return url_without_credentials(url, query="keep" if query else "drop")


def _opener(url: str) -> urllib.request.OpenerDirector:
    import urllib.request

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
    import http.client  # here: urllib.request imports ssl (~25 ms), which a query of the local store does not need
    import urllib.error
    import urllib.request

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
