"""`gateway-otel demo`: see what the package records in one command, with no keys and no network.

It starts the gateway simulator on 127.0.0.1, sends an instrumented sample workload through the real `openai` client
(several models; sync, async and streamed calls; a tool call; one failing call), stores the telemetry in a local
SQLite file, and prints the per-model stats and the latest traces read back through the query API. With `--live`
and `OPENROUTER_API_KEY`, the same workload goes to OpenRouter's free models instead.

The demo writes its own file (`demo.db` next to the default store, emptied at each run) so that simulated calls
never mix with an application's real telemetry.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from ..store import demo_path, read_path
from ._render import command_name, table, utc

COMMANDS = ("demo",)

SIM_MODELS = ("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "deepseek/deepseek-r1")
LIVE_MODELS = ("openai/gpt-oss-20b:free", "meta-llama/llama-3.3-70b-instruct:free", "google/gemma-3-27b-it:free")
OPENROUTER_URL = "https://openrouter.ai/api/v1"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
APP_HEADERS = {"HTTP-Referer": "https://github.com/gateway-otel", "X-Title": "gateway-otel demo"}


@dataclass(frozen=True)
class Workload:
    """The models to call, and how to make the one failing call."""

    models: Sequence[str]
    failing_model: str
    failing_headers: dict[str, str]


def sim_workload() -> Workload:
    from ..simulator import SCENARIO_HEADER

    return Workload(SIM_MODELS, SIM_MODELS[0], {SCENARIO_HEADER: "error-429"})


def live_workload() -> Workload:
    return Workload(LIVE_MODELS, "gateway-otel/no-such-model", {})


def _line(out: TextIO, kind: str, model: str, outcome: str, started: float) -> None:
    print(f"  {kind:<8} {model:<30} {outcome:<34} {(time.perf_counter() - started) * 1000:6.0f} ms", file=out)


def run_workload(client: Any, aclient: Any, workload: Workload, out: TextIO) -> int:
    """The sample traffic: a sync chat per model, the same concurrently with the async client, a stream per model,
    a tool call and one failing call. Errors are expected for the failing call only (an HTTP error status); others
    are reported and the demo goes on. Returns how many calls did not go as planned."""
    import asyncio  # here: ~80 ms to import, and only the demo's calls need it

    import openai

    unplanned = 0

    prompt = [{"role": "user", "content": "In one sentence: why do LLM calls need tracing?"}]
    for model in workload.models:
        started = time.perf_counter()
        try:
            reply = client.chat.completions.create(model=model, messages=prompt, max_tokens=80)
            extra = (reply.choices[0].message.model_extra or {}) if reply.choices else {}
            thought = " with reasoning" if extra.get("reasoning") or extra.get("reasoning_content") else ""
            tokens = reply.usage.total_tokens if reply.usage else "?"
            _line(out, "sync", model, f"ok, {tokens} tokens{thought}", started)
        except openai.OpenAIError as error:
            unplanned += 1
            _line(out, "sync", model, f"failed: {type(error).__name__}", started)

    async def concurrent() -> int:
        async def one(model: str) -> int:
            started = time.perf_counter()
            try:
                await aclient.chat.completions.create(model=model, messages=prompt, max_tokens=80)
                _line(out, "async", model, "ok", started)
                return 0
            except openai.OpenAIError as error:
                _line(out, "async", model, f"failed: {type(error).__name__}", started)
                return 1

        failed = await asyncio.gather(*(one(m) for m in workload.models))
        await aclient.close()
        return sum(failed)

    unplanned += asyncio.run(concurrent())
    for model in workload.models:
        started = time.perf_counter()
        try:
            chunks = 0
            for _ in client.chat.completions.create(model=model, messages=prompt, max_tokens=80, stream=True):
                chunks += 1
            _line(out, "stream", model, f"ok, {chunks} chunks", started)
        except openai.OpenAIError as error:
            unplanned += 1
            _line(out, "stream", model, f"failed: {type(error).__name__}", started)
    model = workload.models[0]
    started = time.perf_counter()
    try:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL]
        )
        calls = reply.choices[0].message.tool_calls or []
        _line(out, "tool", model, f"ok, {calls[0].function.name}()" if calls else "ok, no tool call", started)
    except openai.OpenAIError as error:
        unplanned += 1
        _line(out, "tool", model, f"failed: {type(error).__name__}", started)
    started = time.perf_counter()
    try:
        client.chat.completions.create(
            model=workload.failing_model, messages=prompt, extra_headers=workload.failing_headers
        )
        unplanned += 1
        _line(out, "failing", workload.failing_model, "unexpectedly ok", started)
    except openai.APIStatusError as error:  # the gateway answered with an error status, as planned
        _line(out, "failing", workload.failing_model, f"failed as planned: {type(error).__name__}", started)
    except openai.OpenAIError as error:  # no answer at all (connection refused, timeout): not the planned failure
        unplanned += 1
        _line(out, "failing", workload.failing_model, f"failed: {type(error).__name__}", started)
    return unplanned


@contextlib.contextmanager
def _gateway(live: bool, api_key: str | None) -> Iterator[tuple[str, str, Workload]]:
    """(base URL, API key, workload): OpenRouter for `live`, else a simulator served on 127.0.0.1."""
    if live:
        yield OPENROUTER_URL, api_key or "", live_workload()
        return
    from ..simulator import serve

    with serve("127.0.0.1", 0) as running:
        yield running.url, "sk-or-demo-not-a-real-key", sim_workload()


def report(path: Path, out: TextIO, *, latest: int = 10) -> None:
    """The per-model stats table and the latest traces of the store at `path`, read through the query API."""
    from ..query import Telemetry
    from ..query._stats import STATS_HEADERS, model_stats, total_stats
    from ._query import read_traces
    from ._views import STATS_ALIGN, traces_table

    with Telemetry("local", path=path) as telemetry:
        spans = telemetry.traces.query(time_window="1h", detail=False, limit=None).spans
        traces, _ = read_traces(telemetry, "1h", latest)
        logs = telemetry.logs.query(severity="error", time_window="1h").records
    stats = model_stats(spans)
    print("\nPer model (last hour)", file=out)
    print(table([s.cells() for s in [*stats, total_stats(spans)]], STATS_HEADERS, align=STATS_ALIGN), file=out)
    print(f"\nLatest {len(traces)} traces (open one: gateway-otel trace ID)", file=out)
    print(traces_table(traces, today=datetime.now(timezone.utc).date()), file=out)
    if logs:
        print(f"\nError log records ({len(logs)})", file=out)
        for record in logs[:5]:
            print(f"  {utc(record.time, '%H:%M:%S')}  trace {record.trace_id}  {record.body}", file=out)


def failed_trace_id(path: Path) -> str | None:
    """The trace of the demo's failing call, to open first."""
    from ..query import Telemetry

    with Telemetry("local", path=path) as telemetry:
        failed = telemetry.traces.query(status="error", time_window="1h", detail=False, limit=1).spans
    return failed[0].trace_id if failed else None


def next_steps(target: Path, env: Mapping[str, str], failed_trace: str | None) -> str:
    """The commands to run next, ready to paste: plain when they will read this store anyway (the demo's stands in
    for the default store until an application stores there), else with `--path`."""
    command = command_name()
    reads_it = read_path(env)[0] == target
    path = "" if reads_it else f" --path {shlex.quote(str(target))}"
    lines = ["", "Next, explore the demo's calls" + (" (the query commands read its store until your app stores)"
                                                    if reads_it else "") + ":"]
    rows = [(f"{command} stats{path}", "per model: calls, errors, tokens, cost, latency")]
    rows.append((f"{command} traces{path}", "the latest traces"))
    if failed_trace:
        rows.append((f"{command} trace {failed_trace[:12]}{path}", "the failed call, as a tree"))
    rows.append((f"{command} metrics cost --by-model{path}", "a metric, per model"))
    rows.append((f"{command} report --html gateway-otel-report.html{path}", "an HTML page with charts"))
    width = max(len(c) for c, _ in rows)
    commented = width + max(len(why) for _, why in rows) <= 112  # the comments only where they fit a terminal
    lines += [f"  {c.ljust(width)}  # {why}" if commented else f"  {c}" for c, why in rows]
    python_path = "" if reads_it else f"path={str(target)!r}"
    lines.append(f"In Python: import gateway_otel; gateway_otel.Telemetry({python_path}).traces.query()")
    return "\n".join(lines)


def run_demo(
    *,
    path: Path | None = None,
    live: bool = False,
    environ: dict[str, str] | None = None,
    out: TextIO,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    """Run the workload into a fresh store at `path` (default `demo_path()`) and print the report; the exit code is
    1 when a call did not go as planned (e.g. no connection to the gateway), so a broken demo never looks fine."""
    import openai
    from opentelemetry.sdk.resources import Resource

    from .. import instrument, uninstrument
    from ..destinations import configure

    env = dict(os.environ if environ is None else environ)
    api_key = env.get("OPENROUTER_API_KEY", "").strip() or None
    if live and api_key is None:
        print(
            "gateway-otel demo: --live needs OPENROUTER_API_KEY (https://openrouter.ai/settings/keys)", file=sys.stderr
        )
        return 2
    target = Path(path).expanduser() if path is not None else demo_path(env)
    for suffix in ("", "-wal", "-shm"):  # a fresh file: the report shows this run only
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with _gateway(live, api_key) as (base_url, key, workload):
        where = (
            "OpenRouter (live, free models)" if live else f"the gateway simulator at {base_url} (no keys, no network)"
        )
        print(f"gateway-otel demo: sending a sample workload to {where}", file=out)
        if on_ready is not None:
            on_ready(base_url)
        providers = configure(
            "local",
            environ={"GATEWAY_OTEL_LOCAL_PATH": str(target)},
            set_global=False,
            resource=Resource.create({"service.name": "gateway-otel-demo"}),
        )
        instrument(
            tracer_provider=providers.tracer_provider,
            meter_provider=providers.meter_provider,
            logger_provider=providers.logger_provider,
        )
        try:
            options: dict[str, Any] = {"base_url": base_url, "api_key": key, "max_retries": 0, "timeout": 60}
            options["default_headers"] = APP_HEADERS
            client, aclient = openai.OpenAI(**options), openai.AsyncOpenAI(**options)
            unplanned = run_workload(client, aclient, workload, out)
            client.close()
        finally:
            uninstrument()
            providers.shutdown()
    print(f"\nStored in {target}", file=out)
    report(target, out)
    print(next_steps(target, env, failed_trace_id(target)), file=out)
    if unplanned:
        print(
            f"gateway-otel demo: {unplanned} of the workload's calls did not go as planned (see above); "
            "their telemetry is stored all the same",
            file=sys.stderr,
        )
        return 1
    return 0


def add_commands(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run a sample workload through the simulator (no keys, no network), store it locally, show the stats",
    )
    demo.add_argument("--live", action="store_true", help="send it to OpenRouter's free models (OPENROUTER_API_KEY)")
    demo.add_argument("--path", help=f"the SQLite file to store into, emptied first (default: {demo_path()})")


def run(args: Any) -> int:
    return run_demo(path=Path(args.path) if args.path else None, live=args.live, out=sys.stdout)
