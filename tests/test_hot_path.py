"""The hot path's shortcuts give exactly the answers of the slower code they replaced."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway_otel.instrumentation import _attributes as A

_REFERENCE = re.compile(A._CREDENTIAL_HINTS, re.IGNORECASE)
_HINTS = ["key", "SECRET", "Pass", "pwd", "CREDENTIAL", "auth", "token_", "TOKENS", "tokenS", "Bearer", "sk-", "AKIA"]


_ASCII = st.text(st.characters(max_codepoint=127), max_size=12)


@given(st.lists(st.one_of(_ASCII, st.sampled_from(_HINTS)), max_size=8).map("".join))
def test_the_credential_search_answers_as_the_case_insensitive_one(text: str) -> None:
    assert text.isascii()  # the lowered search's case; other text takes the case-insensitive search itself
    assert A.may_hold_credential(text) is (_REFERENCE.search(text) is not None)


def test_the_credential_search_on_the_cases_that_matter() -> None:
    assert not A.may_hold_credential('{"max_tokens":512,"temperature":0.3,"top_p":0.9,"stream":false}')
    assert A.may_hold_credential('{"API_KEY":"x"}')
    assert A.may_hold_credential('{"x":"Bearer abc"}')
    assert not A.may_hold_credential('{"TOKENS":1}')  # `token[^s]`, case-insensitively
    assert A.may_hold_credential('{"TOKEN":1}')
    assert A.may_hold_credential('{"\u017fecret":1}')  # non-ASCII: Unicode case folding, as before (ſ is an s)


# --- a span's closing attributes, written the short way (`_span_attributes`) -------------------------------------

_KEYS = st.sampled_from(["gen_ai.usage.input_tokens", "a", "b", "llm.model_name", "", "c.d"])
_SCALAR = st.one_of(st.text(max_size=6), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.booleans())
_VALUE = st.one_of(
    _SCALAR,
    st.lists(st.text(max_size=4), max_size=3),
    st.lists(st.integers(0, 9), max_size=3).map(tuple),
    st.lists(st.one_of(st.text(max_size=2), st.integers(0, 9)), max_size=3),  # mixed: the SDK's way
    st.none(),
    st.binary(max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=2), st.integers(0, 9), max_size=2),
)


def _sdk_span(start: dict[str, Any], max_attributes: int | None, max_length: int | None) -> Any:
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider

    limits = SpanLimits(max_span_attributes=max_attributes, max_span_attribute_length=max_length)
    provider = TracerProvider(span_limits=limits, shutdown_on_exit=False)
    return provider.get_tracer("test").start_span("call", attributes=start)


def _written(span: Any) -> tuple[list[tuple[str, Any, type]], int]:
    stored = span._attributes
    return [(key, value, type(value)) for key, value in stored.items()], stored.dropped


@given(
    st.dictionaries(_KEYS, _SCALAR, max_size=3),
    st.dictionaries(_KEYS, _VALUE, max_size=6),
    st.sampled_from([None, 128, 4, 2]),
    st.sampled_from([None, 3]),
)
def test_closing_attributes_are_written_exactly_as_the_sdk_writes_them(
    start: dict[str, Any], attrs: dict[str, Any], max_attributes: int | None, max_length: int | None
) -> None:
    from gateway_otel.instrumentation._span_attributes import set_span_attributes

    by_sdk, short = _sdk_span(start, max_attributes, max_length), _sdk_span(start, max_attributes, max_length)
    by_sdk.set_attributes(dict(attrs))
    set_span_attributes(short, dict(attrs))
    assert _written(short) == _written(by_sdk)


def test_the_short_way_is_taken_where_it_gives_the_sdk_result_and_only_there() -> None:
    from gateway_otel.instrumentation import _span_attributes as S

    calls: list[dict[str, Any]] = []

    class Recording:  # another span class: the SDK's way, always
        def set_attributes(self, attrs: dict[str, Any]) -> None:
            calls.append(attrs)

    S.set_span_attributes(Recording(), {"a": 1})  # type: ignore[arg-type]
    assert calls == [{"a": 1}]
    assert S._shortcut not in (None, False)  # verified against the installed SDK
    span = _sdk_span({"a": "x"}, None, None)
    assert S._write_direct(span, {"b": ["s"], "a": "y"}, S._shortcut[1])  # type: ignore[index]
    assert list(span.attributes.items()) == [("b", ("s",)), ("a", "y")]  # lists made tuples, a key set again moves
    assert not S._write_direct(_sdk_span({}, None, 3), {"b": "long text"}, S._shortcut[1])  # type: ignore[index]
    assert not S._write_direct(_sdk_span({"a": 1}, 2, None), {"b": 1, "c": 2}, S._shortcut[1])  # type: ignore[index]
    assert not S._write_direct(span, {"c": None}, S._shortcut[1])  # type: ignore[index]
    assert not S._write_direct(span, {"c": []}, S._shortcut[1])  # type: ignore[index]
    span.end()
    assert not S._write_direct(span, {"c": 1}, S._shortcut[1])  # type: ignore[index]
    assert "c" not in span.attributes


def test_a_shortcut_that_differs_from_the_sdk_is_not_used(monkeypatch: Any) -> None:
    from gateway_otel.instrumentation import _span_attributes as S

    def wrong(span: Any, attrs: dict[str, Any], bounded_type: type) -> bool:
        span._attributes._dict.update({key: str(value) for key, value in attrs.items()})
        return True

    monkeypatch.setattr(S, "_shortcut", False)
    monkeypatch.setattr(S, "_write_direct", wrong)
    span = _sdk_span({}, None, None)
    S.set_span_attributes(span, {"n": 1})
    assert S._shortcut is None
    assert span.attributes["n"] == 1  # the SDK's own write


def test_the_check_of_the_shortcut_takes_nothing_from_the_application(monkeypatch: Any) -> None:
    """No resource detection (it may call a cloud's metadata service), no length limit from the environment."""
    from opentelemetry.sdk.resources import Resource

    from gateway_otel.instrumentation import _span_attributes as S

    def detect(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the check ran the resource detectors")

    monkeypatch.setattr(Resource, "create", detect)
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10")
    monkeypatch.setattr(S, "_shortcut", False)
    assert S._verify() is not None
