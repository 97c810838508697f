"""The `phoenix` query backend: a project's spans from Phoenix's REST API, with the exporter preset's settings.

`GET {PHOENIX_COLLECTOR_ENDPOINT}/v1/projects/{project}/spans?start_time=&end_time=&sort=start_time&order=desc
&limit=&cursor=` pages through the spans of a project (newest first), filtered on the server by time, trace id and
status. Phoenix matches whole trace ids only, so a trace id prefix is matched here, over every span of the window.
Phoenix returns attributes with dotted keys, as exported, except that it moves `openinference.span.kind` into
`span_kind` (put back here) and adds `llm.*` keys of its own; it returns no resource attributes, so a row's
`project_name` is the project asked for.

Phoenix stores no log records, so `logs()` raises a `QueryError` saying so rather than answering an empty list that
would read as "nothing went wrong".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from .._env import environment
from .._errors import ConfigurationError, QueryError
from .._semconv import lift
from ..destinations._presets import PhoenixSettings, phoenix_settings
from ._model import TRACE_ID_DIGITS, LogQuery, LogRow, SpanQuery, SpanRow
from ._remote import one_line, parse_iso, request_json

PAGE_SIZE = 1000  # the most Phoenix returns per page
TIMEOUT = 30.0


def span_from_phoenix(span: Mapping[str, Any], project: str, *, detail: bool = True) -> SpanRow:
    """One span from `GET /v1/projects/{project}/spans` as a SpanRow."""
    attributes = dict(span.get("attributes") or {})
    if span.get("span_kind") and "openinference.span.kind" not in attributes:
        attributes["openinference.span.kind"] = span["span_kind"]
    start, end = parse_iso(span["start_time"]), parse_iso(span["end_time"])
    status = str(span.get("status_code") or "UNSET").lower()
    events = tuple(
        {"name": e.get("name"), "timestamp": e.get("timestamp"), "attributes": dict(e.get("attributes") or {})}
        for e in span.get("events") or ()
        if isinstance(e, dict)
    )
    return SpanRow(
        trace_id=span["context"]["trace_id"],
        span_id=span["context"]["span_id"],
        parent_span_id=span.get("parent_id") or None,
        name=str(span.get("name") or ""),
        start_time=start,
        end_time=end,
        duration_ms=(end - start) / timedelta(milliseconds=1),
        status=status if status in ("ok", "error") else "unset",
        status_message=span.get("status_message") or None,
        project_name=project,
        attributes=attributes if detail else {},
        events=events if detail else (),
        **lift(attributes),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _describe(status: int, payload: Any) -> str:
    if status in (401, 403):
        return "check PHOENIX_API_KEY"
    if isinstance(payload, dict):
        return one_line(str(payload.get("detail") or payload.get("message") or payload))
    return one_line(str(payload)) or "no detail"


class PhoenixBackend:
    """Spans of one Phoenix project (PHOENIX_PROJECT_NAME, or `project_name` per query); no logs."""

    name = "phoenix"

    def __init__(
        self,
        settings: PhoenixSettings,
        *,
        timeout: float = TIMEOUT,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.progress = progress

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> PhoenixBackend:
        """Configured like the `phoenix` destination (PHOENIX_COLLECTOR_ENDPOINT, _PROJECT_NAME, _API_KEY)."""
        try:
            return cls(phoenix_settings(environment(environ)), **options)
        except ConfigurationError as error:
            raise QueryError(f"the phoenix backend is not configured: {error}") from None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}

    def _matches(self, row: SpanRow, query: SpanQuery) -> bool:
        """The filters Phoenix cannot apply itself (a model is in one of several attributes; a trace id prefix)."""
        if query.model and query.model not in (row.model, row.request_model):
            return False
        if query.trace_id and not row.trace_id.startswith(query.trace_id.lower()):
            return False
        return not (query.session_id and row.session_id != query.session_id)

    def spans(self, query: SpanQuery) -> list[SpanRow]:
        project = query.project_name or self.settings.project
        path = f"{self.settings.base_url}/v1/projects/{quote(project, safe='')}/spans"
        params: list[tuple[str, str]] = [
            ("start_time", _iso(query.start)),
            # Phoenix's end is exclusive; one microsecond more keeps the window's end inclusive.
            ("end_time", _iso(query.end + timedelta(microseconds=1))),
            ("sort", "start_time"),
            ("order", "desc"),
        ]
        whole_id = query.trace_id is not None and len(query.trace_id) == TRACE_ID_DIGITS
        if whole_id:
            params.append(("trace_id", str(query.trace_id).lower()))
        if query.status:
            params.append(("status_code", query.status.upper()))
        rows: list[SpanRow] = []
        cursor: str | None = None
        seen: set[str] = set()
        filtered = bool(query.model or query.session_id or (query.trace_id and not whole_id))
        while query.limit is None or len(rows) < query.limit:
            wanted = PAGE_SIZE if query.limit is None or filtered else min(PAGE_SIZE, query.limit - len(rows))
            page_params = [*params, ("limit", str(wanted))] + ([("cursor", cursor)] if cursor else [])
            answer = request_json(
                "Phoenix",
                f"{path}?{urlencode(page_params)}",
                headers=self._headers(),
                timeout=self.timeout,
                describe_error=lambda status, payload, p=project: (
                    f"no project {p!r} (set PHOENIX_PROJECT_NAME or pass project_name)"
                    if status == 404
                    else _describe(status, payload)
                ),
            )
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, list):
                raise QueryError(f"Phoenix answered without a list of spans: {one_line(str(answer), 200)}")
            try:
                page = [span_from_phoenix(span, project, detail=query.detail) for span in data]
            except (KeyError, TypeError, ValueError) as error:
                raise QueryError(f"Phoenix returned a span without a readable {error}") from None
            rows.extend(row for row in page if self._matches(row, query))
            if self.progress is not None:
                self.progress(len(rows))
            cursor = answer.get("next_cursor")
            if not cursor:
                break
            if cursor in seen:  # a server that hands the same page again would be paged without end
                raise QueryError(f"Phoenix repeated a page cursor ({one_line(str(cursor), 40)}): stopped paging")
            seen.add(cursor)
        return rows if query.limit is None else rows[: query.limit]

    def logs(self, query: LogQuery) -> list[LogRow]:
        raise QueryError(
            "Phoenix stores traces only, not log records: query logs with the local or openobserve backend"
        )

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""
