"""The proxy base for the objects handed back to the caller in place of the SDK's own.

wrapt 2 splits its proxy in two: `BaseObjectProxy` forwards attributes and type checks only, `ObjectProxy` also
grows iterator and context-manager methods that would make a sync stream look async. We define the protocol methods
each proxy really has, so the lean base is used where it exists.
"""

from __future__ import annotations

try:
    from wrapt import BaseObjectProxy as Proxy
except ImportError:  # wrapt < 2
    from wrapt import ObjectProxy as Proxy

__all__ = ["Proxy"]
