"""One classifier for a failed export or probe: what the SDK exporters of several releases leave behind (their log
lines, or an exception) → one cause in plain words. The evidence below was captured from SDK 1.27, 1.28 and 1.45."""

from __future__ import annotations

import logging

import pytest

from gateway_otel.destinations._causes import ACCEPTS, classify

TRACES = "http://127.0.0.1:1/v1/traces"
REFUSED = "connection refused: nothing listens at 127.0.0.1:1; is the backend running?"
UNAVAILABLE_128 = (
    "Transient error StatusCode.UNAVAILABLE encountered while exporting traces to 127.0.0.1:1, retrying in 1s."
)
TO_HTTP = (
    "protocol mismatch: a gRPC exporter talking to an HTTP server at 127.0.0.1:1 "
    "(set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, or use the gRPC port, usually 4317)"
)


@pytest.mark.parametrize(
    ("evidence", "kind", "text"),
    [
        (  # HTTP exporter, SDK 1.45: a retry line names the error
            [
                "Transient error HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /v1/logs "
                "(Caused by NewConnectionError(\"HTTPConnection(host='127.0.0.1', port=1): Failed to establish a new "
                'connection: [Errno 111] Connection refused")) encountered while exporting logs batch, '
                "retrying in 0.89s.",
                "Failed to export logs batch due to timeout, max retries or shutdown.",
            ],
            "refused",
            REFUSED,
        ),
        ([ConnectionRefusedError(111, "Connection refused")], "refused", REFUSED),  # SDK 1.27 raises; or our probe
        (  # gRPC exporter, SDK 1.45
            [
                "Failed to export traces to 127.0.0.1:1, error code: StatusCode.UNAVAILABLE, error details: failed to "
                "connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to remote host: "
                "Connection refused"
            ],
            "refused",
            REFUSED,
        ),
        (  # gRPC exporter, SDK 1.28, says only UNAVAILABLE; one TCP connection is refused too
            [
                UNAVAILABLE_128,
                ConnectionRefusedError(111, "Connection refused"),
            ],
            "refused",
            REFUSED,
        ),
        (
            [
                "Failed to export traces to 127.0.0.1:1, error code: StatusCode.UNAVAILABLE, error details: failed to "
                "connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:1: Failed parsing HTTP/2 (Expected "
                "SETTINGS frame as the first frame, got frame type 79)"
            ],
            "protocol",
            TO_HTTP,
        ),
        (  # SDK 1.28: UNAVAILABLE, but the port accepts TCP connections
            [
                UNAVAILABLE_128,
                ACCEPTS,
            ],
            "protocol",
            "127.0.0.1:1 accepts connections but does not answer gRPC: an HTTP server? (set "
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, or use the gRPC port, usually 4317; https:// if it needs TLS)",
        ),
        (
            [
                "Transient error ('Connection aborted.', BadStatusLine('\\x00\\x00\\x18\\x04\\x00\\x00')) encountered "
                "while exporting spans batch, retrying in 1.10s."
            ],
            "protocol",
            "protocol mismatch: an HTTP exporter talking to a gRPC server at 127.0.0.1:1 "
            "(set OTEL_EXPORTER_OTLP_PROTOCOL=grpc, or use the HTTP port, usually 4318)",
        ),
        (
            ["Failed to export spans batch code: 401, reason: Unauthorized"],
            "http 401",
            "authentication failed (HTTP 401 Unauthorized): check OTEL_EXPORTER_OTLP_HEADERS",
        ),
        (["Failed to export batch code: 401, reason: "], "http 401", None),  # SDK 1.27's wording
        (
            ["Failed to export spans batch code: 404, reason: Not Found"],
            "http 404",
            f"endpoint not found (HTTP 404 Not Found) at {TRACES}: check OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (  # a retried status gives only its reason phrase
            ["Transient error Service Unavailable encountered while exporting spans batch, retrying in 1.02s."],
            "http 503",
            "the backend answered HTTP 503 Service Unavailable",
        ),
        (
            ["HTTPConnectionPool(host='127.0.0.1', port=1): Read timed out. (read timeout=4.5)"],
            "timeout",
            "timed out after 4.5 s: no answer from 127.0.0.1:1",
        ),
        (
            [
                "Failed to export metrics to 127.0.0.1:1, error code: StatusCode.DEADLINE_EXCEEDED, error details: "
                "Deadline Exceeded"
            ],
            "timeout",
            "timed out after 4.5 s: no answer from 127.0.0.1:1",
        ),
        (
            ["Failed to resolve 'collector.invalid' ([Errno -2] Name or service not known)"],
            "dns",
            "cannot resolve 127.0.0.1:1: check OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (  # raw text shown, but never a credential or a query string
            ["Transient error weird at https://user:secret@host:4318/v1/traces?token=abc encountered"],
            "other",
            "cannot send to 127.0.0.1:1: Transient error weird at https://host:4318/v1/traces?**** encountered",
        ),
        (  # not the network's fault: SDK 1.30's log encoder and the log records of a later API
            [AttributeError("'LogRecord' object has no attribute 'resource'")],
            "error",
            "the exporter raised AttributeError: 'LogRecord' object has no attribute 'resource'",
        ),
        (
            ["Failed to export spans batch due to timeout, max retries or shutdown."],
            "unknown",
            "the exporter gave up on 127.0.0.1:1 without saying why",
        ),
    ],
)
def test_evidence_becomes_one_cause(evidence: list[object], kind: str, text: str | None) -> None:
    cause = classify(evidence, endpoint=TRACES, timeout=4.5, destination_type="otlp")
    assert cause.kind == kind
    if text is not None:
        assert cause.text == text


def test_an_attempt_that_used_up_its_timeout_timed_out() -> None:
    """SDK 1.45's HTTP exporter says only "due to timeout, max retries or shutdown" when the first attempt hung."""
    generic = ["Failed to export spans batch due to timeout, max retries or shutdown."]
    hung = classify(generic, endpoint=TRACES, timeout=2, elapsed=1.95)
    assert (hung.kind, hung.text) == ("timeout", "timed out after 2 s: no answer from 127.0.0.1:1")
    assert classify(generic, endpoint=TRACES, timeout=2, elapsed=0.01).kind == "unknown"


def test_the_local_store() -> None:
    locked = classify(["gateway_otel: local store: database is locked"], endpoint="/data/t.db", timeout=10)
    assert locked.text == "the local store /data/t.db stays locked by another process (database is locked)"


def test_only_our_exports_hold_the_exporters_log_lines_back(caplog: pytest.LogCaptureFixture) -> None:
    """The SDK exporter's warnings are evidence while one of our exports runs on this thread, and untouched else:
    the application's own use of those loggers, and their debug lines, still reach its handlers."""
    from gateway_otel.destinations._guard import capturing

    exporter_log = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    caplog.set_level(logging.DEBUG)
    with capturing() as evidence:
        exporter_log.warning("Transient error %s encountered", "Service Unavailable")
        exporter_log.debug("a debug line")
    exporter_log.warning("the application's own line")
    assert evidence == ["Transient error Service Unavailable encountered"]
    assert [r.getMessage() for r in caplog.records] == ["a debug line", "the application's own line"]


def test_a_warning_never_shows_a_credential(caplog: pytest.LogCaptureFixture) -> None:
    from gateway_otel.destinations._guard import Health

    endpoint = "https://user:s3cret@collector.example:4318/v1/traces?api_key=s3cret"
    cause = classify([ConnectionRefusedError(111, "Connection refused")], endpoint=endpoint, timeout=10)
    Health("otlp").report(cause, endpoint)
    assert [r.getMessage() for r in caplog.records] == [
        "gateway_otel: destination 'otlp' cannot export to https://collector.example:4318/v1/traces?****: "
        "connection refused: nothing listens at collector.example:4318; is the backend running? "
        "The application is unaffected; further failures are counted, not logged."
    ]
