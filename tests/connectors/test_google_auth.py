"""Service-account delegation against the emulator's token endpoint (JWT-bearer grant)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from connectors.base import AuthFailed, CalendarProvider, CalendarRef
from connectors.google.client import CALENDAR_EVENTS_SCOPE, SCOPES
from connectors.google.connector import GoogleConnector
from tests.emulators.google import fixtures
from tests.emulators.google.emulator import GOOGLE_TOKEN_URL, JWT_BEARER, GoogleEmulator
from tests.emulators.google.fixtures import REP
from tests.emulators.google.harness import rsa_key, setup_google, write_service_account

# pytest fixtures shared with the other Google test modules
google_connector = fixtures.google_connector
google_emulator = fixtures.google_emulator
google_env = fixtures.google_env

CAL = CalendarRef(rep_id="r1", email=REP)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def _connector(key_file: Path, emu: GoogleEmulator) -> GoogleConnector:
    return GoogleConnector(str(key_file), emu.api_root, backoff_base=0.001, backoff_cap=0.002)


async def test_delegated_token_is_fetched_once_per_rep_and_reused(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    google_emulator.add_user("other@corp.test")
    other = CalendarRef(rep_id="r2", email="other@corp.test")
    for _ in range(3):
        await google_connector.sync_page(CAL, None, since=SINCE)
    await google_connector.sync_page(other, None, since=SINCE)
    assert google_emulator.calls["token"] == 2
    subjects = {r.subject for r in google_emulator.requests_for("events.list")}
    assert subjects == {REP, "other@corp.test"}


async def test_signature_is_checked_against_the_registered_key(
    google_emulator: GoogleEmulator,
    tmp_path: Path,
) -> None:
    google_emulator.add_user(REP)
    key_file = write_service_account(
        google_emulator, tmp_path, signing_key=rsa_key(0), registered_key=rsa_key(1)
    )
    connector = _connector(key_file, google_emulator)
    try:
        with pytest.raises(AuthFailed, match="Invalid JWT Signature"):
            await connector.sync_page(CAL, None, since=SINCE)
    finally:
        await connector.aclose()
    assert google_emulator.calls["events.list"] == 0


def _assertion(emu: GoogleEmulator, aud: str, *, sub: str = REP, lifetime: int = 3600) -> str:
    now = int(time.time())
    account = next(iter(emu.service_accounts))
    return jwt.encode(
        {
            "iss": account,
            "sub": sub,
            "aud": aud,
            "scope": " ".join(SCOPES),
            "iat": now,
            "exp": now + lifetime,
        },
        rsa_key(0),
        algorithm="RS256",
    )


@pytest.mark.parametrize(
    ("aud_kind", "status"), [("google", 200), ("emulator", 200), ("other", 400)]
)
def test_token_endpoint_audience(
    google_env,
    aud_kind: str,
    status: int,
) -> None:
    emu = google_env.emulator
    aud = {
        "google": GOOGLE_TOKEN_URL,  # what google-auth always signs, whatever token_uri is
        "emulator": emu.token_uri,
        "other": "https://example.test/token",
    }[aud_kind]
    response = httpx.post(
        emu.token_uri, data={"grant_type": JWT_BEARER, "assertion": _assertion(emu, aud)}
    )
    assert response.status_code == status
    if status == 200:
        assert response.json()["token_type"] == "Bearer"
    else:
        assert response.json()["error"] == "invalid_grant"


def test_token_endpoint_refuses_long_lived_assertions(google_env) -> None:
    emu = google_env.emulator
    assertion = _assertion(emu, GOOGLE_TOKEN_URL, lifetime=7200)
    response = httpx.post(emu.token_uri, data={"grant_type": JWT_BEARER, "assertion": assertion})
    assert response.status_code == 400


async def test_delegation_not_granted_is_auth_failed(
    google_emulator: GoogleEmulator,
    tmp_path: Path,
) -> None:
    env = setup_google(google_emulator, tmp_path, reps=[REP], scopes=None)
    connector = _connector(env.key_file, google_emulator)
    try:
        with pytest.raises(AuthFailed, match="unauthorized_client") as info:
            await connector.sync_page(CAL, None, since=SINCE)
    finally:
        await connector.aclose()
    assert info.value.__cause__ is not None  # raised "from" the wire error


async def test_delegation_missing_the_freebusy_scope_is_auth_failed(
    google_emulator: GoogleEmulator,
    tmp_path: Path,
) -> None:
    # Google refuses the whole token when any requested scope is not delegated.
    env = setup_google(google_emulator, tmp_path, reps=[REP], scopes=[CALENDAR_EVENTS_SCOPE])
    connector = _connector(env.key_file, google_emulator)
    try:
        with pytest.raises(AuthFailed):
            await connector.free_busy(CAL, SINCE, SINCE + timedelta(hours=1))
    finally:
        await connector.aclose()


async def test_unknown_user_is_auth_failed(google_connector: GoogleConnector) -> None:
    stranger = CalendarRef(rep_id="x", email="left-the-company@corp.test")
    with pytest.raises(AuthFailed, match="Invalid email or User ID"):
        await google_connector.sync_page(stranger, None, since=SINCE)


async def test_revoked_delegation_after_tokens_were_issued(
    google_connector: GoogleConnector,
    google_env,
) -> None:
    emu = google_env.emulator
    await google_connector.sync_page(CAL, None, since=SINCE)
    emu.revoke_client(google_env.client_id)
    emu.revoke_tokens()
    # 401 → AuthorizedHttp refreshes once → token endpoint says unauthorized_client.
    with pytest.raises(AuthFailed):
        await google_connector.sync_page(CAL, None, since=SINCE)


async def test_a_revoked_access_token_is_refreshed_transparently(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    await google_connector.sync_page(CAL, None, since=SINCE)
    google_emulator.revoke_tokens(REP)
    page = await google_connector.sync_page(CAL, None, since=SINCE)
    assert page.last_page
    assert google_emulator.calls["token"] == 2


async def test_no_worker_or_background_threads_survive_aclose(
    google_env,
    tmp_path: Path,
) -> None:
    before = set(threading.enumerate())
    connector = _connector(google_env.key_file, google_env.emulator)
    await connector.sync_page(CAL, None, since=SINCE)
    await connector.aclose()
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == []


def test_connector_satisfies_the_provider_protocol(google_env) -> None:
    connector = GoogleConnector(str(google_env.key_file), google_env.emulator.api_root)
    try:
        assert isinstance(connector, CalendarProvider)
        assert connector.name == "google"
        assert connector.scopes == (
            "https://www.googleapis.com/auth/calendar.events",
            "https://www.googleapis.com/auth/calendar.freebusy",
        )
    finally:
        connector._client.close()


def test_missing_key_file_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        GoogleConnector(str(tmp_path / "missing.json"))
