"""Query backends by name: `Telemetry(backend="local")` looks the name up here.

Each entry builds a `Backend` from keyword options (those the user passed to `Telemetry(...)`); it reads the same
variables as the destination preset of the same name, so a process queries where it exports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._model import Backend


def _local_backend(**options: Any) -> Backend:
    from ._local_store import LocalBackend

    return LocalBackend(**options)


def _openobserve_backend(**options: Any) -> Backend:
    from ._openobserve import OpenObserveBackend

    return OpenObserveBackend.from_env(**options)


def _phoenix_backend(**options: Any) -> Backend:
    from ._phoenix import PhoenixBackend

    return PhoenixBackend.from_env(**options)


BACKENDS: dict[str, Callable[..., Backend]] = {
    "local": _local_backend,
    "openobserve": _openobserve_backend,
    "phoenix": _phoenix_backend,
}


BACKEND_NAMES = tuple(BACKENDS)
"""The backends a query can name: `Telemetry("local")`, `gateway-otel traces --backend phoenix`."""


def make_backend(name: str, **options: Any) -> Backend:
    """The backend called `name`; `ValueError` naming the ones there are when it is not one of them."""
    factory = BACKENDS.get(name.strip().lower()) if isinstance(name, str) else None
    if factory is None:
        expected = f"one of {', '.join(BACKEND_NAMES)} or a Backend object"
        raise ValueError(f"backend={name!r} is not valid: expected {expected}")
    try:
        return factory(**options)
    except TypeError as error:
        raise ValueError(f"backend={name!r} does not take these options: {error}") from None
