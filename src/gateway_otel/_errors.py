"""The errors gateway-otel raises, under one root, so an application can catch all of them at once.

```
GatewayOtelError
 ├── ConfigurationError (also a ValueError)   a setting has a value that cannot be used; raised at set-up
 ├── QueryError (also a RuntimeError)         a query backend could not answer
 └── BroadcastError                           OpenRouter's management API could not answer
```
Each message is one line that names what is wrong (the setting, the backend, the URL without credentials) and what
to do; none carries a credential. Instrumentation never raises any of them into the application's calls.
"""

from __future__ import annotations

__all__ = ["BroadcastError", "ConfigurationError", "GatewayOtelError", "QueryError"]


class GatewayOtelError(Exception):
    """The root of every error gateway-otel raises."""


class ConfigurationError(GatewayOtelError, ValueError):
    """A setting has a value that cannot be used; the message names the setting and what it expects."""


class QueryError(GatewayOtelError, RuntimeError):
    """A backend could not answer a query; the message is one line that says why."""


class BroadcastError(GatewayOtelError):
    """OpenRouter's management API could not answer; the message is one line that says what to do. `status` is the
    HTTP status OpenRouter answered with, when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
