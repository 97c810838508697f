"""No credential reaches telemetry: what the client sent (its key, an Azure AD token, credential headers), what the
body carries (credential-named fields at any depth, credential-shaped values), and what a gateway echoes back —
scrubbed before any cut, in the span, its events and status, the log record, the OTLP bytes and the SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

try:  # renamed in opentelemetry-sdk 1.39
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogs
except ImportError:  # pragma: no cover
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogs  # type: ignore[attr-defined,no-redef]

from conftest import OPENROUTER_URL, Captured
from gateway_otel._secrets import (
    REDACTED,
    Scrubber,
    _credential_fields,
    credential_values,
    is_credential_name,
    mask,
    redact,
    url_without_credentials,
)
from gateway_otel.simulator import GatewaySimulator, SimulatedResponse, http_client
from gateway_otel.store import LocalSpanExporter, StoreConfig, local_log_exporter

KEY = "sk-or-v1-" + "0123456789abcdef" * 4  # 73 characters, like OpenRouter's
SECRETS = {
    "azure_ad_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRU5USU5FTC1hZCJ9.c2lnbmF0dXJlLVNFTlRJTkVM",
    "x-api-key": "xak-SENTINEL-headerkey-0001",
    "api-key": "azk-SENTINEL-azurekey-0002",
    "authorization": "Bearer tok-SENTINEL-extraauth-0003",
    "cookie": "session=ck-SENTINEL-cookie-0004; theme=dark",
    "x-default-key": "dfk-SENTINEL-defaultkey-0005",
}


class EchoingGateway(GatewaySimulator):
    """A gateway that refuses every call with a 401 whose message echoes the request's headers and body — the
    worst case of the error bodies real gateways send ("Incorrect API key provided: sk-...")."""

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> SimulatedResponse:
        echoed = "; ".join(f"{k}: {v}" for k, v in headers.items()) + " body: " + body.decode("utf-8", "replace")
        message = f"Incorrect API key provided: {KEY}. Request was {echoed}"
        payload = json.dumps({"error": {"code": 401, "message": message}}).encode()
        return SimulatedResponse(401, {"content-type": "application/json"}, body=payload)


def _instrument(make_telemetry: Any, **options: Any) -> tuple[Captured, Any]:
    logs = InMemoryLogs()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    return make_telemetry(logger_provider=provider, **options), logs


def _everything(captured: Captured, logs: Any, tmp_path: Path) -> str:
    """Every byte the telemetry would leave the process as: span and log attributes, events and statuses, the OTLP
    encodings, and the SQLite store's file after both were written to it."""
    spans = captured.spans()
    records = [r.log_record if hasattr(r, "log_record") else r for r in logs.get_finished_logs()]
    texts = [json.dumps(s.to_json()) if hasattr(s, "to_json") else repr(s) for s in spans]
    texts += [repr({**dict(r.attributes or {}), "body": r.body}) for r in records]
    otlp = encode_spans(spans).SerializeToString() + encode_logs(list(logs.get_finished_logs())).SerializeToString()
    store = tmp_path / "telemetry.db"
    config = StoreConfig(store, None, None)
    span_exporter = LocalSpanExporter(config)
    span_exporter.export(spans)
    log_exporter = local_log_exporter(config)
    log_exporter.export(list(logs.get_finished_logs()))
    span_exporter.shutdown()
    log_exporter.shutdown()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("telemetry.db*"))
    return "\n".join(texts) + otlp.decode("latin-1") + stored.decode("latin-1")


def _assert_no_part_of(secret: str, text: str) -> None:
    """Not the secret, nor any 12-character piece of it (a cut one)."""
    pieces = {secret[i : i + 12] for i in range(0, max(len(secret) - 11, 1))}
    leaked = sorted(p for p in pieces if p in text)
    assert not leaked, f"{secret[:6]}… leaked in part: {leaked[:3]}"


@pytest.mark.parametrize("limit", [64, 100, 4096])
def test_an_echoed_key_is_scrubbed_before_the_message_is_cut(
    make_telemetry: Any, tmp_path: Path, limit: int
) -> None:
    """A 401 that echoes the key, cut at `max_content_length`: the key straddles the cut at 64."""
    captured, logs = _instrument(make_telemetry, max_content_length=limit)
    gateway = http_client(EchoingGateway())
    client = openai.OpenAI(base_url=OPENROUTER_URL, api_key=KEY, max_retries=0, http_client=gateway)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    everything = _everything(captured, logs, tmp_path)
    _assert_no_part_of(KEY, everything)
    attrs = dict(captured.span().attributes or {})
    assert attrs["gateway.error.message"].startswith(f"Incorrect API key provided: {REDACTED}.")
    assert len(attrs["gateway.error.message"]) <= min(limit, 4096) + len("…[truncated 99999 chars]")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_credentials_the_client_sent_never_come_back_in_telemetry(
    make_telemetry: Any, tmp_path: Path, asynchronous: bool
) -> None:
    """An Azure AD token, credential headers in default_headers and extra_headers, credentials in the body at any
    depth: echoed by the gateway's 401, none of them appears anywhere."""
    captured, logs = _instrument(make_telemetry)
    gateway = EchoingGateway()
    cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
    client = cls(
        azure_endpoint="https://example.openai.azure.com",
        azure_ad_token=SECRETS["azure_ad_token"],
        api_version="2024-10-21",
        max_retries=0,
        default_headers={"x-default-key": SECRETS["x-default-key"]},
        http_client=http_client(gateway, asynchronous=asynchronous),
    )
    headers = {name: SECRETS[name] for name in ("x-api-key", "api-key", "authorization", "cookie")}
    body = {"user_config": {"deep": [{"private_key": "pk-SENTINEL-body-0006"}]}, "openrouter_key": "or-SENTINEL-0007"}
    kwargs = {"extra_headers": headers, "extra_body": body}
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError):
        if asynchronous:
            import asyncio

            asyncio.run(client.chat.completions.create(model="gpt-4o-mini", messages=messages, **kwargs))
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, **kwargs)
    everything = _everything(captured, logs, tmp_path)
    for secret in [*SECRETS.values(), "pk-SENTINEL-body-0006", "or-SENTINEL-0007", "ck-SENTINEL-cookie-0004"]:
        _assert_no_part_of(secret.removeprefix("Bearer "), everything)
    assert "SENTINEL" not in everything
    [record] = [r.log_record if hasattr(r, "log_record") else r for r in logs.get_finished_logs()]
    assert "failed: 401" in str(record.body)


# Field names a gateway or SDK really sends credentials under (LiteLLM's client-side credentials, cloud SDKs,
# OAuth, signed URLs), and ordinary parameters that must stay readable.
CREDENTIAL_FIELDS = [
    "api_key", "apiKey", "API-KEY", "x-api-key", "openrouter_key", "key", "private_key", "privateKey",
    "client_secret", "aws_secret_access_key", "aws_access_key_id", "aws_session_token", "accessToken",
    "access_token", "refresh_token", "id_token", "authToken", "sessionToken", "sas_token", "sas",
    "azure_ad_token", "vertex_credentials", "credentials", "password", "passwd", "pwd", "passphrase",
    "Authorization", "auth", "bearer", "cookie", "Cookie", "signature", "jwt", "secret", "webhook_secret",
    "x-goog-api-key", "dd-api-key", "ssh_key", "encryption_key", "hf_token", "api_keys",
]  # fmt: skip
ORDINARY_FIELDS = [
    "prompt_cache_key", "max_tokens", "max_completion_tokens", "max_output_tokens", "top_k", "top_p",
    "temperature", "logit_bias", "top_logprobs", "reasoning", "stream_options", "user", "session_id", "models",
    "route", "provider", "transforms", "seed", "tokenizer", "author",
]  # fmt: skip
CREDENTIAL_SHAPES = {
    "pem": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "openai": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "google": "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    "github": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "bearer": "Bearer abcdefghijklmnop.qrstuv",
}


@pytest.mark.parametrize("name", CREDENTIAL_FIELDS)
def test_credential_field_names(name: str) -> None:
    assert is_credential_name(name)
    assert redact({"outer": [{name: "hunter2-value"}]}) == {"outer": [{name: REDACTED}]}


@pytest.mark.parametrize("name", CREDENTIAL_FIELDS)
def test_each_credential_field_alone_is_redacted_from_the_parameters(name: str) -> None:
    """Alone in an ordinary body (no `api_key` beside it to trigger the walk): the quick pre-check must see it."""
    from gateway_otel.instrumentation._attributes import safe_json

    encoded = safe_json({"max_tokens": 5, "temperature": 0.2, "nested": {name: "hunter2-SENTINEL"}})
    assert "SENTINEL" not in encoded and json.loads(encoded)["nested"] == {name: REDACTED}


@pytest.mark.parametrize("kind", sorted(CREDENTIAL_SHAPES))
def test_each_credential_shape_alone_is_redacted_from_the_parameters(kind: str) -> None:
    from gateway_otel.instrumentation._attributes import safe_json

    encoded = safe_json({"max_tokens": 5, "note": CREDENTIAL_SHAPES[kind]})
    assert json.loads(encoded) == {"max_tokens": 5, "note": REDACTED}


@pytest.mark.parametrize("name", ORDINARY_FIELDS)
def test_ordinary_parameters_pass_through_the_parameters(name: str) -> None:
    from gateway_otel.instrumentation._attributes import safe_json

    assert json.loads(safe_json({name: "plain value 12"})) == {name: "plain value 12"}


@pytest.mark.parametrize("name", [*ORDINARY_FIELDS, "", "--"])
def test_ordinary_parameters_are_not_credentials(name: str) -> None:
    assert not is_credential_name(name)


@pytest.mark.parametrize("kind", sorted(CREDENTIAL_SHAPES))
def test_credential_shaped_values_are_redacted_under_any_name(kind: str) -> None:
    value = CREDENTIAL_SHAPES[kind]
    assert redact({"note": f"use {value} here"}) == {"note": f"use {REDACTED} here"}


def test_the_invocation_parameters_keep_ordinary_values_and_lose_credentials(
    make_telemetry: Any, sim: GatewaySimulator
) -> None:
    captured = make_telemetry()
    client = openai.OpenAI(base_url=OPENROUTER_URL, api_key=KEY, max_retries=0, http_client=http_client(sim))
    body = {name: f"v-{i}-SENTINEL" for i, name in enumerate(CREDENTIAL_FIELDS)}
    body["nested"] = {"list": [{"Private_Key": "deep-SENTINEL"}], "blob": CREDENTIAL_SHAPES["pem"]}
    body.update({"prompt_cache_key": "cache-1", "top_k": 4})
    client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=9, extra_body=body
    )
    params = json.loads(dict(captured.span().attributes or {})["llm.invocation_parameters"])
    assert "SENTINEL" not in json.dumps(params) and "BEGIN PRIVATE" not in json.dumps(params)
    assert (params["prompt_cache_key"], params["top_k"], params["max_tokens"]) == ("cache-1", 4, 9)
    assert all(params[name] == REDACTED for name in CREDENTIAL_FIELDS)
    assert params["nested"] == {"list": [{"Private_Key": REDACTED}], "blob": REDACTED}


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=80),
    before=st.text(max_size=200),
    after=st.text(max_size=200),
    limit=st.integers(min_value=1, max_value=300),
)
def test_scrub_then_cut_never_leaves_a_piece(secret: str, before: str, after: str, limit: int) -> None:
    """Whatever the key, the text around it and the limit: the scrubbed, cut text holds no 8-character piece of it
    that was not already in the text around it."""
    from gateway_otel.instrumentation._content import as_text

    scrub = Scrubber([secret])
    text = as_text(scrub(before + secret + after), limit)
    for i in range(len(secret) - 7):
        piece = secret[i : i + 8]
        if piece in text:
            assert piece in before or piece in after or piece in REDACTED or piece in "…[truncated ", piece


def test_a_short_value_is_not_searched_for() -> None:
    assert Scrubber(["abc"])("abc abc") == "abc abc"  # replacing 3 letters everywhere would garble, not protect
    assert Scrubber(["Bearer abcdefgh12"])("it was abcdefgh12") == "it was abcdefgh12"  # whole values only here
    assert Scrubber.of_call(None, {"Authorization": "Bearer abcdefgh12"})("it was abcdefgh12") == f"it was {REDACTED}"


EXPORTER_HEADERS = {
    "x-honeycomb-team": "hcteam-SENTINEL-0001",
    "dd-api-key": "ddkey-SENTINEL-0002",
    "signoz-ingestion-key": "signoz-SENTINEL-0003",
    "lightstep-access-token": "ls-SENTINEL-0004",
    "x-goog-api-key": "goog-SENTINEL-0005",
    "authorization": "Bearer bearer-SENTINEL-0006",
}


@pytest.mark.parametrize(
    "argv",
    [["destinations", "list"], ["destinations", "list", "--json"], ["destinations", "get", "otlp"], ["doctor"],
     ["destinations", "test"]],
)
def test_the_cli_masks_every_exporter_header_and_url_credential(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway_otel import cli

    monkeypatch.chdir(tmp_path)
    for name in ("OPENROUTER_API_KEY", "OPENROUTER_MANAGEMENT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_OTEL_DESTINATIONS", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", ",".join(f"{k}={v}" for k, v in EXPORTER_HEADERS.items()))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://user:userinfo-SENTINEL-0007@otel.example:4318/?token=q-SENTINEL-0008")
    cli.main(argv)
    out, err = capsys.readouterr()
    assert "otel.example" in out + err  # the destination is shown...
    assert "SENTINEL" not in out + err  # ...without any of its credentials
    if argv[-1] != "test":  # the configuration shown, credentials masked (a probe's line names only host and port)
        assert "****" in out + err


# --- each rule alone (mutation testing, `bench/mutate.py secrets`, found them checked only in passing) -------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Bearer abcdefghijklmnop7890", "Bearer ****7890"),
        ("bearer abcdefghijklmnop7890", "bearer ****7890"),
        ("abcdefghijklmnop", "****mnop"),  # 16 characters: the last 4 shown
        ("abcdefghijklmno", "****"),  # 15: none
        ("Bearer abcdefghijklmno", "Bearer ****"),
        ("Bearer part-one part-two-abcdefgh", "Bearer ****efgh"),  # the scheme is the first word only
        ("user pass-abcdefghijklmnop", "****mnop"),  # not a scheme: all of it is the secret
        ("pk-l...EfGh", "pk-l...EfGh"),  # already masked (OpenRouter's own)
    ],
)
def test_mask_shows_a_known_scheme_and_the_last_four_of_a_long_secret(value: str, shown: str) -> None:
    assert mask(value) == shown


@pytest.mark.parametrize(
    ("url", "dropped", "kept", "masked"),
    [
        (
            "https://user:pw-SENTINEL@otel.example:4318/v1?token=abc",
            "https://otel.example:4318/v1",
            "https://otel.example:4318/v1?token=abc",
            "https://otel.example:4318/v1?****",
        ),
        ("https://a@b:pw-SENTINEL@otel.example/v1", *["https://otel.example/v1"] * 3),  # an @ in the password
        ("https://otel.example/v1", *["https://otel.example/v1"] * 3),  # no query: nothing to mask
        # not parseable (an unclosed IPv6 bracket), no scheme, no host: cut by the shape of user-info and query
        ("http://user:pw-SENTINEL@[::1/v1?t=SENTINEL?x=1", "http://[::1/v1", *["http://[::1/v1?****"] * 2),
        ("user:pw-SENTINEL@otel.example:4318?t=SENTINEL", "otel.example:4318", *["otel.example:4318?****"] * 2),
        ("//user:pw-SENTINEL@otel.example/v1?t=SENTINEL", "//otel.example/v1", *["//otel.example/v1?****"] * 2),
        ("otel.example:4318/v1", *["otel.example:4318/v1"] * 3),
    ],
)
def test_url_without_credentials(url: str, dropped: str, kept: str, masked: str) -> None:
    shown = [url_without_credentials(url, query=query) for query in ("drop", "keep", "mask")]
    assert shown == [dropped, kept, masked]
    assert url_without_credentials(url) == dropped


def test_an_endpoint_without_a_scheme_is_refused_without_its_credentials() -> None:
    from gateway_otel._env import parse_url
    from gateway_otel._errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        parse_url("OTEL_EXPORTER_OTLP_ENDPOINT", "user:pw-SENTINEL@otel.example:4318/v1?token=SENTINEL")
    assert str(caught.value).startswith("OTEL_EXPORTER_OTLP_ENDPOINT='otel.example:4318/v1?****' is not valid")


COOKIES = "session=ck-12345678;theme=dark-mode-1; pad=YWJjZGVmZ2g="  # one cookie without a space, one padded


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("Bearer abcdefgh12", ["Bearer abcdefgh12", "abcdefgh12"]),
        ("Token  abc defgh123", ["Token  abc defgh123", "abc defgh123"]),  # all that follows the scheme
        ("abcdefgh", ["abcdefgh"]),  # 8 characters: searched for
        ("abcdefg", []),  # 7: not
        (COOKIES, [COOKIES, "pad=YWJjZGVmZ2g=", "ck-12345678", "dark-mode-1", "YWJjZGVmZ2g="]),
    ],
)
def test_the_secret_parts_of_a_credential_header(value: str, parts: list[str]) -> None:
    assert credential_values(value) == parts


def test_a_longer_secret_is_replaced_before_one_it_contains() -> None:
    """`zyxwvuts` sorts after the longer secret that contains it: replaced first, it would leave `abc-` and `-long`."""
    assert Scrubber(["zyxwvuts", "abc-zyxwvuts-long"])("a abc-zyxwvuts-long b") == f"a {REDACTED} b"


def test_the_credentials_of_a_call_are_scrubbed_whatever_their_shape() -> None:
    """The client's key and Azure AD token, its default headers, the request's headers and the body's credential
    fields, none shaped like a known credential: each replaced; the other headers and fields stay readable."""
    client = SimpleNamespace(
        api_key="plain-key-0001",
        _azure_ad_token="plain-token-0002",
        _custom_headers={"X-Api-Key": "hdr-key-0003", "x-trace": "trace-id-0004", "Authorization": SimpleNamespace()},
    )
    headers = {"x-request-id": "request-0005", "cookie": "a=cookie-0006"}
    body = {
        "model": "model-name-0007",
        "api_key": "body-key-0008",
        "client_secret": "body-secret-0009",
        "logit_bias": {50256: "bias-value-0010"},
        "nested": [{"token": "body-tok-0011"}],
    }
    scrub = Scrubber.of_call(client, headers, body)
    secrets = ["0001", "0002", "0003", "0006", "0008", "0009", "0011"]
    ordinary = ["trace-id-0004", "request-0005", "model-name-0007", "bias-value-0010"]
    text = " ".join([client.api_key, client._azure_ad_token, "hdr-key-0003", "cookie-0006", "body-key-0008",
                     "body-secret-0009", "body-tok-0011", *ordinary])  # fmt: skip
    assert scrub(text) == " ".join([REDACTED] * len(secrets) + ordinary)


def _nested(depth: int, kind: type) -> Any:
    """A credential field in the mapping `depth` levels of `kind` (dict or list) below the body."""
    value: Any = {"api_key": "deep-key-SENTINEL"}
    for _ in range(depth):
        value = {"a": value} if kind is dict else [value]
    return value


@pytest.mark.parametrize("kind", [dict, list])
def test_a_body_is_searched_32_levels_deep_and_a_cycle_ends(kind: type) -> None:
    assert list(_credential_fields(_nested(32, kind))) == ["deep-key-SENTINEL"]
    assert list(_credential_fields(_nested(33, kind))) == []
    cycle: Any = {"api_key": "cycle-key-SENTINEL"}
    cycle["self"] = cycle if kind is dict else [cycle]
    assert set(_credential_fields(cycle)) == {"cycle-key-SENTINEL"}  # found once per level, 33 levels


def test_an_empty_credential_field_stays_empty() -> None:
    """Nothing to hide in an empty or null field: it says no credential was sent; any other value is replaced."""
    body = {"api_key": "", "token": None, "password": 0, "secret": ["x"]}
    assert redact(body) == {"api_key": "", "token": None, "password": REDACTED, "secret": REDACTED}


def test_the_parameters_are_encodable() -> None:
    """A lone surrogate in a parameter (JSON can carry one) would fail the export of the whole batch."""
    from gateway_otel.instrumentation._attributes import safe_json

    assert safe_json({"note": "caf\ud800", "api_key": "k\ud800"}) == f'{{"note":"caf\ufffd","api_key":"{REDACTED}"}}'
