"""Credentials: the one rule for showing one (`mask`), and the rules for keeping them out of telemetry.

Every place that shows a secret to a person (the CLI, `doctor`, a destination's `to_dict()`, OpenRouter Broadcast's
settings) masks it here, so a value is masked the same way wherever it appears. Telemetry never shows one at all:
a request body's credential-named fields and credential-shaped values are replaced (`redact`), and the values the
client sent as credentials (its key, an Azure AD token, credential headers) are replaced wherever text echoes them
(`Scrubber`) — before any cut, so no part of one survives a truncation.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "MIN_LENGTH_FOR_TAIL",
    "REDACTED",
    "Scrubber",
    "is_credential_name",
    "mask",
    "redact",
    "redact_shapes",
    "url_without_credentials",
]

REDACTED = "[REDACTED]"
_USER_INFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#]*@")
"""What may be `user:password@` at the start of a URL's authority, with or without `scheme://` before it."""

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
    masked (`"mask"`, shown as `?****`), since a query may carry a token too. A value that is not `scheme://host`
    (a setting's typo, shown in its error) loses the same parts by their shape."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable: `http://u:p@[::1`
        return _by_shape(url, query)
    if not parts.scheme or not parts.netloc:  # not `scheme://host`: `user:pw@host:4318`, `host/?token=...`
        return _by_shape(url, query)
    netloc = parts.netloc.rpartition("@")[2]
    kept = parts.query if query == "keep" else ("****" if query == "mask" and parts.query else "")
    return urlunsplit((parts.scheme, netloc, parts.path, kept, ""))


def _by_shape(url: str, query: str) -> str:
    """A URL `urlsplit` cannot read as `scheme://host`, without what could be user-info or a query by their shape
    (its query is masked unless dropped: there is no telling where it ends)."""
    base, mark, _ = _USER_INFO.sub(r"\1", url).partition("?")
    return base + ("?****" if mark and query != "drop" else "")


# --- what is a credential ------------------------------------------------------------------------------------------

_CREDENTIAL_WORDS = frozenset(
    {
        "apikey", "auth", "authorization", "bearer", "cookie", "cookies", "credential", "credentials", "jwt",
        "passphrase", "passwd", "password", "pwd", "sas", "secret", "secrets", "signature", "token",
        "privatekey", "accesskey", "secretkey", "sessionkey",
    }
)  # fmt: skip
"""A field named with one of these words holds a credential: `access_token`, `authToken`, `aws_secret_access_key`,
`x-goog-api-key`, `vertex_credentials`, `private_key`, `sas_token`, `Cookie`, `client_secret`... (`tokens`, plural,
is a count: `max_tokens` stays)."""
_KEY_NAMES_THAT_ARE_NOT_CREDENTIALS = frozenset({"promptcachekey", "cachekey", "idempotencykey", "partitionkey"})
"""Names ending in `key` that are identifiers, not secrets (OpenAI's `prompt_cache_key`)."""
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _is_credential_name(name: str) -> bool:
    """Whether a field or header called `name` holds a credential: one of its words (split at `_`, `-`, `.` and
    camelCase) is a credential word, or it ends in `key` (`api_key`, `openrouter_key`, `x-api-key`, `key`)."""
    words = [w.lower() for w in _WORD.findall(name)]
    if not words:
        return False
    joined = "".join(words)
    if joined in _KEY_NAMES_THAT_ARE_NOT_CREDENTIALS:
        return False
    if words[-1] in ("key", "keys") or joined in _CREDENTIAL_WORDS:
        return True
    pairs = {a + b for a, b in itertools.pairwise(words)}
    return any(w in _CREDENTIAL_WORDS for w in words) or bool(pairs & _CREDENTIAL_WORDS)


is_credential_name = lru_cache(maxsize=1024)(_is_credential_name)
"""`_is_credential_name`, cached: a body's field names repeat call after call. (Wrapped, not decorated, so that
mutation testing, `bench/mutate.py`, reaches the function.)"""


_SHAPES = re.compile(
    r"-----BEGIN [A-Z0-9 ]*-----[\s\S]*?(?:-----END [A-Z0-9 ]*-----|$)"  # a PEM block (a private key, a certificate)
    r"|\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # a JWT (Azure AD, Google, any OAuth token)
    r"|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"  # OpenAI, OpenRouter, Anthropic, Stripe-style keys
    r"|\bAKIA[0-9A-Z]{16}\b|\bASIA[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}"  # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|\bhf_[A-Za-z0-9]{30,}"  # Hugging Face tokens
    r"|\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{12,}",  # an Authorization value
    re.IGNORECASE,
)
"""Values that are credentials whatever field holds them."""
_SHAPE_HINT = re.compile(r"-----begin|eyj|sk-|pk-|rk-|akia|asia|aiza|gh[pousr]_|github_pat|xox|hf_|bearer|basic", re.I)


def redact_shapes(text: str) -> str:
    """`text` with every credential-shaped value (PEM block, JWT, `sk-...` key, AWS/Google/GitHub token, an
    `Authorization` value) replaced by `[REDACTED]`."""
    if not _SHAPE_HINT.search(text):
        return text
    return _SHAPES.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """`value` (a request body, its metadata) with credential-named fields at any depth and credential-shaped
    strings replaced by `[REDACTED]`; everything else as it was."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_credential_name(k) and v not in (None, "") else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_shapes(value)
    return value


# --- what the client sent as credentials --------------------------------------------------------------------------

MIN_SECRET_LENGTH = 8
"""Shorter values are not searched for in text: replacing every `abc` would garble it and protect nothing."""


def credential_values(value: str) -> list[str]:
    """The secret parts of a credential header's value: the whole value, the token after a scheme (`Bearer x`),
    and each cookie's value."""
    parts = [value.strip()]
    _, space, token = parts[0].partition(" ")
    if space:  # the value is stripped: a token follows its space
        parts.append(token.strip())
    if "=" in value:
        parts += [item.partition("=")[2].strip() for item in value.split(";")]
    return [p for p in parts if len(p) >= MIN_SECRET_LENGTH]


class Scrubber:
    """Replaces the credentials one call sent (the client's key, an Azure AD token, credential headers) wherever a
    text echoes them, and credential-shaped values (`redact_shapes`). Built only when text must be scrubbed."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        self._secrets = sorted(unique, key=len, reverse=True)  # a longer secret first: `Bearer k` before `k`

    @classmethod
    def of_call(cls, client: Any, headers: Mapping[str, Any] | None, body: Any = None) -> Scrubber:
        """The credentials of a call by `client` (an openai client) with the request's own `headers` and `body`
        (its credential-named fields, at any depth)."""
        found: list[str] = list(_credential_fields(body))
        for name in ("api_key", "_azure_ad_token"):
            value = getattr(client, name, None)
            if isinstance(value, str):
                found.append(value)
        for source in (getattr(client, "_custom_headers", None), headers):
            if isinstance(source, Mapping):
                for name, value in source.items():
                    if isinstance(name, str) and isinstance(value, str) and is_credential_name(name):
                        found += credential_values(value)
        return cls(found)

    def __call__(self, text: str) -> str:
        """`text` with every one of these credentials, and every credential-shaped value, replaced."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return redact_shapes(text)


def _credential_fields(value: Any, depth: int = 0) -> Iterable[str]:
    """The string values of credential-named fields in a request body, down to 32 levels (a cycle ends there)."""
    if depth > 32:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str) and isinstance(key, str) and is_credential_name(key):
                yield from credential_values(item)
                continue
            yield from _credential_fields(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _credential_fields(item, depth + 1)
