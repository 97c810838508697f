"""The one rule for showing a credential: its scheme, if any, and at most its last four characters.

Every place that shows a secret to a person (the CLI, `doctor`, a destination's `to_dict()`, OpenRouter Broadcast's
settings) masks it here, so a value is masked the same way wherever it appears.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["MIN_LENGTH_FOR_TAIL", "mask", "url_without_credentials"]

MIN_LENGTH_FOR_TAIL = 16
"""Secrets shorter than this show no characters at all: four of twelve would give away a third of it."""
_SCHEMES = ("basic", "bearer", "token", "apikey", "api-key")
_ALREADY_MASKED = ("...", "…", "****")


def mask(value: object) -> str:
    """`value` as its scheme and last four characters: `Bearer ****7890`; `****` for a short one.

    A value that is already masked (OpenRouter shows `pk-l...EfGh`) is shown as it is.
    """
    text = str(value)
    if any(marker in text for marker in _ALREADY_MASKED):
        return text
    scheme, space, token = text.partition(" ")
    if not space or scheme.lower() not in _SCHEMES:
        scheme, token = "", text
    tail = token[-4:] if len(token) >= MIN_LENGTH_FOR_TAIL else ""
    return f"{scheme + ' ' if scheme else ''}****{tail}"


def url_without_credentials(url: str, *, query: str = "drop") -> str:
    """`url` without its `user:password@` part; its query string dropped (`query="drop"`), kept (`"keep"`) or
    masked (`"mask"`, shown as `?****`), since a query may carry a token too."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    kept = parts.query if query == "keep" else ("****" if query == "mask" and parts.query else "")
    return urlunsplit((parts.scheme, netloc, parts.path, kept, ""))
