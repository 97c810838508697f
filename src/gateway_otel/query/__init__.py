"""Query API: ask the local store, OpenObserve or Phoenix the same questions (traces, metrics, logs).

```python
from gateway_otel import Telemetry
telemetry = Telemetry()                                   # the local store; Telemetry("phoenix"), a Backend...
telemetry.traces.query(model="openai/gpt-4o-mini", status="error", time_window="24h")
telemetry.metrics.query("inference_latency", time_window="7d", step="1d", percentile=0.95)
telemetry.logs.query(severity="error")
```
"""

from .._errors import QueryError
from ._client import AsyncTelemetry, Telemetry
from ._metrics import METRIC_PRESETS
from ._model import (
    Backend,
    LogQuery,
    LogRow,
    LogsResult,
    MetricSeries,
    MetricsResult,
    SpanQuery,
    SpanRow,
    TracesResult,
)

__all__ = [
    "METRIC_PRESETS",
    "AsyncTelemetry",
    "Backend",
    "LogQuery",
    "LogRow",
    "LogsResult",
    "MetricSeries",
    "MetricsResult",
    "QueryError",
    "SpanQuery",
    "SpanRow",
    "Telemetry",
    "TracesResult",
]
