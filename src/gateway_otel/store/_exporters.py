"""The `local` destination's exporters: spans and log records into the SQLite store.

They run on their processor's worker thread, like every exporter, so the application's calls never touch SQLite.
Each exporter has its own connection, opened at its first batch. A batch that cannot be written (the file locked by
another process for longer than the busy timeout, a full disk, a file that is not a store) is reported as a failed
export, and why, in words (`describe`), is logged on `gateway_otel.store`, where the destination's guard reads it
(`destinations/_guard.py`) and says it once, instead of once per batch.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ._config import StoreConfig
from ._database import BUSY_TIMEOUT
from ._writer import StoreWriter

logger = logging.getLogger("gateway_otel.store")


def describe(error: BaseException, path: Any) -> str:
    """Why the store at `path` refused a write, as a person would say it."""
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        why = f"it is locked by another process (for longer than {BUSY_TIMEOUT:g} s)"
    elif "full" in text or getattr(error, "errno", None) == 28:
        why = "the disk is full"
    elif "not a database" in text or "malformed" in text:
        why = "it is not a SQLite file of gateway-otel (move it away, or set GATEWAY_OTEL_LOCAL_PATH)"
    elif "readonly" in text or "read-only" in text or getattr(error, "errno", None) in (1, 13, 30):
        why = "it cannot be written here (permissions, or a read-only file system)"
    else:
        why = f"{type(error).__name__}: {error}"
    return f"the local store {path} cannot be written: {why}"


def _stored(store: StoreWriter, write: Callable[[Sequence[Any]], None], batch: Sequence[Any]) -> bool:
    """Write one batch of spans or log records; False, with why on `gateway_otel.store`, when the store refused it."""
    try:
        write(batch)
    except (sqlite3.Error, OSError) as error:
        logger.warning("gateway_otel: %s", describe(error, store.config.path))
        return False
    except RuntimeError as error:  # closed
        logger.warning("gateway_otel: local store: %s", error)
        return False
    return True


class LocalSpanExporter(SpanExporter):
    def __init__(self, config: StoreConfig) -> None:
        self.store = StoreWriter(config)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ok = _stored(self.store, self.store.write_spans, spans)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.store.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def local_log_exporter(config: StoreConfig) -> Any:
    """The log record exporter, built on whichever base class this SDK release has."""
    try:
        from opentelemetry.sdk._logs.export import LogRecordExporter as Base
        from opentelemetry.sdk._logs.export import LogRecordExportResult as Result
    except ImportError:  # SDK < 1.39
        from opentelemetry.sdk._logs.export import LogExporter as Base  # type: ignore[attr-defined,no-redef]
        from opentelemetry.sdk._logs.export import LogExportResult as Result  # type: ignore[attr-defined,no-redef]

    class LocalLogExporter(Base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            self.store = StoreWriter(config)

        def export(self, batch: Sequence[Any]) -> Any:
            return Result.SUCCESS if _stored(self.store, self.store.write_logs, batch) else Result.FAILURE

        def shutdown(self) -> None:
            self.store.close()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return LocalLogExporter()
