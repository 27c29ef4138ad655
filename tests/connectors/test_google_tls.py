"""HTTPS with a private CA: SSL_CERT_FILE / REQUESTS_CA_BUNDLE reach httplib2 and google-auth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import CalendarRef, Unavailable
from connectors.google.connector import GoogleConnector
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.fixtures import REP
from tests.emulators.google.harness import GoogleTestEnv, setup_google

CAL = CalendarRef(rep_id="r1", email=REP)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "HTTPLIB2_CA_CERTS")


@pytest.fixture
def tls_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleTestEnv]:
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    emu = GoogleEmulator.start(tls_dir=tmp_path / "tls")
    try:
        yield setup_google(emu, tmp_path, reps=[REP])
    finally:
        emu.stop()


def _connector(env: GoogleTestEnv) -> GoogleConnector:
    return GoogleConnector(str(env.key_file), env.emulator.api_root, max_attempts=1)


async def test_private_ca_is_refused_without_configuration(tls_env: GoogleTestEnv) -> None:
    assert tls_env.emulator.api_root.startswith("https://")
    connector = _connector(tls_env)
    try:
        with pytest.raises(Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await connector.sync_page(CAL, None, since=SINCE)
    finally:
        await connector.aclose()
    assert tls_env.emulator.calls["token"] == 0


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
async def test_ca_variable_is_honoured_for_token_and_api(
    tls_env: GoogleTestEnv, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    emu = tls_env.emulator
    monkeypatch.setenv(variable, str(emu.ca_file))
    connector = _connector(tls_env)
    try:
        page = await connector.sync_page(CAL, None, since=SINCE)
        channel = await connector.watch(CAL, emu.sink_url("tls"))
        assert page.last_page and channel.resource_id
        emu.wait_for_sink("tls", 1)
    finally:
        await connector.aclose()
    assert emu.calls["token"] == 1


def test_a_ca_variable_naming_no_file_fails_at_construction(
    tls_env: GoogleTestEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nope.pem"))
    with pytest.raises(ValueError, match="SSL_CERT_FILE"):
        _connector(tls_env)
