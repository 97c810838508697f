"""The hot path's shortcuts give exactly the answers of the slower code they replaced."""

from __future__ import annotations

import re

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
