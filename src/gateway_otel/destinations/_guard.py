"""A destination's exporters, guarded: what they fail to send is counted and said once per destination and cause,
in plain words (`_causes`), and the SDK exporters' own log lines are held back.

Why hold those lines back: the OTLP exporters log every retry and every failed batch, with raw urllib3 or gRPC texts
and no destination name (the log exporter wrote 9 lines in 20 s to a dead collector). The filter here holds back
only the records logged on the thread of one of our exports, while that export runs (`capturing()`): the same
loggers, used by anyone else or at any other moment, are untouched, and the user's logging configuration is not
changed. What the exporter said is the evidence `_causes.classify` reads; nothing is lost but the repetition.

Shutdown: once `Health.deadline` is set, an export gets at most what remains of it. The SDK exporter's timeout is
lowered to that (`limit_timeout`: the HTTP exporters keep it on their client from SDK 1.4x, on themselves before;
the gRPC ones on themselves), which bounds their retries too from SDK 1.34 on, whose retry loops end at the
timeout; past the deadline nothing more is attempted.
"""

from __future__ import annotations

import inspect
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._semconv import without_content
from ._causes import ACCEPTS, Cause, classify, shown, timed_out, where
from ._shutdown import Deadline

logger = logging.getLogger("gateway_otel")

_local = threading.local()
_HELD_BACK = ("opentelemetry.exporter", "opentelemetry.sdk", "grpc", "urllib3", "requests", "gateway_otel.store")
_known = 0


class _HoldBack(logging.Filter):
    """Keeps a warning or error out of the logs, as evidence, when it is logged during one of our exports on this
    thread. Debug and info records pass: whoever turned them on asked to see the exporters' chatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        records = getattr(_local, "records", None)
        if records is None or record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        records.append(message)
        on_record = getattr(_local, "on_record", None)
        if on_record is not None:
            records.extend(on_record(message))
        return False


_FILTER = _HoldBack()


def _attach() -> None:
    """Put the filter first on every logger it concerns (first: the SDK's `DuplicateFilter` would hide a repeated
    record from it). A logger's filter does not see its children's records, hence every logger, as they appear."""
    global _known
    loggers = logging.root.manager.loggerDict
    if len(loggers) == _known:
        return
    _known = len(loggers)
    for name in [n for n in loggers if n.startswith(_HELD_BACK)]:
        found = logging.getLogger(name)
        if _FILTER not in found.filters:
            found.filters.insert(0, _FILTER)


@contextmanager
def capturing(on_record: Callable[[str], list[object]] | None = None) -> Iterator[list[object]]:
    """The exporters' log records (and, appended by the caller, exceptions) of the block, held back; `on_record`
    may add evidence of its own to each."""
    _attach()
    outer = getattr(_local, "records", None), getattr(_local, "on_record", None)
    _local.records, _local.on_record = records, _ = [], on_record
    try:
        yield records
    finally:
        _local.records, _local.on_record = outer


def limit_timeout(exporter: Any, seconds: float) -> None:
    """Lower an SDK OTLP exporter's timeout to `seconds`, wherever its release keeps it; others are left alone."""
    for holder in (getattr(exporter, "_client", None), exporter):
        current = getattr(holder, "_timeout", None)
        if isinstance(current, (int, float)) and not isinstance(current, bool) and current > seconds:
            holder._timeout = seconds


def connect_evidence(endpoint: str, seconds: float) -> list[object]:
    """Why `endpoint` cannot be reached, when the exporter failed without saying (the HTTP exporter of SDK 1.4x logs
    nothing when its first back-off would pass its timeout; the gRPC one before 1.3x says UNAVAILABLE, no more):
    the error of one TCP connection attempt, or `ACCEPTS` when it connects."""
    if "://" not in endpoint:
        return []
    host, _, port = where(endpoint).rpartition(":")
    if not host or not port.isdigit():
        return []
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=max(seconds, 0.05)):
            return [ACCEPTS]
    except OSError as error:
        return [error]


def diagnosis(endpoint: str, timeout: float, budget: Callable[[], float]) -> Callable[[str], list[object]]:
    """For `capturing()`: on the first "UNAVAILABLE" the gRPC exporter logs without a reason (SDK < 1.3x), one TCP
    connection, of at most `budget()` seconds, finds it."""
    done: list[bool] = []

    def diagnose(message: str) -> list[object]:
        if done or "unavailable" not in message.lower():
            return []
        done.append(True)
        kind = classify([message], endpoint=endpoint, timeout=timeout).kind
        return connect_evidence(endpoint, budget()) if kind in ("unknown", "other") else []

    return diagnose


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else f"{text}."


class Health:
    """One destination's troubles: counted, and each cause said once, naming the destination and the endpoint."""

    def __init__(self, name: str, destination_type: str = "", timeout: float = 10.0) -> None:
        self.name = name
        self.type = destination_type
        self.timeout = timeout
        self.deadline: Deadline | None = None
        """Set when the shutdown starts: from then on exports get at most what remains of it."""
        self.failed_metric_exports = 0
        self.failed_log_records = 0
        self.guards: list[Guard] = []
        self._said: set[str] = set()
        self._lock = threading.Lock()
        self._under_way: dict[int, tuple[str, list[object]]] = {}

    def say_once(self, kind: str, message: str, *, counted: str = "failures") -> None:
        with self._lock:
            if kind in self._said:
                return
            self._said.add(kind)
        logger.warning(
            "gateway_otel: destination %r %s The application is unaffected; further %s are counted, not logged.",
            self.name,
            _sentence(message),
            counted,
        )

    def said_a_cause(self) -> bool:
        return bool(self._said - {"queue full"})

    def report(self, cause: Cause, endpoint: str) -> None:
        if cause.kind == "unknown" and self.said_a_cause():
            return  # an export cut short (by the shutdown) says nothing new about a destination already reported
        self.say_once(cause.kind, f"cannot export to {shown(endpoint)}: {cause.text}")

    def gave_up(self, deadline: Deadline) -> None:
        """The shutdown deadline passed with exports under way: say why, from what they have said so far."""
        with self._lock:
            under_way = list(self._under_way.values())
        endpoint = under_way[0][0] if under_way else (self.guards[0].endpoint if self.guards else "")
        evidence = [item for _, items in under_way for item in items]
        cause = classify(evidence, endpoint=endpoint, timeout=deadline.seconds, destination_type=self.type)
        if cause.kind in ("other", "unknown", "timeout"):
            cause = timed_out(deadline.seconds, endpoint, deadline=True)
        self.report(cause, endpoint)
        for guard in self.guards:
            threading.Thread(target=guard.shutdown, daemon=True).start()  # ends the retries still waiting

    def _begin(self, endpoint: str, evidence: list[object]) -> None:
        with self._lock:
            self._under_way[id(evidence)] = (endpoint, evidence)

    def _end(self, evidence: list[object]) -> None:
        with self._lock:
            self._under_way.pop(id(evidence), None)


def _accepts_timeout(method: Callable[..., Any]) -> bool:
    try:
        return "timeout_millis" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class Guard:
    """One signal's exporter of one destination: every call held to the deadline, failures classified and said."""

    def __init__(self, health: Health, exporter: Any, endpoint: str) -> None:
        _attach()
        self.health = health
        self.exporter = exporter
        self.endpoint = endpoint
        self.deadline: Deadline | None = None
        """This signal's own deadline (its processor alone is shut down), else the destination's (`Health`)."""
        self._closed = False
        health.guards.append(self)

    def attempt(self, send: Callable[[], Any], succeeded: Callable[[Any], bool]) -> bool:
        """`send()` within the destination's timeout and what remains of the deadline; False when it failed."""
        health = self.health
        timeout = health.timeout
        deadline = self.deadline or health.deadline
        if deadline is not None:
            left = deadline.remaining()
            if left <= 0:
                return False  # past the deadline: nothing more is attempted; the shutdown says why
            timeout = min(timeout, 0.9 * left)  # the exporter gives up, and says why, before we stop waiting
            limit_timeout(self.exporter, timeout)
        started = time.monotonic()
        with capturing(self._diagnosis(timeout)) as evidence:
            health._begin(self.endpoint, evidence)
            try:
                ok = succeeded(send())
            except Exception as error:  # the HTTP exporters of SDK < 1.3x raise on a refused connection
                logger.debug("gateway_otel: destination %r: its exporter raised", health.name, exc_info=True)
                evidence.append(error)
                ok = False
            finally:
                health._end(evidence)
        if not ok:
            elapsed = time.monotonic() - started
            cause = classify(
                evidence, endpoint=self.endpoint, timeout=timeout, destination_type=health.type, elapsed=elapsed
            )
            if cause.kind == "unknown" and not health.said_a_cause():
                found = [e for e in connect_evidence(self.endpoint, self._budget()) if e is not ACCEPTS]
                cause = classify(
                    [*evidence, *found], endpoint=self.endpoint, timeout=self._budget(), destination_type=health.type
                )
            health.report(cause, self.endpoint)
        return ok

    def _budget(self) -> float:
        """Seconds a diagnosis may take: one, and never more than half of what remains of the deadline."""
        deadline = self.deadline or self.health.deadline
        return min(1.0, deadline.remaining() / 2) if deadline else 1.0

    def _diagnosis(self, timeout: float) -> Callable[[str], list[object]]:
        return diagnosis(self.endpoint, timeout, self._budget)

    def shutdown(self, **kwargs: Any) -> None:
        """Shut the exporter down once, its own log lines held back; waits at most what remains of the deadline."""
        with self.health._lock:
            if self._closed:
                return
            self._closed = True
        deadline = self.deadline or self.health.deadline
        if deadline is not None and _accepts_timeout(self.exporter.shutdown):
            kwargs["timeout_millis"] = deadline.remaining() * 1000
        with capturing():
            try:
                self.exporter.shutdown(**kwargs)
            except Exception:
                logger.debug("gateway_otel: destination %r: exporter shutdown failed", self.health.name, exc_info=True)


def _log_result(success: bool) -> Any:
    try:
        from opentelemetry.sdk._logs.export import LogRecordExportResult as Result
    except ImportError:  # SDK < 1.39
        from opentelemetry.sdk._logs.export import LogExportResult as Result  # type: ignore[attr-defined,no-redef]
    return Result.SUCCESS if success else Result.FAILURE


def _log_without_content(item: Any) -> Any:
    """A copy of an exported log record (`ReadableLogRecord`, or `LogData` before SDK 1.39) minus content."""
    import copy

    record = copy.copy(item.log_record)
    record.attributes = without_content(record.attributes or {})
    clone = copy.copy(item)
    object.__setattr__(clone, "log_record", record)
    return clone


class GuardedLogExporter:
    """A destination's log record exporter (duck-typed: the SDK's processors call only these three methods), guarded
    like its spans and metrics; in privacy mode the records lose their prompt and completion attributes."""

    def __init__(self, health: Health, exporter: Any, endpoint: str, *, privacy_mode: bool = False) -> None:
        self._guard = Guard(health, exporter, endpoint)
        self._exporter = exporter
        self._privacy_mode = privacy_mode

    def export(self, batch: Sequence[Any]) -> Any:
        if self._privacy_mode:
            batch = [_log_without_content(item) for item in batch]
        ok = self._guard.attempt(lambda: self._exporter.export(batch), lambda r: getattr(r, "name", "") == "SUCCESS")
        if not ok:
            self._guard.health.failed_log_records += len(batch)
        return _log_result(ok)

    def shutdown(self) -> None:
        self._guard.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._exporter.force_flush(timeout_millis))
