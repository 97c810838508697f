"""The `openobserve` query backend: SQL over OpenObserve's search API, with the exporter preset's credentials.

`POST {OPENOBSERVE_URL}/api/{org}/_search?type=traces` with `{"query": {"sql", "start_time", "end_time", "from",
"size"}}`; times are microseconds since the epoch and bound `_timestamp` (a span's start). OpenObserve stores span
attributes as columns with flattened names (lower case, anything outside `[a-z0-9_]` becomes `_`:
`gen_ai.usage.input_tokens` → `gen_ai_usage_input_tokens`), resource attributes as `service_<key>`, and the span
itself as `trace_id`, `span_id`, `reference_parent_span_id`, `operation_name`, `span_status`, `start_time` /
`end_time` (ns), `duration` (µs), `events` (a JSON string). Rows come back with attributes under those column names.

`project_name` is OpenObserve's `service_name` (the service a span's resource names). Logs come from the logs
stream the preset sends log records to (`OPENOBSERVE_LOGS_STREAM_NAME`), where a record is `_timestamp`, `body`,
`severity` (the severity text, else its number), `trace_id`, `span_id` and its attributes as columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from .._env import environment
from .._errors import ConfigurationError, QueryError
from .._semconv import lift
from ..destinations._presets import OpenObserveSettings, openobserve_settings
from ._model import TRACE_ID_DIGITS, LogQuery, LogRow, SpanQuery, SpanRow
from ._remote import from_unix_ns, one_line, request_json, to_unix_us

PAGE_SIZE = 1000  # OpenObserve's default query limit (ZO_QUERY_DEFAULT_LIMIT)

_SPAN_COLUMNS = frozenset(
    {
        "_timestamp",
        "trace_id",
        "span_id",
        "reference_parent_span_id",
        "reference_parent_trace_id",
        "reference_ref_type",
        "flags",
        "span_status",
        "span_kind",
        "operation_name",
        "start_time",
        "end_time",
        "duration",
        "service_name",
        "events",
        "links",
    }
)
_LOG_COLUMNS = frozenset(
    {
        "_timestamp",
        "body",
        "severity",
        "trace_id",
        "span_id",
        "service_name",
        "dropped_attributes_count",
        "instrumentation_library_name",
        "instrumentation_library_version",
    }
)
# The severity texts at or above each minimum (OTel's and Python logging's spellings).
_SEVERITY_TEXTS = {
    "debug": None,
    "info": ("INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"),
    "warning": ("WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"),
    "error": ("ERROR", "CRITICAL", "FATAL"),
}
_SEVERITY_OF_TEXT = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "critical": "error",
    "fatal": "error",
}
_NOT_COLUMN = re.compile(r"[^a-z0-9_]")


def column(attribute: str) -> str:
    """An attribute's column name in OpenObserve (`flatten::format_key`)."""
    return _NOT_COLUMN.sub("_", attribute.lower())


def sql_string(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _stream(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def spans_sql(stream: str, query: SpanQuery) -> str:
    """The SQL for `query` over the traces stream `stream`; the time range travels separately, in microseconds."""
    where = []
    if query.trace_id and len(query.trace_id) == TRACE_ID_DIGITS:
        where.append(f"trace_id = {sql_string(query.trace_id.lower())}")
    elif query.trace_id:  # a prefix of hex digits: nothing in it LIKE would read as a wildcard
        where.append(f"trace_id LIKE {sql_string(query.trace_id.lower() + '%')}")
    if query.model:
        model = sql_string(query.model)
        where.append(f"({column('gen_ai.response.model')} = {model} OR {column('gen_ai.request.model')} = {model})")
    if query.status:
        where.append(f"span_status = {sql_string(query.status.upper())}")
    if query.project_name:
        where.append(f"service_name = {sql_string(query.project_name)}")
    if query.session_id:
        where.append(f"{column('gen_ai.conversation.id')} = {sql_string(query.session_id)}")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT * FROM {_stream(stream)}{condition} ORDER BY start_time DESC"


def logs_sql(stream: str, query: LogQuery) -> str:
    where = []
    texts = _SEVERITY_TEXTS.get(query.severity or "debug")
    if texts:
        where.append(f"upper(severity) IN ({', '.join(sql_string(t) for t in texts)})")
    if query.project_name:
        where.append(f"service_name = {sql_string(query.project_name)}")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT * FROM {_stream(stream)}{condition} ORDER BY _timestamp DESC"


def _status(value: Any) -> str:
    text = str(value or "UNSET").lower()
    return text if text in ("ok", "error") else "unset"


def _events(raw: Any) -> tuple[dict[str, Any], ...]:
    try:
        events = json.loads(raw) if isinstance(raw, str) else (raw or [])
    except ValueError:
        return ()
    out = []
    for event in events if isinstance(events, list) else ():
        if isinstance(event, dict):
            stamp = event.get("_timestamp")
            out.append(
                {
                    "name": event.get("name"),
                    "timestamp": from_unix_ns(stamp).isoformat() if stamp is not None else None,
                    "attributes": dict(event.get("attributes") or {}),
                }
            )
    return tuple(out)


def span_from_hit(hit: Mapping[str, Any], *, detail: bool = True) -> SpanRow:
    """One OpenObserve traces-stream row as a SpanRow (attributes keep OpenObserve's column names)."""
    start_ns, end_ns = int(hit["start_time"]), int(hit["end_time"])
    attributes = {k: v for k, v in hit.items() if k not in _SPAN_COLUMNS and not k.startswith("service_")}
    attributes = {k: v for k, v in attributes.items() if v is not None and v != ""}
    status = _status(hit.get("span_status"))
    message = hit.get("status_message") or hit.get(column("gateway.error.message"))
    return SpanRow(
        trace_id=str(hit["trace_id"]),
        span_id=str(hit["span_id"]),
        parent_span_id=hit.get("reference_parent_span_id") or None,
        name=str(hit.get("operation_name") or ""),
        start_time=from_unix_ns(start_ns),
        end_time=from_unix_ns(end_ns),
        duration_ms=(end_ns - start_ns) / 1e6,
        status=status,
        status_message=str(message) if message and status == "error" else None,
        project_name=hit.get(column("service_openinference.project.name")) or hit.get("service_name") or None,
        attributes=attributes if detail else {},
        events=_events(hit.get("events")) if detail else (),
        **lift(hit, column),
    )


def _severity(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "debug" if value < 9 else "info" if value < 13 else "warning" if value < 17 else "error"
    return _SEVERITY_OF_TEXT.get(str(value or "info").strip().lower(), "info")


def log_from_hit(hit: Mapping[str, Any]) -> LogRow:
    body = hit.get("body")
    return LogRow(
        time=from_unix_ns(int(hit["_timestamp"]) * 1000),
        severity=_severity(hit.get("severity")),
        body=body if isinstance(body, str) else json.dumps(body),
        trace_id=hit.get("trace_id") or None,
        span_id=hit.get("span_id") or None,
        project_name=hit.get("service_name") or None,
        attributes={k: v for k, v in hit.items() if k not in _LOG_COLUMNS and v is not None},
    )


def _describe(status: int, payload: Any) -> str:
    if status in (401, 403):
        return "check OPENOBSERVE_AUTH_TOKEN (or OPENOBSERVE_EMAIL / OPENOBSERVE_PASSWORD) and OPENOBSERVE_ORG"
    if isinstance(payload, dict):
        message = payload.get("message") or payload.get("error") or json.dumps(payload)
        code = payload.get("code")
        return one_line(f"{message} (code {code})" if code and code != status else str(message))
    return one_line(str(payload)) or "no detail"


class OpenObserveBackend:
    """Spans and logs from OpenObserve's search API. `progress(rows_so_far)` is called after each page."""

    name = "openobserve"

    def __init__(self, settings: OpenObserveSettings, *, progress: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.progress = progress

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> OpenObserveBackend:
        """Configured like the `openobserve` destination (OPENOBSERVE_URL, _ORG, _AUTH_TOKEN, stream names)."""
        try:
            return cls(openobserve_settings(environment(environ)), **options)
        except ConfigurationError as error:
            raise QueryError(f"the openobserve backend is not configured: {error}") from None

    def _search(self, kind: str, sql: str, start: Any, end: Any, limit: int | None) -> list[dict[str, Any]]:
        url = f"{self.settings.url}/api/{quote(self.settings.org, safe='')}/_search?type={kind}"
        # OpenObserve's range is [start_time, end_time); +1 µs keeps the window's end inclusive.
        start_us, end_us = to_unix_us(start), to_unix_us(end + timedelta(microseconds=1))
        hits: list[dict[str, Any]] = []
        while limit is None or len(hits) < limit:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(hits))
            body = {"query": {"sql": sql, "start_time": start_us, "end_time": end_us, "from": len(hits), "size": size}}
            answer = request_json(
                "OpenObserve",
                url,
                headers={"Authorization": self.settings.token},
                timeout=self.settings.timeout,
                body=body,
                describe_error=_describe,
            )
            page = answer.get("hits") if isinstance(answer, dict) else None
            if not isinstance(page, list):
                raise QueryError(f"OpenObserve answered without a list of hits: {one_line(str(answer), 200)}")
            hits.extend(hit for hit in page if isinstance(hit, dict))
            if self.progress is not None and page:
                self.progress(len(hits))
            if len(page) < size:
                break
        return hits

    def spans(self, query: SpanQuery) -> list[SpanRow]:
        hits = self._search(
            "traces", spans_sql(self.settings.traces_stream, query), query.start, query.end, query.limit
        )
        try:
            return [span_from_hit(hit, detail=query.detail) for hit in hits]
        except (KeyError, TypeError, ValueError) as error:
            raise QueryError(f"OpenObserve returned a span row without a readable {error}") from None

    def logs(self, query: LogQuery) -> list[LogRow]:
        hits = self._search("logs", logs_sql(self.settings.logs_stream, query), query.start, query.end, query.limit)
        try:
            return [log_from_hit(hit) for hit in hits]
        except (KeyError, TypeError, ValueError) as error:
            raise QueryError(f"OpenObserve returned a log row without a readable {error}") from None

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""
