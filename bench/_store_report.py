"""The Markdown of `bench/store.py`: one table of queries by store size, one of writes and size, one of bursts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

START = "<!-- store-bench:start -->"
END = "<!-- store-bench:end -->"


def _count(n: float) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000:.0f}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000:.0f}k"
    return f"{n:,.0f}"


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def _kb(n: float | None) -> str:
    return "—" if n is None else f"{n / 1024:,.2f} KB"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def query_table(sizes: list[dict[str, Any]]) -> list[str]:
    names = [_count(s["size"]) for s in sizes]
    head = ["query"] + [f"{n}: {what}" for n in names for what in ("best", "first", "peak RSS")]
    lines = [_row(head), _row(["---"] * len(head))]
    labels = list(dict.fromkeys(label for s in sizes for label in s["queries"]))
    for label in labels:
        cells = [f"`{label}`"]
        for s in sizes:
            q = s["queries"].get(label)
            if q is None:
                cells += ["", "", ""]
            elif q["error"]:
                cells += [f"FAILED: {q['error']}", "", ""]
            else:
                best = _s(q["best_s"]) + ("" if q["runs"] > 1 else " (1 run)")
                cells += [best, _s(q["first_s"]), f"{q['rss_mb']:,.0f} MB"]
        lines.append(_row(cells))
    return lines


def _parts(size: dict[str, Any]) -> str:
    parts = size["size_on_disk"]["parts_per_span"]
    return " · ".join(f"{name} {bytes_:,.0f}" for name, bytes_ in parts.items()) or "(no dbstat in this SQLite)"


def _columns(on_disk: dict[str, Any], top: int = 4) -> str:
    return " · ".join(f"{c} {b:,.0f}" for c, b in list(on_disk["column_bytes"].items())[:top])


def _writes(w: dict[str, Any]) -> str:
    lost = "" if w["stored"] == w["expected"] else f", **{w['expected'] - w['stored']:,} lost**"
    return f"{w['per_s']:,.0f} spans/s ({w['stored']:,} of {w['expected']:,} rows{lost})"


def _build(size: dict[str, Any]) -> str:
    b = size["build"]
    overall = f"{b['per_s']:,.0f} ({b['processes']}); " if "per_s" in b else "(1); "
    reused = f" (built {b['age_h']:.1f} h before)" if b["reused"] else ""
    return f"{overall}{b['clone_per_s']:,.0f} / {b['write_per_s']:,.0f}{reused}"


def size_table(sizes: list[dict[str, Any]]) -> list[str]:
    head = [""] + [_count(s["size"]) + " spans" for s in sizes]
    rows: list[tuple[str, Any]] = [
        (
            "rows in the store (in the last 24 h when queried)",
            lambda s: f"{s['size_on_disk']['rows']:,} ({s['rows_24h']:,})",
        ),
        (
            "building it: spans/s overall (processes); per process, cloning / `write_spans`",
            _build,
        ),
        (
            "`write_spans`, 1 process, into a new file",
            lambda s: f"{_count(s['writes']['1']['expected'])}: {_writes(s['writes']['1'])}",
        ),
        (
            "`write_spans`, 4 processes at once, into one new file",
            lambda s: f"4 × {_count(s['writes']['4']['expected'] // 4)}: {_writes(s['writes']['4'])}",
        ),
        ("file size (after a WAL checkpoint)", lambda s: f"{s['size_on_disk']['file_bytes'] / 1e6:,.1f} MB"),
        ("**bytes per span**", lambda s: f"**{_kb(s['size_on_disk']['bytes_per_span'])}**"),
        ("per table and index (bytes per span, `dbstat`)", _parts),
        ("largest columns (average bytes, first 2,000 rows)", lambda s: _columns(s["size_on_disk"])),
    ]
    lines = [_row(head), _row(["---"] * len(head))]
    for label, cell in rows:
        lines.append(_row([label] + [cell(s) for s in sizes]))
    return lines


def burst_table(bursts: list[dict[str, Any]]) -> list[str]:
    lines = [
        _row(
            [
                "burst (no destination configured: the default store)",
                "calls",
                "spans stored",
                "calls/s per app",
                "until the last exited",
            ]
        ),
        _row(["---"] * 5),
    ]
    for b in bursts:
        share = b["stored"] / b["calls"] if b["calls"] else 0
        stored = f"{b['stored']:,} ({share:.0%})" if b["stored"] == b["calls"] else f"**{b['stored']:,}** ({share:.0%})"
        who = (
            "1 app" if b["processes"] == 1 else f"{b['processes']} apps at once, {b['calls'] // b['processes']:,} each"
        )
        lines.append(
            _row(
                [
                    who,
                    f"{b['calls']:,}",
                    stored,
                    ", ".join(f"{r:,}" for r in b["calls_per_s"]),
                    _s(b["seconds_to_exit"]),
                ]
            )
        )
    return lines


def render(report: dict[str, Any]) -> str:
    m, p = report["machine"], report["package"]
    commit = (p["commit"][:7] or "no git") + (f" + uncommitted changes ({p['dirty']})" if p["dirty"] else "")
    load = "/".join(f"{x:.1f}" for x in m["load"]) + " → " + "/".join(f"{x:.1f}" for x in m.get("load_after", []))
    ref = report["reference"]
    lines = [
        f"Measured {report['date']} by `bench/store.py` on gateway-otel {commit}: {m['cpu']}, {m['cores']} cores, "
        f"Python {m['python']}, SQLite {m['sqlite']}; load average {load} (1/5/15 min, before → after); "
        f"the whole run took {_s(report['seconds'])}. Spans cloned at {report['clone_per_s']:,.0f}/s.",
        "",
        f"**Bytes per span of the demo's chat call** ({ref['rows']:,} clones of it, only ids and times varied): "
        f"**{_kb(ref['bytes_per_span'])}**; largest columns: {_columns(ref)} bytes.",
        "",
        "**Queries** — wall time of a child process as a user runs it (Python start-up and imports included), the "
        "best of the timed runs after the first, and the first; the child's peak RSS:",
        "",
        *query_table(report["sizes"]),
        "",
        "**Writes and size**:",
        "",
        *size_table(report["sizes"]),
        "",
    ]
    if report["bursts"]:
        lines += [
            "**A burst through the real path** (`gateway_otel.instrument()`, the real openai client, the "
            "in-process simulator):",
            "",
            *burst_table(report["bursts"]),
            "",
        ]
    return "\n".join(lines)


def write_readme(readme: Path, table: str) -> None:
    """Paste `table` between the store markers of `readme` (added, with a heading, at the end when missing)."""
    text = readme.read_text()
    block = f"{START}\n{table.rstrip()}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## The local store\n\n{block}\n"
    readme.write_text(text)
