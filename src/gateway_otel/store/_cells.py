"""The JSON cells of a store row (`attributes`, `events`, `resource`), compact, and back.

A chat span carries its content three times: `gen_ai.input.messages`/`gen_ai.output.messages` (+ tool definitions),
OpenInference's `input.value`/`output.value`, and the flattened `llm.input_messages.*`/`llm.output_messages.*`/
`llm.tools.*`. The cell keeps the GenAI copy and drops a derived group of keys only when rebuilding it from that copy,
with the very functions the instrumentation used (`instrumentation/_content.py`, `_attributes.py`), gives exactly
the same keys, values and order; it records the group's name, position and key count, and `attributes_of` puts it
back. The attributes left are written as a flat list, each known name as its number in `_names.NAMES` and a string
value already written as the number of the pair that has it.

A cell is one of:
- text, JSON: the attributes object (every row written before this format); an attributes list
  `[derived, name, value, name, value...]` where `derived` lists `[group, position, count]`, a name is a string or
  its number in `NAMES`, and a pair `-n-1, i` is name `NAMES[n]` with the value of pair `i`; an events list;
- a BLOB: one byte naming the codec (`DEFLATE`: raw deflate), then that JSON — cells of `DEFLATE_FROM` bytes or more,
  when that is shorter.
Events with none are the empty string. A span's resource (the same for every span of a process) is kept once in the
`resources` table; the row's cell holds `@<id>` (`RESOURCE_REF`).

The groups' rebuild functions and `NAMES` are part of the file format: `tests/test_store_cells.py` pins them on a
stored cell, so a change to the flattening that would rebuild old rows differently fails there (then give the new
rule a new group name and keep the old one).
"""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from ._names import NAMES

DEFLATE = 1
"""Codec byte: raw deflate (no zlib header or checksum), level 6."""
DEFLATE_FROM = 1024
"""Cells of this many bytes or more are deflated, when that is shorter. zlib lets go of the GIL around each call, so
only where it saves most: content of a few KB deflates 2-4×; an ordinary chat span's cell (~0.7 KB) stays text."""
RESOURCE_REF = "@"
"""A resource cell `@7` names row 7 of the `resources` table."""
_SAME_FROM = 8
"""A string value this long or longer, repeated in a span (the model under three names), is written once."""

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_NUMBER = {name: number for number, name in enumerate(NAMES)}
_UNREBUILDABLE = (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError)
"""What a rebuild raises on content another instrumentation shaped differently: that group is kept as it is."""


class _Sources:
    """The canonical attributes a rebuild reads, each JSON value parsed once per span."""

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        self.attrs = attrs
        self._parsed: dict[str, Any] = {}

    def parsed(self, key: str) -> Any:
        if key not in self._parsed:
            value = self.attrs.get(key)
            self._parsed[key] = json.loads(value) if isinstance(value, str) else None
        return self._parsed[key]


Rebuild = Callable[[_Sources, int], dict[str, Any]]


def _alias(source: str, key: str) -> Rebuild:
    def rebuild(sources: _Sources, count: int) -> dict[str, Any]:
        value = sources.attrs.get(source)
        return {key: value} if isinstance(value, str) else {}

    return rebuild


def _answer(sources: _Sources, count: int) -> dict[str, Any]:
    """`output.value` as `output_content_attributes` writes it from the output messages."""
    output = sources.parsed("gen_ai.output.messages")
    if not isinstance(output, list) or not output:
        return {}
    # Imported here: a query that reads no attributes (stats, metrics) does not import the instrumentation.
    from ..instrumentation._attributes import output_answer, output_content_attributes
    from ..instrumentation._response import ResponseRecord

    answer = output_answer(output)
    if answer is not None:  # the common case: no JSON encoded again just to be dropped
        return {"output.value": answer}

    return {"output.value": output_content_attributes(ResponseRecord(output=output), sys.maxsize)["output.value"]}


def _flattened(prefix: str, source: str) -> Rebuild:
    """`llm.input_messages.*` / `llm.output_messages.*` within `count` keys, as the instrumentation's budget left
    them: with exactly the number of keys kept, the same latest messages fit and the same earlier ones do not."""

    def rebuild(sources: _Sources, count: int) -> dict[str, Any]:
        from ..instrumentation._content import openinference_messages

        messages = sources.parsed(source)
        return openinference_messages(prefix, messages, count)[0] if isinstance(messages, list) else {}

    return rebuild


def _tools(sources: _Sources, count: int) -> dict[str, Any]:
    from ..instrumentation._attributes import tool_schema_attributes

    tools = sources.parsed("gen_ai.tool.definitions")
    return tool_schema_attributes({"tools": tools}, sys.maxsize, count) if isinstance(tools, list) else {}


_GROUPS: dict[str, tuple[str, Rebuild]] = {
    "in": ("input.value", _alias("gen_ai.input.messages", "input.value")),
    "out=": ("output.value", _alias("gen_ai.output.messages", "output.value")),
    "out": ("output.value", _answer),
    "llm.out": ("llm.output_messages.", _flattened("llm.output_messages", "gen_ai.output.messages")),
    "llm.in": ("llm.input_messages.", _flattened("llm.input_messages", "gen_ai.input.messages")),
    "llm.tools": ("llm.tools.", _tools),
}
"""Derived groups, by the name a cell records: the key (or key prefix) of their keys, and how to rebuild them. Keys
that several rules may rebuild (`output.value`: the messages' JSON, or the answer alone) list the cheaper first."""
_FAMILIES = tuple(dict.fromkeys(family for family, _ in _GROUPS.values()))
_EXACT = frozenset(f for f in _FAMILIES if not f.endswith("."))
_PREFIXES = tuple(f for f in _FAMILIES if f.endswith("."))
_RULES = {family: [(name, rebuild) for name, (f, rebuild) in _GROUPS.items() if f == family] for family in _FAMILIES}


def _families(keys: list[str]) -> dict[str, list[int]]:
    """The positions of the keys of each derived family present (one C-level test per key, most fail it)."""
    found: dict[str, list[int]] = {}
    for position in [i for i, key in enumerate(keys) if key.startswith(_FAMILIES)]:
        key = keys[position]
        family = key if key in _EXACT else next((f for f in _PREFIXES if key.startswith(f)), None)
        if family is not None:  # not `input.values`
            found.setdefault(family, []).append(position)
    return found


def derive(attrs: Mapping[str, Any], keys: list[str]) -> tuple[list[list[Any]], set[str]]:
    """(`[group, position, count]` of each group that rebuilds exactly, the keys of those groups)."""
    derived: list[list[Any]] = []
    dropped: set[str] = set()
    families = _families(keys)
    if not families:
        return derived, dropped
    sources = _Sources(attrs)
    for family, positions in families.items():
        first, count = positions[0], len(positions)
        if positions[-1] - first != count - 1:
            continue  # not one run of keys: its place could not be told in one number
        present = [(k, attrs[k]) for k in keys[first : first + count]]
        for name, rebuild in _RULES[family]:
            try:
                rebuilt = rebuild(sources, count)
            except _UNREBUILDABLE:
                continue
            if list(rebuilt.items()) == present:
                dropped.update(keys[first : first + count])
                derived.append([name, first, count])
                break
    return derived, dropped


def expand(kept: Mapping[str, Any], derived: list[Any]) -> dict[str, Any]:
    """The attributes before `derive` dropped groups: each rebuilt and put back at its place."""
    items = list(kept.items())
    sources = _Sources(kept)
    for name, position, count in sorted(derived, key=lambda d: d[1]):
        group = _GROUPS.get(name)
        if group is None:
            continue  # a group a newer release wrote: its keys are missing, the rest is read
        try:
            items[position:position] = group[1](sources, count).items()
        except _UNREBUILDABLE:
            continue
    return dict(items)


def encode(value: Any) -> str | bytes:
    """JSON; deflated when it is `DEFLATE_FROM` bytes or more and that is shorter."""
    text = _JSON.encode(value)
    if len(text) < DEFLATE_FROM:  # characters: at most as many as its bytes
        return text
    raw = text.encode("utf-8")
    packed = zlib.compress(raw, 6, -15)
    return bytes((DEFLATE,)) + packed if len(packed) + 1 < len(raw) else text


def decode(cell: Any) -> Any:
    """The JSON value of a cell, text or BLOB; raises ValueError for one that is neither (a damaged file)."""
    if isinstance(cell, bytes):
        if not cell or cell[0] != DEFLATE:
            raise ValueError("unknown cell codec")
        try:
            return json.loads(zlib.decompress(cell[1:], -15).decode("utf-8"))
        except zlib.error as error:
            raise ValueError(str(error)) from None
    return json.loads(cell)


def _flat(attrs: Mapping[str, Any], derived: list[list[Any]], dropped: set[str]) -> list[Any]:
    """`[derived, name, value...]` without the dropped keys: known names as numbers, a repeated long string as the
    number of its first pair, sequences as lists."""
    out: list[Any] = [derived]
    first: dict[str, int] = {}
    pair = 0
    for key, value in attrs.items():
        if key in dropped:
            continue
        number = _NUMBER.get(key)
        if type(value) is str:
            if len(value) >= _SAME_FROM:
                earlier = first.get(value)
                if earlier is not None and number is not None:
                    out += (-number - 1, earlier)
                    pair += 1
                    continue
                first.setdefault(value, pair)
        elif type(value) is tuple:
            value = list(value)
        out += (key if number is None else number, value)
        pair += 1
    return out


def _unflat(flat: list[Any]) -> dict[str, Any]:
    names, values = flat[1::2], flat[2::2]
    attrs: dict[str, Any] = {}
    for pair, name in enumerate(names):
        if type(name) is str:
            attrs[name] = values[pair]
        elif name >= 0:
            attrs[NAMES[name]] = values[pair]
        else:
            attrs[NAMES[-name - 1]] = values[values[pair]]
            values[pair] = values[values[pair]]
    return attrs


def attributes_cell(attrs: Mapping[str, Any]) -> str | bytes:
    """The `attributes` cell of a span's (or log record's) attributes, as the SDK gives them."""
    keys = list(attrs)
    derived, dropped = derive(attrs, keys)
    return encode(_flat(attrs, derived, dropped))


def attributes_of(cell: Any) -> dict[str, Any]:
    """The attributes of an `attributes` cell, in either format; ValueError for a damaged one."""
    value = decode(cell) if cell else {}
    if isinstance(value, dict):
        return value
    if not isinstance(value, list) or not value or not isinstance(value[0], list) or len(value) % 2 != 1:
        raise ValueError("not an attributes cell")
    try:
        kept = _unflat(value)
    except (IndexError, TypeError) as error:
        raise ValueError(f"not an attributes cell: {error}") from None
    return expand(kept, value[0]) if value[0] else kept


def events_cell(events: list[dict[str, Any]]) -> str | bytes:
    return encode(events) if events else ""


def events_of(cell: Any) -> list[Any]:
    value = decode(cell) if cell else []
    if not isinstance(value, list):
        raise ValueError("not an events cell")
    return value
