"""Rows of the local store from OpenTelemetry data: a finished span → a `spans` row, a log record → a `logs` row.

The LLM columns come from the one lift in `gateway_otel._semconv`, the same the OpenObserve and Phoenix readers use,
so a span gives the same row wherever it is read from. The JSON cells are compact (`_cells`): content once, names as
numbers, the resource as a reference the writer gives (`ResourceCell`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._semconv import lift, project_of
from ._buckets import value_bucket
from ._cells import attributes_cell, events_cell
from ._database import severity_name

ResourceCell = Callable[[Any], str]
"""The `resource` cell of a row for an SDK `Resource` (or None): the writer's reference to its `resources` row."""

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_STATUS = {0: "unset", 1: "ok", 2: "error"}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _json(mapping: Mapping[str, Any] | None) -> str:
    return _JSON.encode({k: _plain(v) for k, v in (mapping or {}).items()})


def resource_json(resource: Any) -> str:
    """A resource's attributes as the JSON text the `resources` table keeps."""
    return _json(resource.attributes if resource is not None else None)


def span_values(span: Any, resource_cell: ResourceCell) -> tuple[Any, ...]:
    """The values of one `spans` row (in `SPAN_COLUMNS` order) from a finished SDK span."""
    context = span.context
    parent = span.parent
    attrs = span.attributes or {}
    resource = span.resource.attributes if span.resource is not None else {}
    start = span.start_time or 0
    end = span.end_time or start
    status = span.status
    fields = lift(attrs)
    events = [
        {"name": e.name, "time_ns": e.timestamp, "attributes": {k: _plain(v) for k, v in (e.attributes or {}).items()}}
        for e in span.events
    ]
    return (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        format(parent.span_id, "016x") if parent is not None else None,
        span.name,
        span.kind.name.lower() if span.kind is not None else None,
        start,
        end,
        (end - start) / 1e6,
        _STATUS.get(status.status_code.value, "unset"),
        status.description,
        fields["operation"],
        fields["model"],
        fields["request_model"],
        fields["provider"],
        fields["gateway"],
        fields["input_tokens"],
        fields["output_tokens"],
        fields["cost"],
        fields["time_to_first_token_ms"],
        project_of(attrs, resource),
        fields["session_id"],
        attributes_cell(attrs),
        events_cell(events),
        resource_cell(span.resource),
        # store-query: the value buckets of the latency and the time to first token (at the end of SPAN_COLUMNS)
        value_bucket((end - start) / 1e6),
        value_bucket(fields["time_to_first_token_ms"]),
        fields["cost_source"],
    )


def log_values(item: Any, resource_cell: ResourceCell) -> tuple[Any, ...]:
    """The values of one `logs` row (in `LOG_COLUMNS` order) from an exported log record (`ReadableLogRecord`,
    or `LogData` of SDKs before 1.39)."""
    record = getattr(item, "log_record", item)
    resource_obj = getattr(item, "resource", None) or getattr(record, "resource", None)
    resource = resource_obj.attributes if resource_obj is not None else {}
    attrs = dict(record.attributes or {})
    number = getattr(record.severity_number, "value", record.severity_number) or 9
    body = record.body
    text = body if isinstance(body, str) else _JSON.encode(body)
    trace_id = record.trace_id or 0
    span_id = record.span_id or 0
    return (
        record.timestamp or record.observed_timestamp or time.time_ns(),
        number,
        severity_name(number),
        text,
        format(trace_id, "032x") if trace_id else None,
        format(span_id, "016x") if span_id else None,
        project_of(attrs, resource),
        attributes_cell(attrs),
        resource_cell(resource_obj),
    )
