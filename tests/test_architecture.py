"""The house rules that keep the layout readable: imports flow one way, no name means two things, no file grows past
what one reading holds, and `docs/architecture.md` names files that exist."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "gateway_otel"
MAX_LINES = 450


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every import between our modules, at module level and inside functions (TYPE_CHECKING ones too)."""
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                stem = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                stem = stem if node.level else (node.module or "")
                targets = [stem, *(f"{stem}.{alias.name}" for alias in node.names)]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name and not (path.name == "__init__.py" and target.startswith(name + ".")):
                    graph[name].add(target)
    return graph


def test_no_import_circle() -> None:
    graph = _imports()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                if nxt == goal:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    circles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if reaches(b, a))
    assert circles == []


def test_the_leaves_and_the_core_import_nothing_above_them() -> None:
    graph = _imports()
    for leaf in ("_errors", "_env", "_secrets", "_semconv", "_internal", "gateways"):
        above = {m for m in graph[f"gateway_otel.{leaf}"] if m not in ("gateway_otel._errors", "gateway_otel._secrets")}
        assert above == set(), leaf
    for name, targets in graph.items():
        if name.startswith("gateway_otel.instrumentation"):
            assert not {t for t in targets if t.startswith(("gateway_otel.query", "gateway_otel.cli"))}, name


def test_no_class_name_is_defined_twice_and_no_file_is_too_long() -> None:
    seen: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= MAX_LINES, path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                assert node.name not in seen, f"{node.name} in {path} and {seen[node.name]}"
                seen[node.name] = str(path)


def test_the_architecture_page_names_real_files_and_the_readme_links_it() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)", page))
    assert len(named) > 30
    missing = [name for name in named if not (PACKAGE / name).exists() and not (ROOT / name).exists()]
    assert missing == []
    modules = {  # every module but the re-exporting package files and the version
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__main__.py", "_version.py") and (p.name != "__init__.py" or p.parent == PACKAGE)
    }
    unnamed = sorted(m for m in modules if m not in named and not m.startswith("simulator/"))
    assert unnamed == []
    assert "docs/architecture.md" in (ROOT / "README.md").read_text()


def test_a_query_command_imports_neither_the_sdk_nor_the_client(tmp_path: Path) -> None:
    """`gateway-otel stats` over a million spans must answer in a second, and importing the SDK, the exporters,
    the instrumentation, openai, asyncio and ssl cost ~0.2 s of it: the package and the CLI import them at first
    use. Checked in a fresh interpreter that runs the command over a store (with one call in it)."""
    import os
    import subprocess
    import sys

    from conftest import chat_span
    from gateway_otel.store import StoreConfig, StoreWriter

    writer = StoreWriter(StoreConfig(tmp_path / "t.db", max_age_seconds=None, max_bytes=None))
    writer.write_spans([chat_span(1, time.time_ns())])
    writer.close()
    code = (
        "import sys, gateway_otel.cli as cli\n"
        "assert cli.main(['stats', '--window', '1h']) == 0\n"
        "heavy = ('opentelemetry.sdk', 'opentelemetry.instrumentation', 'openai', 'asyncio', 'ssl', 'wrapt', "
        "'gateway_otel.instrumentation', 'gateway_otel.destinations._configure')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)\n"
    )
    env = {**os.environ, "GATEWAY_OTEL_LOCAL_PATH": str(tmp_path / "t.db")}
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert ran.stdout.splitlines()[2].split()[:2] == ["m", "1"] and ran.stderr == "[]\n"  # the call; nothing heavy
