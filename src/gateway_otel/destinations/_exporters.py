"""Exporters for a destination, by its protocol: OTLP over HTTP or gRPC, the console, or the local store.

Imports are deferred to the protocol in use, so a process that sends over HTTP never loads gRPC.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

from .._errors import ConfigurationError
from ..store import LocalSpanExporter, StoreConfig, local_log_exporter
from ._presets import Destination


def _open_local(build: Callable[[StoreConfig], Any], destination: Destination) -> Any:
    """A local exporter; a store that cannot be opened fails at set-up, naming the path and the variable."""
    try:
        return build(StoreConfig.from_options(destination.options))
    except (sqlite3.Error, OSError) as error:
        raise ConfigurationError(
            f"GATEWAY_OTEL_LOCAL_PATH: cannot open the local store {destination.endpoint}: {error}; "
            "expected a writable file path"
        ) from None


def span_exporter(destination: Destination) -> SpanExporter:
    """The span exporter for `destination`, by its protocol."""
    if destination.protocol == "sqlite":
        return _open_local(LocalSpanExporter, destination)  # type: ignore[no-any-return]
    if destination.protocol == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if destination.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

        return GrpcSpans(
            endpoint=destination.endpoint, headers=dict(destination.headers) or None, timeout=destination.timeout
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans

    return HttpSpans(endpoint=destination.endpoint, headers=dict(destination.headers), timeout=destination.timeout)


def metric_exporter(destination: Destination) -> MetricExporter | None:
    endpoint = destination.metrics_endpoint
    if endpoint is None:
        return None
    if destination.protocol == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    # A metrics stream name does not apply to metrics (OpenObserve files them by metric name).
    headers = {k: v for k, v in destination.headers.items() if k != "stream-name"}
    if destination.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics

        return GrpcMetrics(endpoint=endpoint, headers=headers or None, timeout=destination.timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics

    return HttpMetrics(endpoint=endpoint, headers=headers, timeout=destination.timeout)


def log_exporter(destination: Destination) -> Any:
    endpoint = destination.logs_endpoint
    if endpoint is None:
        return None
    if destination.protocol == "sqlite":
        return _open_local(local_log_exporter, destination)
    if destination.protocol == "console":
        try:
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter as ConsoleLogs
        except ImportError:  # SDK < 1.39
            from opentelemetry.sdk._logs.export import ConsoleLogExporter as ConsoleLogs  # type: ignore[attr-defined,no-redef]
        return ConsoleLogs()
    headers = dict(destination.logs_headers if destination.logs_headers is not None else destination.headers)
    if destination.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs

        return GrpcLogs(endpoint=endpoint, headers=headers or None, timeout=destination.timeout)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs

    return HttpLogs(endpoint=endpoint, headers=headers, timeout=destination.timeout)


