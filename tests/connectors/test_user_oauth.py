"""A rep's own grant, end to end through the emulated identity providers.

google-auth-oauthlib and MSAL talk to the Google and Microsoft emulators over HTTPS (a
private CA): authorization URL with PKCE, the code redeemed with the verifier, the
id_token checked against the JWKS, then calendar calls made with the person's grant;
refresh, revocation, wrong verifier, replayed code, forged state, other audience.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.base import AuthFailed, CalendarRef
from connectors.google.client import SCOPES
from connectors.google.connector import GoogleConnector
from connectors.google.oauth import GoogleOAuth
from connectors.microsoft import MicrosoftConnector
from connectors.microsoft.oauth import DelegatedTokenError, MicrosoftOAuth
from connectors.oidc import AuthRefused, IdTokenVerifier
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.harness import rsa_key
from tests.emulators.microsoft.harness import (
    RunningEmulator,
    generate_self_signed_cert,
    start_emulator,
    trust_env,
)

REP = "anne@corp.test"
REDIRECT = "https://nextstep.test/auth/google/callback"
MS_REDIRECT = "https://nextstep.test/auth/microsoft/callback"
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def follow(url: str, verify: str) -> dict[str, str]:
    """What the browser does: open the authorization URL, come back with the query."""
    resp = httpx.get(url, verify=ssl.create_default_context(cafile=verify), follow_redirects=False)
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class GoogleSide:
    emu: GoogleEmulator
    oauth: GoogleOAuth
    ca: str


@pytest.fixture
def google(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleSide]:
    emu = GoogleEmulator.start(tls_dir=tmp_path / "tls")
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(name, str(emu.ca_file))
    emu.oauth.idp.register_client("web-client", "web-secret", {REDIRECT})
    emu.oauth.idp.add_person(REP)
    emu.oauth.idp.signed_in = REP
    emu.add_user(REP)
    try:
        yield GoogleSide(
            emu, GoogleOAuth("web-client", "web-secret", issuer=emu.api_root), str(emu.ca_file)
        )
    finally:
        emu.stop()


def _connect_google(side: GoogleSide) -> str:
    url, pending = side.oauth.begin(
        redirect_uri=REDIRECT, state="st-1", connect=True, login_hint=REP
    )
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["access_type"] == ["offline"]
    assert set(query["scope"][0].split()) >= set(SCOPES)
    assert "verifier" not in url and json.loads(pending)["verifier"] not in url
    params = follow(url, side.ca)
    assert params["state"] == "st-1"
    who, grant = side.oauth.finish(redirect_uri=REDIRECT, pending=pending, params=params)
    assert who.email == REP and grant
    return grant


async def test_google_grant_reads_the_rep_calendar_and_dies_when_revoked(
    google: GoogleSide,
) -> None:
    grant = _connect_google(google)
    connector = GoogleConnector(None, google.emu.api_root, user_oauth=google.oauth, max_attempts=1)
    cal = CalendarRef(rep_id="r1", email=REP, grant=grant)
    assert "grant" not in repr(cal) and json.loads(grant)["refresh_token"] not in repr(cal)
    try:
        page = await connector.sync_page(cal, None, since=SINCE)
        assert page.last_page
        (issued,) = google.emu.oauth.idp.grants.values()
        assert issued.refreshed == 1  # google-auth refreshed an access token from it
        await connector.sync_page(cal, None, since=SINCE)
        assert issued.refreshed == 1  # and reuses that access token while it lives
        google.emu.oauth.revoke_user(REP)
        with pytest.raises(AuthFailed, match="invalid_grant"):
            await connector.sync_page(
                CalendarRef(rep_id="r1", email=REP, grant=grant), None, since=SINCE
            )
        # Without a grant and without a service account: refused, clearly.
        with pytest.raises(AuthFailed, match="not connected"):
            await connector.sync_page(CalendarRef(rep_id="r1", email=REP), None, since=SINCE)
    finally:
        await connector.aclose()


def test_google_wrong_verifier_replayed_code_and_refusal_store_nothing(
    google: GoogleSide,
) -> None:
    url, pending = google.oauth.begin(
        redirect_uri=REDIRECT, state="st-2", connect=True, login_hint=None
    )
    params = follow(url, google.ca)
    forged = json.dumps({**json.loads(pending), "verifier": "x" * 64})
    with pytest.raises(AuthRefused, match="invalid_grant"):
        google.oauth.finish(redirect_uri=REDIRECT, pending=forged, params=params)
    # The code was spent by the refused attempt: the right verifier comes too late.
    with pytest.raises(AuthRefused, match="invalid_grant"):
        google.oauth.finish(redirect_uri=REDIRECT, pending=pending, params=params)
    google.emu.oauth.idp.deny_consent = True
    with pytest.raises(AuthRefused, match="access_denied"):
        google.oauth.finish(
            redirect_uri=REDIRECT,
            pending=pending,
            params=follow(
                google.oauth.begin(redirect_uri=REDIRECT, state="s", connect=True, login_hint=None)[
                    0
                ],
                google.ca,
            ),
        )
    assert not google.emu.oauth.idp.grants or all(
        g.refreshed == 0 for g in google.emu.oauth.idp.grants.values()
    )


def test_google_calendar_scope_unticked_is_refused(google: GoogleSide) -> None:
    google.emu.oauth.idp.grant_scopes = {"openid", "https://www.googleapis.com/auth/userinfo.email"}
    url, pending = google.oauth.begin(
        redirect_uri=REDIRECT, state="st-3", connect=True, login_hint=None
    )
    with pytest.raises(AuthRefused, match="calendar"):
        google.oauth.finish(redirect_uri=REDIRECT, pending=pending, params=follow(url, google.ca))


def test_id_token_of_another_audience_expired_or_wrong_nonce_is_refused(
    google: GoogleSide,
) -> None:
    idp = google.emu.oauth.idp
    verifier = IdTokenVerifier(
        f"{google.emu.api_root}oauth2/v3/certs", google.emu.oauth.issuer, "web-client"
    )
    now = int(time.time())
    good = {"iss": google.emu.oauth.issuer, "aud": "web-client", "sub": "1", "email": REP,
            "iat": now, "exp": now + 600, "nonce": "n"}  # fmt: skip
    assert verifier.verify(idp.sign(good), nonce="n").email == REP
    for claims, reason in (
        ({**good, "aud": "another-app"}, "aud"),
        ({**good, "exp": now - 3600, "iat": now - 7200}, "expired"),
        ({**good, "iss": "https://evil.test"}, "iss"),
    ):
        with pytest.raises(AuthRefused, match=reason):
            verifier.verify(idp.sign(claims), nonce="n")
    with pytest.raises(AuthRefused, match="nonce"):
        verifier.verify(idp.sign(good), nonce="other")
    with pytest.raises(AuthRefused):  # signed with a key that is not in the JWKS
        verifier.verify(idp.sign(good, key=rsa_key(1)), nonce="n")


# --- Microsoft ---------------------------------------------------------------------------


@dataclass
class MicrosoftSide:
    running: RunningEmulator
    oauth: MicrosoftOAuth
    ca: str


@pytest.fixture
def microsoft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MicrosoftSide]:
    cert = generate_self_signed_cert(tmp_path)
    for key, value in trust_env(cert).items():
        monkeypatch.setenv(key, value)
    running = start_emulator(cert)
    emu = running.emulator
    emu.auth.delegated.idp.register_client("ms-web", "ms-secret", {MS_REDIRECT})
    emu.register_app("ms-web", "ms-secret", roles=set())
    emu.auth.delegated.idp.add_person(REP, name="Anne")
    emu.auth.delegated.idp.signed_in = REP
    emu.add_user(REP)
    oauth = MicrosoftOAuth("ms-web", "ms-secret", authority=f"{running.base_url}/organizations")
    try:
        yield MicrosoftSide(running, oauth, cert.certfile)
    finally:
        oauth.close()
        running.stop()


def _connect_ms(side: MicrosoftSide) -> str:
    url, pending = side.oauth.begin(
        redirect_uri=MS_REDIRECT, state="ms-1", connect=True, login_hint=REP
    )
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and "nonce" in query
    who, grant = side.oauth.finish(
        redirect_uri=MS_REDIRECT, pending=pending, params=follow(url, side.ca)
    )
    assert who.email == REP and grant
    return grant


async def test_microsoft_grant_reads_the_mailbox_rotates_and_needs_interaction(
    microsoft: MicrosoftSide,
) -> None:
    grant = _connect_ms(microsoft)
    connector = MicrosoftConnector(
        None,
        None,
        None,
        user_oauth=microsoft.oauth,
        graph_root=microsoft.running.graph_root,
        max_attempts=1,
    )
    saved: list[tuple[str, str]] = []

    async def save(rep_id: str, new: str) -> None:
        saved.append((rep_id, new))

    connector.set_grant_handler(save)
    cal = CalendarRef(rep_id="r1", email=REP, grant=grant)
    try:
        page = await connector.sync_page(cal, None, since=SINCE)
        assert page.events == () or page.cursor
        # Another person's mailbox is out of reach with Anne's grant.
        microsoft.running.emulator.add_user("bob@corp.test")
        with pytest.raises(AuthFailed):
            await connector.sync_page(
                CalendarRef(rep_id="r1", email="bob@corp.test", grant=grant), None, since=SINCE
            )
        # A refresh rotates the refresh token: the new cache is handed back to be stored.
        token, rotated = microsoft.oauth.access_token("r1", grant, force_refresh=True)
        assert rotated and rotated != grant and token
        delegated = microsoft.running.emulator.auth.delegated
        delegated.interaction_required.add(REP)
        with pytest.raises(DelegatedTokenError, match="interaction_required"):
            microsoft.oauth.access_token("r2", grant, force_refresh=True)
        # Graph refuses the cached token (revoked): MSAL must refresh, and cannot.
        delegated._jti.clear()
        with pytest.raises(AuthFailed, match="interaction_required"):
            await connector.sync_page(cal, None, since=SINCE)
        # A revoked grant (a new connection, then the person's sessions revoked).
        delegated.interaction_required.clear()
        fresh = CalendarRef(rep_id="r3", email=REP, grant=_connect_ms(microsoft))
        await connector.sync_page(fresh, None, since=SINCE)
        delegated.revoke_user(REP)
        with pytest.raises(AuthFailed, match="invalid_grant"):
            await connector.sync_page(fresh, None, since=SINCE)
    finally:
        await connector.aclose()


def test_microsoft_forged_state_and_wrong_verifier_are_refused(microsoft: MicrosoftSide) -> None:
    url, pending = microsoft.oauth.begin(
        redirect_uri=MS_REDIRECT, state="ms-2", connect=True, login_hint=None
    )
    params = follow(url, microsoft.ca)
    with pytest.raises(AuthRefused, match="does not belong"):
        microsoft.oauth.finish(
            redirect_uri=MS_REDIRECT, pending=pending, params={**params, "state": "forged"}
        )
    kept = json.loads(pending)
    kept["flow"]["code_verifier"] = "y" * 64
    with pytest.raises(AuthRefused, match="invalid_grant"):
        microsoft.oauth.finish(redirect_uri=MS_REDIRECT, pending=json.dumps(kept), params=params)
