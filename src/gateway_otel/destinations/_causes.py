"""Why a destination could not take what was sent, in plain words: one classifier for `destinations.test()` and for
the exporters' failures, so a probe and an export warning say the same thing.

The evidence is whatever the failure left: an exception (the HTTP exporter of SDK 1.27 raises), or the texts of the
SDK exporter's own log lines (later releases log and return FAILURE). Texts are matched, not types, because the
types differ with every exporter release; the most specific cause wins (protocol mismatch, HTTP status, refused,
timed out, name resolution, TLS, local store). Every endpoint shown goes through `_secrets.url_without_credentials`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from .._secrets import url_without_credentials

# The variables to check when a backend refuses the credentials, the address or the protocol, by destination type.
CREDENTIALS = {
    "openobserve": "OPENOBSERVE_AUTH_TOKEN",
    "arize": "ARIZE_API_KEY and ARIZE_SPACE_ID",
    "phoenix": "PHOENIX_API_KEY",
    "otlp": "OTEL_EXPORTER_OTLP_HEADERS",
}
ADDRESS = {
    "openobserve": "OPENOBSERVE_URL and OPENOBSERVE_ORG",
    "arize": "ARIZE_COLLECTOR_ENDPOINT",
    "phoenix": "PHOENIX_COLLECTOR_ENDPOINT",
    "otlp": "OTEL_EXPORTER_OTLP_ENDPOINT",
}
_PROTOCOL = {"openobserve": "OPENOBSERVE_PROTOCOL", "arize": "ARIZE_PROTOCOL", "otlp": "OTEL_EXPORTER_OTLP_PROTOCOL"}
_PHRASES = {status.phrase.lower(): status.value for status in HTTPStatus}
_STATUS_IN_TEXT = re.compile(r"\bcode:? (\d{3})\b")
_TRANSIENT_REASON = re.compile(r"Transient error (.+?) encountered")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"()<>]+", re.IGNORECASE)


ACCEPTS = "the port accepts TCP connections"
"""Evidence that a TCP connection to the endpoint succeeded (`_guard.connect_evidence`)."""


@dataclass(frozen=True)
class Cause:
    """`kind` keys the once-per-destination warning; `text` is what a person reads."""

    kind: str
    text: str


def shown(endpoint: str) -> str:
    """An endpoint as it may be shown: a URL without credentials or query; a path or `stdout` as it is."""
    return url_without_credentials(endpoint, query="mask")


def where(endpoint: str) -> str:
    """`host:port` of a URL endpoint (what a refused connection or a timeout is about), else the endpoint."""
    parts = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    host = parts.netloc.rsplit("@", 1)[-1]
    return host or endpoint


def seconds(value: float) -> str:
    """10 → "10", 4.5 → "4.5", 4.987 → "5": what a person needs of a timeout."""
    return f"{value:.1f}".removesuffix(".0")


def from_status(status: int, endpoint: str, destination_type: str = "") -> Cause:
    """The cause for an HTTP answer that is not a success."""
    try:
        label = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        label = f"HTTP {status}"
    if status in (401, 403):
        text = f"authentication failed ({label}): check {CREDENTIALS.get(destination_type, 'the credentials')}"
    elif status == 404:
        text = f"endpoint not found ({label}) at {shown(endpoint)}: check {ADDRESS.get(destination_type, 'it')}"
    else:
        text = f"the backend answered {label}"
    return Cause(f"http {status}", text)


def timed_out(after: float, endpoint: str, *, deadline: bool = False) -> Cause:
    """No answer within `after` seconds (`deadline`: the shutdown timeout ran out, not the exporter's)."""
    limit = " (the shutdown timeout)" if deadline else ""
    if "://" not in endpoint:  # the local store: a file, locked by another process or on a slow disk
        return Cause(
            "timeout", f"timed out after {seconds(after)} s{limit}: the store stayed busy (locked by another process?)"
        )
    return Cause("timeout", f"timed out after {seconds(after)} s{limit}: no answer from {where(endpoint)}")


def _text(item: object) -> str:
    return f"{type(item).__name__}: {item}" if isinstance(item, BaseException) else str(item)


def _status(texts: Sequence[str]) -> int | None:
    for text in texts:
        found = _STATUS_IN_TEXT.search(text)
        if found and 400 <= int(found.group(1)) <= 599:
            return int(found.group(1))
        reason = _TRANSIENT_REASON.search(text)
        if reason and reason.group(1).strip().lower() in _PHRASES:
            return _PHRASES[reason.group(1).strip().lower()]
    return None


def _mentions(texts: Sequence[str], *needles: str) -> bool:
    return any(needle in text.lower() for text in texts for needle in needles)


def _scrubbed(text: str) -> str:
    """A raw error text fit to show: URLs without credentials or query, one line, at most 200 characters."""
    line = _URL.sub(lambda m: shown(m.group(0)), " ".join(text.split()))
    return line if len(line) <= 200 else line[:199] + "…"


def classify(
    evidence: Sequence[object],
    *,
    endpoint: str,
    timeout: float,
    destination_type: str = "",
    elapsed: float | None = None,
) -> Cause:
    """The cause of a failed export or probe to `endpoint`, from its exceptions and the exporter's log texts.

    `elapsed`: how long the attempt took; an attempt that used up its `timeout` and left no better evidence (the
    HTTP exporter then only says "due to timeout, max retries or shutdown") timed out.
    """
    texts = [_text(item) for item in evidence]
    place = where(endpoint)
    if _mentions(texts, "failed parsing http/2", "expected settings frame", "http1.x server"):
        variable = _PROTOCOL.get(destination_type, "the protocol")
        return Cause(
            "protocol",
            f"protocol mismatch: a gRPC exporter talking to an HTTP server at {place} "
            f"(set {variable}=http/protobuf, or use the gRPC port, usually 4317)",
        )
    if _mentions(texts, "badstatusline"):
        variable = _PROTOCOL.get(destination_type, "the protocol")
        return Cause(
            "protocol",
            f"protocol mismatch: an HTTP exporter talking to a gRPC server at {place} "
            f"(set {variable}=grpc, or use the HTTP port, usually 4318)",
        )
    if _mentions(texts, "unavailable") and ACCEPTS in texts:
        variable = _PROTOCOL.get(destination_type, "the protocol")
        return Cause(
            "protocol",
            f"{place} accepts connections but does not answer gRPC: an HTTP server? (set {variable}=http/protobuf, "
            "or use the gRPC port, usually 4317; https:// if it needs TLS)",
        )
    status = _status(texts)
    if status is not None:
        return from_status(status, endpoint, destination_type)
    if _mentions(texts, "refused"):
        return Cause("refused", f"connection refused: nothing listens at {place}; is the backend running?")
    if _mentions(texts, "timed out", "timeouterror", "readtimeout", "connecttimeout", "deadline", "timeout="):
        return timed_out(timeout, endpoint)
    if _mentions(texts, "name or service not known", "nodename nor servname", "getaddrinfo", "name resolution"):
        return Cause("dns", f"cannot resolve {place}: check {ADDRESS.get(destination_type, 'the endpoint')}")
    if _mentions(texts, "ssl", "certificate", "tls handshake"):
        return Cause("tls", f"TLS failed with {place}: check http:// or https:// and the certificate")
    if _mentions(texts, "database is locked"):
        return Cause("locked", f"the local store {endpoint} stays locked by another process (database is locked)")
    if elapsed is not None and elapsed >= 0.9 * timeout:
        return timed_out(timeout, endpoint)
    raised = [e for e in evidence if isinstance(e, Exception) and not isinstance(e, OSError)]
    if raised:  # not the network: the exporter itself (an SDK release it does not agree with, say)
        return Cause("error", f"the exporter raised {_scrubbed(_text(raised[0]))}")
    said = [
        t
        for t in texts
        if t != ACCEPTS and "max retries or shutdown" not in t and "shutdown in progress" not in t.lower()
    ]
    if not said:
        return Cause("unknown", f"the exporter gave up on {place} without saying why")
    return Cause("other", f"cannot send to {place}: {_scrubbed(said[0])}")
