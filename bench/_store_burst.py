"""The burst app of `bench/store.py`: chat calls as fast as the client goes, through the real path.

`python bench/_store_burst.py CALLS START_AT`: `gateway_otel.instrument()` with no destination configured (the
parent points `GATEWAY_OTEL_LOCAL_PATH` at a temporary file and removes every other destination variable), the real
`openai` client over the in-process gateway simulator, the demo's chat call `CALLS` times, starting at the wall-clock
time `START_AT` (so several processes start together). It prints `{"calls": ..., "seconds": ...}` and exits normally,
so the package's exit handler flushes what it holds.
"""

from __future__ import annotations

import json
import sys
import time

import openai

import gateway_otel
from gateway_otel.simulator import GatewaySimulator, http_client


def main(calls: int, start_at: float) -> None:
    gateway_otel.instrument()
    client = openai.OpenAI(
        base_url="https://openrouter.ai/api/v1",
        api_key="sk-or-bench-not-a-key",
        http_client=http_client(GatewaySimulator()),
        max_retries=0,
    )
    messages = [{"role": "user", "content": "In one sentence: why do LLM calls need tracing?"}]
    time.sleep(max(0.0, start_at - time.time()))
    started = time.perf_counter()
    for _ in range(calls):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages, max_tokens=80)
    print(json.dumps({"calls": calls, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
