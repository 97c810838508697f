"""OpenRouter's final word on a call, on the call's stored row.

With `openrouter_generation=True` the instrumentation emits, some seconds after each OpenRouter call, a
`gateway.openrouter.generation` log record in the call's span (`instrumentation/_logs.py`). When the `local`
destination writes that record (`_writer.write_logs`, in the same transaction), the call's `spans` row gets:
- the `cost` column: the record's `total_cost` (OpenRouter's final figure, in place of the inline `usage.cost`);
- its attributes cell: the record's `...total_cost` and `...native_tokens_prompt` / `_completion` / `_reasoning` /
  `_cached` (the upstream's own token counts), merged in — no new column: the cell holds any attribute, and the
  query API reads it (`SpanRow.attributes`).
The store stays a destination like any other: it learns the final cost from the record every destination receives.

A record written before its span (the spans' queue was slower than OpenRouter) waits in this process's memory, at
most `WAITING_LIMIT` records per store, and the span writer applies it right after inserting the span.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from .._semconv import GENERATION_EVENT, GENERATION_PREFIX
from ._cells import attributes_cell, attributes_of

ON_ROW = tuple(
    GENERATION_PREFIX + field
    for field in (
        "total_cost",
        "native_tokens_prompt",
        "native_tokens_completion",
        "native_tokens_reasoning",
        "native_tokens_cached",
    )
)
"""The record's attributes merged into the call's attributes cell."""
WAITING_LIMIT = 1024
"""Records kept waiting for their span, per store; past it the oldest is forgotten (its span was dropped or sampled
out by another process's destination)."""

Final = tuple[str, str, "float | None", dict[str, Any]]
"""(trace id, span id — as the row spells them —, the final cost or None, the attributes for the row's cell)."""


def final_figures(items: Sequence[Any]) -> list[Final]:
    """What the generation records among exported log records (`ReadableLogRecord`, or `LogData` of older SDKs) put
    on their calls' rows; [] for a batch without one (every batch of failure records)."""
    found = []
    for item in items:
        record = getattr(item, "log_record", item)
        attrs = record.attributes or {}
        if attrs.get("event.name") != GENERATION_EVENT or not record.trace_id or not record.span_id:
            continue
        kept = {name: attrs[name] for name in ON_ROW if name in attrs}
        cost = kept.get(ON_ROW[0])
        cost = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
        found.append((format(record.trace_id, "032x"), format(record.span_id, "016x"), cost, kept))
    return found


def set_final_cost(conn: sqlite3.Connection, trace_id: str, span_id: str, cost: float | None, kept: dict) -> bool:
    """Put a generation's final cost (when it has one) and `kept` attributes on the call's row, in the caller's
    transaction; False when the row is not stored (yet). The final cost is the gateway's own figure: its source is
    `gateway`, even where the row had been priced from the price table."""
    found = conn.execute("SELECT attributes FROM spans WHERE trace_id = ? AND span_id = ?", (trace_id, span_id))
    row = found.fetchone()
    if row is None:
        return False
    try:
        cell = attributes_cell({**attributes_of(row[0]), **kept})
    except ValueError:  # a damaged cell: the cost column alone
        cell = row[0]
    conn.execute(
        "UPDATE spans SET cost = coalesce(?, cost), cost_source = CASE WHEN ? IS NULL THEN cost_source "
        "ELSE 'gateway' END, attributes = ? WHERE trace_id = ? AND span_id = ?",
        (cost, cost, cell, trace_id, span_id),
    )
    return True


_waiting: dict[str, OrderedDict[tuple[str, str], Final]] = {}
_lock = threading.Lock()


def apply_records(conn: sqlite3.Connection, store: str, figures: list[Final]) -> None:
    """The log writer's part: each record onto its row, or waiting for it."""
    for final in figures:
        if set_final_cost(conn, *final):
            continue
        with _lock:
            waiting = _waiting.setdefault(store, OrderedDict())
            waiting[final[:2]] = final
            if len(waiting) > WAITING_LIMIT:
                waiting.popitem(last=False)


def apply_waiting(conn: sqlite3.Connection, store: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """The span writer's part, after inserting `rows` (trace id and span id first): the records that came first.
    Nothing to do, and one dictionary look-up, when none waits."""
    if not _waiting.get(store):
        return
    with _lock:
        waiting = _waiting.get(store) or {}
        ready = [final for row in rows if (final := waiting.pop((row[0], row[1]), None)) is not None]
    for final in ready:
        set_final_cost(conn, *final)


def _forget_in_child() -> None:
    """A forked child's records are its own; the parent's waiting ones stay the parent's."""
    global _lock
    _lock = threading.Lock()
    _waiting.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
