"""The one place where a bug in the telemetry is reported.

Instrumentation must never raise into the application. Every guarded block ends here: in production the error is
logged at debug level (once per place, so a broken mapper cannot flood the logs); under the test suite
(`STRICT = True`, set by `tests/conftest.py`) it is re-raised so that bugs surface instead of hiding.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("gateway_otel")

STRICT = False
"""Re-raise internal errors instead of logging them. For this package's own tests only."""

_reported: set[str] = set()


def internal_error(where: str) -> None:
    """Report the exception being handled, raised by telemetry code at `where`; call from an `except` block."""
    if STRICT:
        raise
    if where in _reported:
        logger.debug("gateway_otel: internal error in %s (repeated)", where)
        return
    _reported.add(where)
    logger.debug("gateway_otel: internal error in %s; the application's call is unaffected", where, exc_info=True)
