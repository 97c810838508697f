"""Which httpx the installed openai runs on: a leaf, so the simulator's transport and the OpenRouter generation
fetcher pick the same module.

openai >= 3 runs on `httpx2` (a fork with the same API), openai 1.x/2.x on `httpx`; an `openai.OpenAI` client only
accepts a client of its own flavour, and only that one is sure to be installed.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType
from typing import Any

__all__ = ["httpx_module"]


@cache
def httpx_module() -> ModuleType:
    """`httpx2` or `httpx`: the one the installed openai runs on (or, without openai, whichever is installed)."""
    try:
        base: Any = importlib.import_module("openai._base_client")
    except ImportError:
        base = None
    for name in ("httpx2", "httpx"):
        module = getattr(base, name, None)
        if isinstance(module, ModuleType):
            return module
    for name in ("httpx2", "httpx"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("gateway_otel needs httpx2 (openai >= 3) or httpx (openai < 3)")
