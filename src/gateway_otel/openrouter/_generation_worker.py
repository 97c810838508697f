"""The one background worker per process that fetches OpenRouter's generation records after the calls
(`openrouter_generation=True`), never on the caller's path.

- A call that ended only queues a job (`put`: the generation id, its span's context, the base URL, the caller's key,
  where to emit): a lock, a heap push, a notify. The queue holds `MAX_PENDING` jobs; beyond, a job is dropped and
  counted, said once.
- One daemon thread, started at the first job (and again after a `fork()` or a shutdown, at the next one), asks each
  generation from `FIRST_DELAY` after its call; a 404 (not ready yet) or a transient status (429, 5xx) is asked again
  with doubling delays up to `MAX_DELAY`, until `GIVE_UP_AFTER` seconds after the call (then given up, counted, said
  once). Jobs wait in a heap by due time, so one generation's back-off never holds up another's.
- A failure with no point asking again (the gateway down, the key refused) is said once per cause, in the
  destinations' words, with no credential: the key lives in the job only, which never shows it (`repr`).
- Shutdown: `Providers.shutdown()` and the exit stop it within their one deadline (`destinations/_shutdown.py`):
  queued jobs are abandoned and counted, a request under way gets what remains of the deadline, and its answer is not
  emitted. The exit does not wait for generations that are not ready yet.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .._internal import internal_error
from ._generation import Answer, fetch

__all__ = ["GenerationWorker", "generation_worker"]

logger = logging.getLogger("gateway_otel")

MAX_PENDING = 1000
"""Jobs the queue holds; more are dropped and counted (a process making calls faster than one thread can ask)."""
FIRST_DELAY = 0.5
"""Seconds after the call before the first request (OpenRouter has the record a few seconds after a call)."""
MAX_DELAY = 8.0
"""The longest wait between two requests for one generation."""
GIVE_UP_AFTER = 30.0
"""Seconds after the call past which a generation still not ready (404) is given up: at most ~8 requests."""
REQUEST_TIMEOUT = 10.0
"""Seconds one request may take (5 to connect)."""

Emit = Callable[[Any, dict[str, Any]], None]
"""Emits the record: (the span's `SpanContext`, the attributes)."""


class _Job:
    """One generation to fetch. It holds the caller's key and never shows it."""

    __slots__ = ("_key", "attempts", "base_url", "emit", "generation_id", "span_context", "started")

    def __init__(self, generation_id: str, span_context: Any, base_url: str, key: str, emit: Emit) -> None:
        self.generation_id = generation_id
        self.span_context = span_context
        self.base_url = base_url
        self._key = key
        self.emit = emit
        self.started = time.monotonic()
        self.attempts = 0

    def __repr__(self) -> str:
        return f"_Job({self.generation_id!r}, attempts={self.attempts})"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else f"{text}."


class GenerationWorker:
    """The queue and the thread that fetch generation records; `stats()` counts what became of the jobs."""

    def __init__(self) -> None:
        self._said: set[str] = set()
        self._reset()

    def _reset(self) -> None:
        """Empty, no thread, no client: at start-up and in a forked child (the parent's thread is not there, and its
        connections are the parent's)."""
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Job]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._client: Any = None
        self.emitted = self.retried = self.dropped = self.gave_up = self.failed = self.abandoned = 0

    def stats(self) -> dict[str, int]:
        """Jobs queued now; records emitted; requests asked again; jobs dropped (queue full), given up (never
        ready), failed (the gateway down, the key refused...) and abandoned at a shutdown."""
        with self._cond:
            queued = len(self._heap)
        return {
            "queued": queued,
            "emitted": self.emitted,
            "retried": self.retried,
            "dropped": self.dropped,
            "gave_up": self.gave_up,
            "failed": self.failed,
            "abandoned": self.abandoned,
        }

    def put(self, generation_id: str, span_context: Any, base_url: str, key: str, emit: Emit) -> None:
        """Queue one generation (the caller's path: never blocks on the network, never raises)."""
        try:
            job = _Job(generation_id, span_context, base_url, key, emit)
            with self._cond:
                full = len(self._heap) >= MAX_PENDING
                if full:
                    self.dropped += 1
                else:
                    heapq.heappush(self._heap, (job.started + FIRST_DELAY, next(self._order), job))
                    if self._heap[0][2] is job:  # due first: the worker's wait changes (else it would wake for nothing)
                        self._cond.notify()
                    if self._thread is None:
                        self._start()
            if full:
                self.say_once(
                    "queue full",
                    f"are dropped: {MAX_PENDING} calls are already waiting for theirs",
                    counted="drops",
                )
        except Exception:
            internal_error("openrouter generation queue")

    def _start(self) -> None:
        """Start the thread (the lock held); where none can start (at interpreter shutdown) the queue is abandoned."""
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(stop,), name="gateway_otel-openrouter-generation")
        thread.daemon = True
        try:
            thread.start()
        except RuntimeError:
            self.abandoned += len(self._heap)
            self._heap.clear()
            return
        self._thread, self._stop = thread, stop

    def _run(self, stop: threading.Event) -> None:
        while True:
            with self._cond:
                while not stop.is_set() and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if stop.is_set():
                    return
                _, _, job = heapq.heappop(self._heap)
            try:
                self._attempt(job, stop)
            except Exception:
                internal_error("openrouter generation worker")

    def _http(self) -> Any:
        """Our own httpx client (the flavour openai runs on), never the application's: its requests are not the
        application's calls, and the openai client may be closed or async by now."""
        if self._client is None:
            from .._httpx import httpx_module

            httpx = httpx_module()
            self._client = httpx.Client(timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=min(5.0, REQUEST_TIMEOUT)))
        return self._client

    def _attempt(self, job: _Job, stop: threading.Event) -> None:
        job.attempts += 1
        answer: Answer = fetch(self._http(), job.base_url, job.generation_id, job._key, REQUEST_TIMEOUT)
        if stop.is_set():  # the destinations are shutting down: nothing more is emitted
            self.abandoned += 1
        elif answer.attributes is not None:
            job.emit(job.span_context, answer.attributes)
            self.emitted += 1
        elif answer.retry is not None:
            self._again(job, answer.retry)
        else:
            self.failed += 1
            self.say_once(answer.kind, str(answer.failure))

    def _again(self, job: _Job, status: int) -> None:
        """Ask again after a doubling delay, unless that would pass `GIVE_UP_AFTER` seconds after the call."""
        due = time.monotonic() + min(FIRST_DELAY * 2 ** (job.attempts - 1), MAX_DELAY)
        if due - job.started > GIVE_UP_AFTER:
            self.gave_up += 1
            self.say_once(
                "gave up",
                f"are given up after {GIVE_UP_AFTER:g} s: {job.generation_id} still answered HTTP {status} at each of "
                f"{job.attempts} requests ({'not ready yet' if status == 404 else 'the endpoint is busy'})",
                counted="give-ups",
            )
            return
        self.retried += 1
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._order), job))
            self._cond.notify()

    def say_once(self, kind: str, message: str, *, counted: str = "failures") -> None:
        if kind in self._said:
            return
        self._said.add(kind)
        logger.warning(
            "gateway_otel: OpenRouter generation details %s The application is unaffected; further %s are counted, "
            "not logged.",
            _sentence(message),
            counted,
        )

    def stop(self, seconds: float) -> bool:
        """Abandon the queued jobs and stop the thread, waiting at most `seconds` for a request under way; whether
        it stopped. A later job starts a new thread."""
        with self._cond:
            self.abandoned += len(self._heap)
            self._heap.clear()
            thread, stop = self._thread, self._stop
            self._thread = self._stop = None
            if stop is not None:
                stop.set()
            self._cond.notify_all()
        if thread is None:
            return True
        thread.join(max(seconds, 0.0))
        return not thread.is_alive()


_worker: GenerationWorker | None = None
_worker_lock = threading.Lock()


def generation_worker() -> GenerationWorker:
    """The process's worker, made at the first use; the shutdown and the exit stop it."""
    global _worker
    with _worker_lock:
        if _worker is None:
            from ..destinations import _shutdown

            _worker = GenerationWorker()
            _shutdown.also_stop("openrouter-generation", _worker.stop)
            atexit.register(_worker.stop, 0.0)  # an application with its own providers: nothing emitted at exit
        return _worker


def _after_fork() -> None:
    """A forked child starts with an empty queue and no thread; its first job starts its own."""
    global _worker_lock
    _worker_lock = threading.Lock()
    if _worker is not None:
        _worker._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
