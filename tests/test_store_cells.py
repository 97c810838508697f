"""The store's compact cells (`store/_cells.py`): what a span's attributes were is what the query API returns — keys,
values and order — for every kind of call, in privacy mode, with huge or odd content; the content is stored once;
rows in the format before (plain JSON text) still read; the rebuild rules are pinned on a stored cell."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

import gateway_otel
from conftest import make_client, run
from gateway_otel import Telemetry
from gateway_otel._semconv import without_content
from gateway_otel.cli._demo import WEATHER_TOOL
from gateway_otel.simulator import GatewaySimulator
from gateway_otel.store import SPAN_COLUMNS, StoreConfig, StoreWriter, attributes_of, connect, events_of
from gateway_otel.store._cells import DEFLATE, attributes_cell, decode, encode, events_cell

ODD = 'e\u0301 \U0001f600 \u05e9\u05dc\u05d5\u05dd \u2028 \x00 tab\t "quoted" \\ \uffff'


def workload(sim: GatewaySimulator) -> None:
    """One call of each shape the instrumentation writes content for."""
    client = make_client(sim)
    prompt = [{"role": "user", "content": "In one sentence: why do LLM calls need tracing?"}]
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=prompt, max_tokens=80)
    for _ in client.chat.completions.create(model="anthropic/claude-3.5-sonnet", messages=prompt, stream=True):
        pass
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    reply = client.chat.completions.create(model="openai/gpt-4o-mini", messages=asked, tools=[WEATHER_TOOL])
    call = reply.choices[0].message.tool_calls[0]
    client.chat.completions.create(
        model="openai/gpt-4o-mini",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "system", "content": "Be brief.", "name": "policy"},
            *asked,
            reply.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18 C, clear"},
        ],
    )
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="sim/error-429", messages=prompt)
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "y" * 100_000}])
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": ODD}])
    parts = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400}},
    ]
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": parts}])
    many = [{"role": "user" if i % 2 else "assistant", "content": f"turn {i}"} for i in range(150)]
    client.chat.completions.create(model="openai/gpt-4o-mini", messages=many)
    client.embeddings.create(model="openai/text-embedding-3-small", input=["one", "two"])
    client.responses.create(model="openai/gpt-4o-mini", input="Say hi", instructions="Be brief.")
    run(make_client(sim, asynchronous=True).chat.completions.create(model="openai/gpt-oss-20b:free", messages=prompt))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("privacy", [False, True])
def test_the_query_api_returns_exactly_the_attributes_each_span_had(
    tmp_path: Path, sim: GatewaySimulator, privacy: bool
) -> None:
    path = tmp_path / "t.db"
    env = {"GATEWAY_OTEL_LOCAL_PATH": str(path), "GATEWAY_OTEL_LOCAL_PRIVACY_MODE": str(privacy).lower()}
    providers = gateway_otel.configure(
        "local", environ=env, set_global=False, resource=Resource.create({"service.name": "cells"})
    )
    memory = InMemorySpanExporter()
    providers.tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
    try:
        workload(sim)
    finally:
        gateway_otel.uninstrument()
        providers.shutdown()
    made = {format(s.context.span_id, "016x"): s for s in memory.get_finished_spans()}
    with Telemetry("local", path=path) as telemetry:
        read = telemetry.traces.query(detail=True, limit=100).spans
    assert sorted(r.span_id for r in read) == sorted(made)
    for row in read:
        span = made[row.span_id]
        attributes = without_content(span.attributes or {}) if privacy else dict(span.attributes or {})
        assert list(row.attributes.items()) == [(k, _plain(v)) for k, v in attributes.items()], span.name
        assert [(e["name"], e["time_ns"]) for e in row.events] == [(e.name, e.timestamp) for e in span.events]
        assert [e["attributes"] for e in row.events] == [
            {k: _plain(v) for k, v in (e.attributes or {}).items()} for e in span.events
        ]
    if not privacy:  # the content is stored once: no flattened copy, no `input.value`, in a chat span's cell
        conn = sqlite3.connect(path)
        rows = conn.execute("SELECT span_id, attributes FROM spans WHERE name = 'chat openai/gpt-4o-mini'").fetchall()
        conn.close()
        dropped = {span_id: {group for group, *_ in decode(c)[0]} for span_id, c in rows}
        assert [d >= {"in", "llm.in"} for d in dropped.values()].count(False) == 1  # the 100,000 "y": cut, not JSON
        # a text answer's `output.value` is rebuilt from the output messages, not stored again
        answered = {i for i in dropped if (made[i].attributes or {}).get("output.mime_type") == "text/plain"}
        assert answered and {i for i, d in dropped.items() if "out" in d} == answered


def test_a_derived_group_kept_when_its_rebuild_would_differ() -> None:
    """`input.value` edited after the fact (not what the messages rebuild to) is kept as it is."""
    messages = '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]'
    attrs = {"gen_ai.input.messages": messages, "input.value": "else", "llm.input_messages.0.message.role": "x"}
    assert attributes_of(attributes_cell(attrs)) == attrs
    assert decode(attributes_cell(attrs)) == [[], 29, messages, 30, "else", 80, "x"]  # nothing derived


INPUT = '[{"role":"system","parts":[{"type":"text","content":"Be brief."}],"name":"policy"},{"role":"user","parts":[{"type":"text","content":"hi"}]}]'  # noqa: E501
OUTPUT = '[{"role":"assistant","parts":[{"type":"tool_call","id":"c1","name":"f","arguments":"{}"}],"finish_reason":"tool_calls"}]'  # noqa: E501
TOOLS = '[{"type":"function","function":{"name":"f"}}]'
PINNED_CELL = (
    '[[["in",5,1],["out=",9,1],["llm.out",11,4],["llm.in",15,2],["llm.tools",18,1]],0,"chat",2,"openai/gpt-4o-mini",'
    + f'-8,1,-14,1,29,{json.dumps(INPUT)},31,"application/json",36,{json.dumps(TOOLS)},32,{json.dumps(OUTPUT)},'
    + '-35,5,78,1,"my.own","openai/gpt-4o-mini"]'
)


def test_the_rebuild_rules_and_names_are_pinned_on_a_stored_cell() -> None:
    """Part of the file format: if the flattening or the names' numbers change, rows already stored must still read
    as they were written — give a new rule a new group name, append a new name to `NAMES`."""
    assert list(attributes_of(PINNED_CELL).items()) == [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", "openai/gpt-4o-mini"),
        ("llm.model_name", "openai/gpt-4o-mini"),
        ("gen_ai.response.model", "openai/gpt-4o-mini"),
        ("gen_ai.input.messages", INPUT),
        ("input.value", INPUT),
        ("input.mime_type", "application/json"),
        ("gen_ai.tool.definitions", TOOLS),
        ("gen_ai.output.messages", OUTPUT),
        ("output.value", OUTPUT),
        ("output.mime_type", "application/json"),
        ("llm.output_messages.0.message.role", "assistant"),
        ("llm.output_messages.0.message.tool_calls.0.tool_call.id", "c1"),
        ("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "f"),
        ("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", "{}"),
        ("llm.input_messages.1.message.role", "user"),
        ("llm.input_messages.1.message.content", "hi"),
        ("gateway.input_messages.omitted", 1),
        ("llm.tools.0.tool.json_schema", '{"type":"function","function":{"name":"f"}}'),
        ("my.own", "openai/gpt-4o-mini"),
    ]
    assert decode(attributes_cell(attributes_of(PINNED_CELL))) == json.loads(PINNED_CELL)  # and written so today


def test_rows_in_the_format_before_still_read_and_a_damaged_cell_reads_as_empty(
    tmp_path: Path, sim: GatewaySimulator
) -> None:
    """A store written by the release before (attributes, events, resource as JSON text in every row)."""
    path = tmp_path / "t.db"
    providers = gateway_otel.configure("local", environ={"GATEWAY_OTEL_LOCAL_PATH": str(path)}, set_global=False)
    gateway_otel.instrument(tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider)
    try:
        make_client(sim).chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
    finally:
        gateway_otel.uninstrument()
        providers.shutdown()
    conn = sqlite3.connect(path)
    (cell,) = conn.execute("SELECT attributes FROM spans").fetchone()
    new = attributes_of(cell)
    old_events = '[{"name":"gateway.first_chunk","time_ns":5,"attributes":{}}]'
    conn.execute("UPDATE spans SET attributes = ?, events = ?, resource = '{}'", (json.dumps(new), old_events))
    conn.commit()
    with Telemetry("local", path=path) as telemetry:
        [row] = telemetry.traces.query(detail=True).spans
    assert list(row.attributes.items()) == list(new.items())
    assert row.events == ({"name": "gateway.first_chunk", "time_ns": 5, "attributes": {}},)
    conn.execute("UPDATE spans SET attributes = ?, events = ?", (bytes((DEFLATE,)) + b"junk", b"\x09odd"))
    conn.commit()
    conn.close()
    with Telemetry("local", path=path) as telemetry:
        [row] = telemetry.traces.query(detail=True).spans
    assert (row.attributes, row.events, row.model) == ({}, (), "m")


def test_cells_are_text_unless_large_and_deflated_when_that_is_shorter() -> None:
    assert encode({}) == "{}" and events_cell([]) == "" and events_of("") == []
    small = {f"my.key{i}": "value" for i in range(40)}
    assert encode(small) == json.dumps(small, separators=(",", ":"))  # 760 bytes: text
    large = {f"my.key{i}": "value" for i in range(60)}
    cell = encode(large)
    assert isinstance(cell, bytes) and cell[0] == DEFLATE and len(cell) < len(json.dumps(large)) / 3
    assert attributes_of(cell) == large
    noise = "".join(chr(0x4E00 + (i * 7919) % 20_000) for i in range(400))  # 1,200 bytes deflate cannot shorten
    assert encode([noise]) == json.dumps([noise], ensure_ascii=False)


def test_a_store_from_before_the_resources_table_gets_it_when_a_writer_opens_it(tmp_path: Path) -> None:
    """A store of the release before (no `resources` table, rows with their resource as JSON): written to again,
    its old rows keep their cells and the new ones refer to the table."""
    path = tmp_path / "t.db"
    conn = connect(path)
    conn.execute("DROP TABLE resources")
    conn.close()
    conn = sqlite3.connect(path)
    assert [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE name = 'resources'")] == []
    columns = ", ".join(SPAN_COLUMNS[:24])  # the columns of that release
    old = ("1" * 32, "1" * 16, None, "old", "client", 1, 2, 0.0, "ok") + (None,) * 12 + ("{}", "[]", '{"a":1}')
    conn.execute(f"INSERT INTO spans ({columns}) VALUES ({', '.join('?' * len(old))})", old)
    conn.commit()
    writer = StoreWriter(StoreConfig(path, None, None))
    writer.write_spans([_span()])
    writer.close()
    cells = conn.execute("SELECT name, resource FROM spans ORDER BY start_ns").fetchall()
    resources = conn.execute("SELECT id, resource FROM resources").fetchall()
    conn.close()
    assert cells == [("old", '{"a":1}'), ("chat m", "@1")]
    assert resources == [(1, '{"service.name":"before"}')]


def _span() -> ReadableSpan:
    return ReadableSpan(
        name="chat m",
        context=SpanContext(2, 2, False, TraceFlags(1)),
        kind=SpanKind.CLIENT,
        attributes={"gen_ai.operation.name": "chat"},
        start_time=10,
        end_time=20,
        resource=Resource({"service.name": "before"}),
    )
