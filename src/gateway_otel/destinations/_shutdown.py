"""One deadline for the whole shutdown: traces, metrics and logs of every destination, whether the application calls
`Providers.shutdown()` or simply ends (`configure()` registers one `atexit` handler here instead of the SDK
providers' three).

Why: each SDK part waits on its own — the batch span processor, the metric reader and the batch log processor each
flush through an exporter with a 10 s timeout and retries — and the providers shut them down one after the other,
so a dead collector added 7.5 to 20 s to the exit of a three-call script (measured; see `tests/test_exit.py`).
Here every part of every destination is shut down at once, each on its own daemon thread, and we wait for all of
them until one deadline. The exporters are told what remains of it (`_guard`); whatever still runs at the deadline
is left behind, and being a daemon thread it cannot keep the process alive.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

logger = logging.getLogger("gateway_otel")

DEFAULT_SHUTDOWN_TIMEOUT = 5.0
"""Seconds; `configure(shutdown_timeout=...)`, else `GATEWAY_OTEL_SHUTDOWN_TIMEOUT`, else this."""

Task = tuple[str, Callable[[], object]]


class Deadline:
    """A moment `seconds` from now, on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())


def _quietly(name: str, task: Callable[[], object], finished: set[str]) -> Callable[[], None]:
    def run() -> None:
        try:
            if task() is not False:
                finished.add(name)
        except Exception:  # a part that fails to stop must not stop the others, nor print a thread traceback
            finished.add(name)
            logger.debug("gateway_otel: shutting down %s failed", name, exc_info=True)

    return run


def within(deadline: Deadline, tasks: Sequence[Task]) -> list[str]:
    """Run every task at once, each on a daemon thread; wait for them until `deadline`; the names of those still
    running, or that returned `False` (they gave up at the deadline themselves: late all the same)."""
    threads = []
    finished: set[str] = set()
    for name, task in tasks:
        thread = threading.Thread(
            target=_quietly(name, task, finished), name=f"gateway-otel-shutdown-{name}", daemon=True
        )
        thread.start()
        threads.append((name, thread))
    for _, thread in threads:
        thread.join(deadline.remaining())
    return [name for name, _ in threads if name not in finished]


class Stoppable(Protocol):
    """What a destination's processor offers the shutdown (`_processor.DestinationProcessor`)."""

    name: str

    def shutdown_tasks(self, deadline: Deadline) -> list[Task]: ...

    def gave_up(self, deadline: Deadline) -> None: ...


_workers: list[tuple[str, Callable[[float], bool]]] = []


def also_stop(name: str, stop: Callable[[float], bool]) -> None:
    """A process-wide worker that feeds the destinations (the OpenRouter generation fetcher): every shutdown stops it
    too, at once with the destinations and within the same deadline; `stop(seconds)` says whether it stopped."""
    if all(known != name for known, _ in _workers):
        _workers.append((name, stop))


def _worker_tasks(deadline: Deadline) -> list[Task]:
    return [(name, lambda stop=stop: stop(deadline.remaining())) for name, stop in _workers]


def shut_down(destinations: Sequence[Stoppable], providers: Sequence[Any], seconds: float) -> None:
    """Stop every signal of every destination (and the workers that feed them, `also_stop`) within `seconds` in all,
    then the SDK providers themselves (whose parts are stopped by then, so they return at once)."""
    deadline = Deadline(seconds)
    late = within(
        deadline, [*_worker_tasks(deadline), *(task for d in destinations for task in d.shutdown_tasks(deadline))]
    )
    for name, _ in _workers:
        if name in late:  # a request under way at the deadline: left behind on its daemon thread, nothing emitted
            logger.debug("gateway_otel: %s was still busy at the shutdown deadline", name)
    for destination in destinations:
        if any(name.startswith(f"{destination.name} ") for name in late):
            destination.gave_up(deadline)
    for provider in providers:
        _quietly(type(provider).__name__, provider.shutdown, set())()


class Closable(Protocol):
    shutdown_timeout: float

    def shutdown(self) -> None: ...


_open: list[Closable] = []
_lock = threading.Lock()
_registered = False


_REPORTING = 0.5
"""Seconds given, past its own deadline, to a `Providers.shutdown()` run beside others at exit: the time to say
which destination gave up (measured: milliseconds)."""


def _at_exit() -> None:
    """Shut down what `configure()` built and nobody shut down, all at once: the slowest bound, not their sum."""
    with _lock:
        pending = list(_open)
    if len(pending) == 1:
        pending[0].shutdown()  # each returns by its own deadline
    elif pending:
        longest = Deadline(max(p.shutdown_timeout for p in pending) + _REPORTING)
        within(longest, [(f"providers-{i}", p.shutdown) for i, p in enumerate(pending)])


def register(providers: Closable) -> None:
    """Shut `providers` down at exit, within its `shutdown_timeout`, unless it was shut down before."""
    global _registered
    with _lock:
        if not _registered:
            _registered = True
            atexit.register(_at_exit)
        _open.append(providers)


def forget(providers: Closable) -> None:
    with _lock:
        for i, candidate in enumerate(_open):
            if candidate is providers:
                del _open[i]
                return
