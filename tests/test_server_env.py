"""The shared cache of server venvs: where it lives, reuse while requirements are unchanged, a new venv on a change."""

from __future__ import annotations

from pathlib import Path

import pytest

from server_env import SERVERS_DIR_ENV, _wanted, ensure_env, servers_dir, venv_path

_MARKER = ".gateway-otel-requirement"


def _fake_install(venv: Path, marker: str) -> None:
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (venv / "bin" / "server").write_text("")
    (venv / _MARKER).write_text(marker)


def test_servers_dir_comes_from_the_variable_else_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SERVERS_DIR_ENV, str(tmp_path / "servers"))
    assert servers_dir() == tmp_path / "servers"
    monkeypatch.delenv(SERVERS_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert servers_dir() == tmp_path / "cache" / "gateway-otel" / "test-servers"


def test_the_venv_is_named_by_server_requirements_and_interpreter(tmp_path: Path) -> None:
    one = venv_path("server", ["server==1.0"], tmp_path)
    assert one.parent == tmp_path and one.name.startswith("server-")
    assert venv_path("server", ["server==1.0"], tmp_path) == one
    assert venv_path("server", ["server==1.1"], tmp_path) != one
    assert venv_path("other", ["server==1.0"], tmp_path).name.startswith("other-")


def test_an_installed_venv_with_the_same_requirements_is_reused_without_pip(tmp_path: Path) -> None:
    venv = venv_path("server", ["server==1.0"], tmp_path)
    _fake_install(venv, (marker := _wanted(["server==1.0"])))
    # The fake venv's python is an empty file: any pip call would fail, so returning proves nothing was run.
    assert ensure_env("server", ["server==1.0"], "bin/server", base=tmp_path) == venv
    assert (venv / _MARKER).read_text() == marker


def test_changed_requirements_install_a_new_venv_and_a_failed_install_is_loud(tmp_path: Path) -> None:
    old = venv_path("server", ["server==1.0"], tmp_path)
    _fake_install(old, (marker := _wanted(["server==1.0"])))
    missing = "gateway-otel-no-such-package-xyz==0.0.0"
    with pytest.raises(RuntimeError, match=rf"pip install {missing} failed \(exit \d+\)"):
        ensure_env("server", [missing], "bin/server", base=tmp_path)
    new = venv_path("server", [missing], tmp_path)
    assert new != old and (new / "bin" / "python").exists()  # created, beside the old one
    assert not (new / _MARKER).exists()  # never marked as installed, so the next run retries
    assert (old / _MARKER).read_text() == marker  # the old venv is left alone
