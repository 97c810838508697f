"""`bench/store.py` end to end on a 1,000-span store (a few seconds): the table has its rows and its figures add up.

The bench measures whatever the package writes and answers, so this checks what it reports against what it wrote:
every span counted, the 4-process writes all arrived, each query ran, the bursts stored what they made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_small_run_reports_every_row(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_OTEL_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    argv = [
        sys.executable,
        str(ROOT / "bench" / "store.py"),
        "--sizes",
        "1000",
        "--repeat",
        "0",
        "--burst",
        "8",
        "--write-spans",
        "400",
        "--reference-spans",
        "300",
        "--queries",
        "stats --window,API traces",
        "--stores",
        str(tmp_path / "stores"),
        "--results",
        str(tmp_path / "results"),
    ]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]

    report = json.loads((tmp_path / "results" / "store.json").read_text())
    (size,) = report["sizes"]
    assert size["size_on_disk"]["rows"] == 1000
    assert 800 <= size["rows_24h"] <= 1000  # 90% of the spans were placed in the last 24 hours
    assert size["size_on_disk"]["bytes_per_span"] == size["size_on_disk"]["file_bytes"] / 1000
    assert [(w["expected"], w["stored"]) for w in size["writes"].values()] == [(400, 400), (400, 400)]
    assert sorted(size["queries"]) == ["API traces.query(limit=100)", "stats --window 24h"]
    assert [q["error"] for q in size["queries"].values()] == [None, None]
    assert report["reference"]["rows"] == 300
    assert [(b["processes"], b["calls"], b["stored"]) for b in report["bursts"]] == [(1, 8, 8), (4, 16, 16)]

    table = (tmp_path / "results" / "store.md").read_text()
    assert table.strip() == done.stdout.strip()
    for row in (
        "| `stats --window 24h` |",
        "| `API traces.query(limit=100)` |",
        "| **bytes per span** |",
        "| rows in the store (in the last 24 h when queried) | 1,000 (",
        "| 1 app | 8 | 8 (100%) |",
        "| 4 apps at once, 4 each | 16 | 16 (100%) |",
    ):
        assert row in table, row
