"""The destinations this process exports to, as OpenRouter's observability destinations API shows its own:
`list()`, `get(id)`, and `test()` — one probe span to each, with the outcome in one actionable line, worded by
`_causes.classify` as the export warnings are."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._env import environment
from ._causes import classify, from_status
from ._configure import active, resolve_destinations
from ._exporters import span_exporter
from ._guard import capturing, diagnosis
from ._presets import Destination

logger = logging.getLogger("gateway_otel")


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
        return _probe_with_exporter(destination, span, started)
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
        reason = getattr(error, "reason", error)
        cause = classify(
            [reason], endpoint=destination.endpoint, timeout=destination.timeout, destination_type=destination.type
        )
        return ProbeResult(destination.id, False, None, (time.perf_counter() - started) * 1000, cause.text)
    latency = (time.perf_counter() - started) * 1000
    if 200 <= status < 300:
        return ProbeResult(destination.id, True, status, latency, "accepted")
    return ProbeResult(
        destination.id, False, status, latency, from_status(status, destination.endpoint, destination.type).text
    )


def _probe_with_exporter(destination: Destination, span: Any, started: float) -> ProbeResult:
    """Probe through the destination's own exporter (gRPC, the console, the local store), its log lines read as
    the evidence of what went wrong; within the destination's timeout, whatever its retries (SDK < 1.3x sleeps)."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = span_exporter(destination)
    seen: list[list[object]] = []
    outcome: list[bool] = []

    def send() -> None:
        with capturing(diagnosis(destination.endpoint, destination.timeout, lambda: 1.0)) as evidence:
            seen.append(evidence)
            try:
                outcome.append(exporter.export([span]) is SpanExportResult.SUCCESS)
            except Exception as error:  # any exporter's own error type (requests, urllib3, grpc): the cause to word
                logger.debug("gateway_otel: probe of %r raised", destination.id, exc_info=True)
                evidence.append(error)

    sending = threading.Thread(target=send, name="gateway-otel-probe", daemon=True)
    sending.start()
    sending.join(destination.timeout + 1)
    if sending.is_alive():  # its shutdown may wait for the retry still under way
        threading.Thread(target=exporter.shutdown, daemon=True).start()
    else:
        exporter.shutdown()
    latency = (time.perf_counter() - started) * 1000
    if outcome == [True]:
        return ProbeResult(destination.id, True, None, latency, "accepted")
    cause = classify(
        [*seen[0]] if seen else [],
        endpoint=destination.endpoint,
        timeout=destination.timeout,
        destination_type=destination.type,
        elapsed=latency / 1000,
    )
    return ProbeResult(destination.id, False, None, latency, cause.text)


def test_destinations(destination_id: str | None = None, environ: Mapping[str, str] | None = None) -> list[ProbeResult]:
    """Probe one destination, or each one this process exports to (OpenRouter's "Test Connection")."""
    chosen = [get_destination(destination_id, environ)] if destination_id else list_destinations(environ)
    return [probe(d) for d in chosen]
