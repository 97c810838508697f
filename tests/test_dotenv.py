"""A `.env` file is often another tool's: it is read as python-dotenv reads it, and nothing in it stops the
application, except a bad value of one of our own variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

import gateway_otel
from gateway_otel import ConfigurationError
from gateway_otel._env import load_dotenv

FOREIGN = {
    "pem": 'PRIVATE_KEY="-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END PRIVATE KEY-----"\nAFTER=1\n',
    "single_multiline": "MSG='first\nsecond'\nNEXT=2\n",
    "export": "export FOO=1\nexport   BAR='b'\n",
    "dotted_keys": "spring.datasource.url=jdbc:postgresql://localhost/db\nserver.port=8080\n",
    "comments": "KEY='console' # comment\nBARE=two words   # trailing\nHASH=#kept\nURL=http://x/#frag\n",
    "escapes": 'ESC="a\\nb\\"c\\\\d"\nRAW=\'a\\nb\'\n',
    "blank_and_odd": "\n\n   \n# only a comment\nNOVALUE\n=nokey\nEMPTY=\nSPACED = yes \n",
    "crlf": "A=1\r\nB='two'\r\n# c\r\nC=3\r\n",
    "unterminated": 'BROKEN="no end\nOK=1\n',
    "quoted_key": "'QK'=v\n",
    "no_final_newline": "LAST=1",
    "ours": "GATEWAY_OTEL_DESTINATIONS=console\nGATEWAY_OTEL_CAPTURE_CONTENT=NO_CONTENT\n",
}


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_read_as_python_dotenv_reads_it(name: str, tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(FOREIGN[name], encoding="utf-8", newline="")
    expected = {k: v for k, v in dotenv_values(path).items() if v is not None}
    assert load_dotenv(path) == expected


def test_bytes_that_are_not_utf8_do_not_fail(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"NAME=caf\xe9\nGATEWAY_OTEL_METRICS=false\n")
    assert load_dotenv(path) == {"NAME": "caf\ufffd", "GATEWAY_OTEL_METRICS": "false"}


def test_instrument_carries_on_over_a_foreign_dotenv_and_fails_for_a_bad_value_of_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_telemetry: Any
) -> None:
    path = tmp_path / ".env"
    path.write_bytes(("".join(FOREIGN.values()) + "\n").encode() + b"LATIN=\xe9\n")
    monkeypatch.setenv("GATEWAY_OTEL_DOTENV", str(path))
    captured = make_telemetry()  # would raise before: a PEM, `export`, dotted keys, a Latin-1 byte
    assert captured is not None
    gateway_otel.uninstrument()
    path.write_text("spring.datasource.url=x\nGATEWAY_OTEL_METRICS=sometimes\n")
    with pytest.raises(ConfigurationError, match=r"^GATEWAY_OTEL_METRICS='sometimes' is not valid"):
        make_telemetry()
