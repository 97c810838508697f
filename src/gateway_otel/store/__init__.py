"""The local store: spans and log records in one SQLite file, both sides of it.

The `local` destination writes here (`LocalSpanExporter`, `local_log_exporter`, on the exporting thread) and the
`local` query backend reads here (`gateway_otel.query`). It is the default destination when none is configured.

- `_config`: where the file is and how long it keeps data (`StoreConfig`, from `GATEWAY_OTEL_LOCAL_*`), and
  which file a query reads (`read_path`: the demo's until an application has stored).
- `_database`: the schema, connections (WAL, busy timeout) and write transactions.
- `_rows`: a finished span or log record → the values of its row (the LLM columns from `_semconv.lift`).
- `_cells`: the row's JSON cells, compact (content once, names as numbers from `_names`, large cells deflated, the
  resource by reference), and back (`attributes_of`, `events_of`).
- `_writer`: batched inserts and retention; `_exporters`: the SDK exporters around the writer.
"""

from typing import TYPE_CHECKING, Any

from ._cells import attributes_of, events_of
from ._config import StoreConfig, default_path, demo_path, read_path, store_config
from ._database import SEVERITIES, SEVERITY_FLOOR, SPAN_COLUMNS, connect, transaction
from ._writer import StoreWriter, prune, used_bytes

if TYPE_CHECKING:
    from ._exporters import LocalSpanExporter, local_log_exporter


def __getattr__(name: str) -> Any:
    """The exporters (which import the OpenTelemetry SDK) at first use: a query of the store does not need them."""
    if name in ("LocalSpanExporter", "local_log_exporter"):
        from . import _exporters

        return getattr(_exporters, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "SEVERITIES",
    "SEVERITY_FLOOR",
    "SPAN_COLUMNS",
    "LocalSpanExporter",
    "StoreConfig",
    "StoreWriter",
    "attributes_of",
    "connect",
    "default_path",
    "demo_path",
    "events_of",
    "local_log_exporter",
    "prune",
    "read_path",
    "store_config",
    "transaction",
    "used_bytes",
]
