"""A span's closing attributes: the SDK's `set_attributes`, or exactly its result written the short way.

`Span.set_attributes` checks every value again (its type, a sequence made a tuple, a string cut to the length
limit) and keys them in one at a time: ~0.4 µs per attribute warm, ~20 µs of a chat call's overhead in place
(measured: `bench/README.md`). This package's values are valid by construction (text made encodable, integers in
int64, lists of one scalar type), so on the SDK's own span, with no value-length limit and room for every
attribute, the same dictionary is written directly, under the span's locks. That it is the same is checked once
per process on a throwaway span of the installed SDK; any doubt — another span class, a length limit, a value of
another type, a span already ended — takes the SDK's way.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span

from .._internal import internal_error

_SCALARS = frozenset({str, bool, int, float})
_shortcut: tuple[type, type] | bool | None = False
"""(the SDK's span class, its attribute container class) once the shortcut was verified; None when it was not
(another SDK, or it differed); False before the check."""


def set_span_attributes(span: Span, attrs: dict[str, Any]) -> None:
    """`span.set_attributes(attrs)`, with the same outcome; `attrs` is this package's own dict (lists in it become
    tuples, as the SDK makes them)."""
    types = _shortcut if _shortcut is not False else _verify()
    if types is not None and type(span) is types[0] and _write_direct(span, attrs, types[1]):
        return
    span.set_attributes(attrs)


def _write_direct(span: Any, attrs: dict[str, Any], bounded_type: type) -> bool:
    """Write `attrs` as the SDK would and return True, or write nothing and return False."""
    bounded = span._attributes
    if type(bounded) is not bounded_type or bounded.max_value_len is not None or bounded._immutable:
        return False
    for key, value in attrs.items():
        if type(value) in _SCALARS and type(key) is str and key:
            continue
        if type(value) not in (list, tuple) or not value or type(key) is not str or not key:
            return False
        first = type(value[0])
        if first not in _SCALARS or any(type(item) is not first for item in value):
            return False
        attrs[key] = tuple(value)  # replacing a value while iterating is allowed: the keys do not change
    with span._lock:
        if span._end_time is not None:
            return False  # the SDK warns about a write to an ended span
        with bounded._lock:
            stored = bounded._dict
            if bounded.maxlen is not None and len(stored) + len(attrs) > bounded.maxlen:
                return False  # what the SDK would evict, and warn about, is left to it
            for key, value in attrs.items():
                if key in stored:  # a key set again moves to the end, as the SDK does it
                    del stored[key]
                stored[key] = value
    return True


def _verify() -> tuple[type, type] | None:
    """The shortcut gives exactly the SDK's attributes (values, their types, their order, nothing dropped) on a
    throwaway span of the installed SDK, or it is not used in this process."""
    global _shortcut
    _shortcut = None
    try:
        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanLimits, TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        # Nothing of the application's: no resource detection, no length limit from its environment, and none of the
        # SDK's own span metrics (the keyword is newer than some supported SDKs).
        options: dict[str, Any] = {
            "sampler": ALWAYS_ON,
            "resource": Resource.get_empty(),
            "span_limits": SpanLimits(
                max_span_attribute_length=SpanLimits.UNSET, max_attribute_length=SpanLimits.UNSET
            ),
            "shutdown_on_exit": False,
        }
        try:
            provider = TracerProvider(**options, meter_provider=NoOpMeterProvider())
        except TypeError:
            provider = TracerProvider(**options)
        tracer = provider.get_tracer(__name__)
        start = {"a": "first", "b": 1, "c": ["x"]}
        sample = {"d": "text", "e": 2, "f": 0.5, "g": True, "a": "again", "h": ["s", "t"], "i": (1, 2), "j": [False]}
        by_sdk, direct = tracer.start_span("check", attributes=start), tracer.start_span("check", attributes=start)
        by_sdk.set_attributes(dict(sample))
        if not _write_direct(direct, dict(sample), BoundedAttributes):  # another SDK's internals: AttributeError
            return None
        expected, got = by_sdk._attributes, direct._attributes  # type: ignore[attr-defined]
        same = [(k, v, type(v)) for k, v in expected.items()] == [(k, v, type(v)) for k, v in got.items()]
        if same and expected.dropped == got.dropped:
            _shortcut = (type(direct), BoundedAttributes)
        by_sdk.end()
        direct.end()
    except Exception:
        internal_error("span attribute check")
    return _shortcut if _shortcut else None
