"""The destinations this process exports to, as OpenRouter's observability destinations API shows its own:
`list()`, `get(id)`, and `test()` — one probe span to each, with the outcome in one actionable line."""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._env import environment
from ._configure import active, resolve_destinations
from ._exporters import span_exporter
from ._presets import Destination

# The variables to check when a backend refuses the credentials or the address.
_CREDENTIALS = {
    "openobserve": "OPENOBSERVE_AUTH_TOKEN",
    "arize": "ARIZE_API_KEY and ARIZE_SPACE_ID",
    "phoenix": "PHOENIX_API_KEY",
    "otlp": "OTEL_EXPORTER_OTLP_HEADERS",
}
_ADDRESS = {
    "openobserve": "OPENOBSERVE_URL and OPENOBSERVE_ORG",
    "arize": "ARIZE_COLLECTOR_ENDPOINT",
    "phoenix": "PHOENIX_COLLECTOR_ENDPOINT",
    "otlp": "OTEL_EXPORTER_OTLP_ENDPOINT",
}


def list_destinations(environ: Mapping[str, str] | None = None) -> list[Destination]:
    """The destinations `configure()` set up, or those the environment names when it has not run yet."""
    providers = active()
    if providers is not None and environ is None:
        return [*providers.destinations]
    return [*resolve_destinations(None, environment(environ))]


def get_destination(destination_id: str, environ: Mapping[str, str] | None = None) -> Destination:
    """One destination by id; `LookupError` naming the ones there are when it is not one of them."""
    found = list_destinations(environ)
    for destination in found:
        if destination.id == destination_id:
            return destination
    raise LookupError(f"no destination {destination_id!r}: this process exports to {', '.join(d.id for d in found)}")


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of sending one probe span to a destination."""

    id: str
    ok: bool
    status: int | None
    latency_ms: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ok": self.ok,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 1),
            "message": self.message,
        }


def _probe_span(destination: Destination) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

    now = time.time_ns()
    context = SpanContext(secrets.randbits(128) or 1, secrets.randbits(64) or 1, False, TraceFlags(1))
    resource = Resource.create({"service.name": "gateway-otel", **destination.resource_attributes})
    return ReadableSpan(
        name="gateway-otel connection test",
        context=context,
        resource=resource,
        kind=SpanKind.CLIENT,
        attributes={"gateway.probe": True},
        start_time=now,
        end_time=now,
    )


def _probe_store(destination: Destination, started: float) -> ProbeResult:
    """The local store is checked by taking its write lock and writing nothing: a test leaves no span among the
    user's own."""
    import sqlite3

    from ..store import connect, transaction

    path = Path(destination.endpoint or "")
    try:
        conn = connect(path)
        try:
            with transaction(conn):
                pass
        finally:
            conn.close()
    except sqlite3.OperationalError as error:
        locked = "locked" in str(error).lower()
        reason = "locked by another process" if locked else str(error)
        message = f"cannot write {path}: {reason}"
    except sqlite3.DatabaseError as error:
        message = f"cannot write {path}: not a gateway-otel store ({error})"
    except OSError as error:
        message = f"cannot write {path}: {error.strerror or error}"
    else:
        latency = (time.perf_counter() - started) * 1000
        return ProbeResult(destination.id, True, None, latency, f"writable: {path}")
    return ProbeResult(destination.id, False, None, (time.perf_counter() - started) * 1000, message)


def probe(destination: Destination) -> ProbeResult:
    """Send one span to `destination` and say what happened, with the setting to check when it failed."""
    started = time.perf_counter()
    if not destination.enabled:
        return ProbeResult(
            destination.id, False, None, 0.0, f"disabled (GATEWAY_OTEL_{destination.id.upper()}_ENABLED=false)"
        )
    if destination.protocol == "sqlite":
        return _probe_store(destination, started)
    span = _probe_span(destination)
    if destination.protocol != "http/protobuf":
        exporter = span_exporter(destination)
        try:
            from opentelemetry.sdk.trace.export import SpanExportResult

            ok = exporter.export([span]) is SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
        latency = (time.perf_counter() - started) * 1000
        return ProbeResult(
            destination.id,
            ok,
            None,
            latency,
            "accepted"
            if ok
            else f"export failed: check {_ADDRESS.get(destination.id, 'the endpoint')}"
            f" and {_CREDENTIALS.get(destination.id, 'the credentials')}",
        )
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    body = encode_spans([span]).SerializeToString()
    request = urllib.request.Request(
        destination.endpoint,
        data=body,
        method="POST",
        headers={**destination.headers, "Content-Type": "application/x-protobuf"},
    )
    try:
        with urllib.request.urlopen(request, timeout=destination.timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        latency = (time.perf_counter() - started) * 1000
        reason = getattr(error, "reason", error)
        if isinstance(reason, ConnectionRefusedError) or "refused" in str(reason).lower():
            message = f"connection refused: nothing listens at {destination.endpoint}; is the backend running?"
        elif isinstance(reason, TimeoutError) or "timed out" in str(reason).lower():
            message = f"no answer within {destination.timeout:g} s from {destination.endpoint}"
        else:
            message = f"cannot reach {destination.endpoint}: {reason}; check {_ADDRESS.get(destination.id, 'it')}"
        return ProbeResult(destination.id, False, None, latency, message)
    latency = (time.perf_counter() - started) * 1000
    if 200 <= status < 300:
        return ProbeResult(destination.id, True, status, latency, "accepted")
    if status in (401, 403):
        message = f"authentication failed (HTTP {status}): check {_CREDENTIALS.get(destination.id, 'the credentials')}"
    elif status == 404:
        message = f"endpoint not found (HTTP 404) at {destination.endpoint}: check {_ADDRESS.get(destination.id, 'it')}"
    else:
        message = f"the backend answered HTTP {status}"
    return ProbeResult(destination.id, False, status, latency, message)


def test_destinations(destination_id: str | None = None, environ: Mapping[str, str] | None = None) -> list[ProbeResult]:
    """Probe one destination, or each one this process exports to (OpenRouter's "Test Connection")."""
    chosen = [get_destination(destination_id, environ)] if destination_id else list_destinations(environ)
    return [probe(d) for d in chosen]
