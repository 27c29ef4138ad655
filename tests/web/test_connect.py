"""Reps connect their own calendars; people sign in — the whole service in-process, on
SQLite and PostgreSQL, against the Google and Microsoft identity emulators over HTTPS."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from sqlalchemy import text

from app.sync.service import sync_calendar
from tests.web.flows import (
    ADA,
    ANNE,
    BOB,
    MALLORY,
    MAX,
    MIA,
    PUBLIC,
    Stack,
    connect,
    csrf_of,
    register,
    rep_row,
    sign_in,
)

# --- connecting ------------------------------------------------------------------------------


async def test_a_rep_connects_a_google_calendar_and_is_synced_and_watched(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rep = await register(stack, ANNE)
    assert rep["status"] == "pending_connection" and rep["auth"] == "user"
    assert rep["connect_url"].startswith(f"{PUBLIC}/connect/")
    assert stack.google.requests_for("events.list") == []  # nothing synced before consent

    stack.google.oauth.idp.signed_in = ANNE
    async with stack.browser() as browser:
        back = await connect(stack, browser, rep)
        assert back.status_code == 303 and back.headers["location"] == f"/reps/{rep['id']}"
        cookie = back.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
        page = await browser.get(f"/reps/{rep['id']}")
        assert page.status_code == 200 and "connected" in page.text

    row = await rep_row(stack, rep["id"])
    assert row["status"] == "active", row
    assert len(row["calendar"]["watch"]) == 1 and row["calendar"]["synced_at"]
    assert stack.google.requests_for("events.list")[0].subject == ANNE

    refresh_tokens = list(stack.google.oauth.idp.grants)
    assert len(refresh_tokens) == 1
    with stack.rt.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT oauth_grant FROM reps")).scalar_one()
        dump = " ".join(str(v) for v in conn.execute(text("SELECT * FROM reps")).one())
    assert stored.startswith("v1.") and refresh_tokens[0] not in dump  # encrypted at rest
    assert refresh_tokens[0] not in json.dumps(row) and "grant" not in json.dumps(row)
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert refresh_tokens[0] not in logged
    assert not any(code in logged for code in stack.google.oauth.idp.codes)


async def test_replayed_forged_or_foreign_callbacks_are_refused_and_store_nothing(
    stack: Stack,
) -> None:
    rep = await register(stack, ANNE)
    stack.google.oauth.idp.signed_in = ANNE
    async with stack.browser() as browser, stack.browser() as other:
        page = await browser.get(rep["connect_url"].removeprefix(PUBLIC))
        start = await browser.post(
            rep["connect_url"].removeprefix(PUBLIC), data={"csrf": csrf_of(page.text)}
        )
        callback = stack.idp_answer(start.headers["location"])
        # Opened in another browser (login CSRF): refused; the flow is spent.
        foreign = await other.get(callback)
        assert foreign.status_code == 400 and "another browser" in foreign.text
        replay = await browser.get(callback)
        assert replay.status_code == 400 and "already used" in replay.text
        forged = await browser.get("/auth/google/callback?code=abc&state=forged-state")
        assert forged.status_code == 400
        assert "nextstep_session" not in str(forged.headers.get("set-cookie"))
    row = await rep_row(stack, rep["id"])
    assert row["status"] == "pending_connection"
    with stack.rt.db.engine.connect() as conn:
        assert conn.execute(text("SELECT oauth_grant FROM reps")).scalar_one() is None


async def test_consent_from_another_account_is_refused(stack: Stack) -> None:
    rep = await register(stack, ANNE)
    stack.google.oauth.idp.signed_in = MALLORY  # the browser is signed in to another account
    async with stack.browser() as browser:
        back = await connect(stack, browser, rep)
    assert back.status_code == 400 and "mallory@seller.io" in back.text
    assert (await rep_row(stack, rep["id"]))["status"] == "pending_connection"


async def test_a_revoked_grant_marks_the_rep_auth_failed_and_reconnecting_heals_it(
    stack: Stack,
) -> None:
    rep = await register(stack, ANNE, manager_email="boss@corp.test")
    stack.google.oauth.idp.signed_in = ANNE
    async with stack.browser() as browser:
        assert (await connect(stack, browser, rep)).status_code == 303
        stack.google.oauth.revoke_user(ANNE)  # the person removed NextStep's access
        await sync_calendar(stack.rt, rep["id"])
        row = await rep_row(stack, rep["id"])
        assert row["status"] == "auth_failed" and "invalid_grant" in row["status_detail"]
        assert row["connect_url"] == rep["connect_url"]  # the reconnect link
        # The manager hears of it once, with the link the rep reconnects with.
        async with stack.api() as api:
            (lost,) = (await api.get("/v1/nudges?kind=connection_lost")).json()["items"]
        assert lost["recipient"] == "boss@corp.test"
        assert lost["connect_url"] == rep["connect_url"] and rep["connect_url"] in lost["message"]
        page = await browser.get(f"/reps/{rep['id']}")
        assert "access lost" in page.text and 'id="reconnect"' in page.text
        assert (await connect(stack, browser, rep)).status_code == 303
    assert (await rep_row(stack, rep["id"]))["status"] == "active"


async def test_a_rep_connects_a_microsoft_calendar_through_msal(stack: Stack) -> None:
    rep = await register(stack, BOB, provider="microsoft")
    assert rep["status"] == "pending_connection"
    stack.ms.emulator.auth.delegated.idp.signed_in = BOB
    async with stack.browser() as browser:
        back = await connect(stack, browser, rep)
    assert back.status_code == 303, back.text
    row = await rep_row(stack, rep["id"])
    assert row["calendar"]["synced_at"], row  # read with Bob's own delegated token
    assert row["status"] != "pending_connection"
    with stack.rt.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT oauth_grant FROM reps")).scalar_one()
    assert stored.startswith("v1.") and "refresh_token" not in stored.lower()


async def test_auth_user_needs_a_configured_oauth_client(stack: Stack) -> None:
    async with stack.api() as api:
        resp = await api.post(
            "/v1/reps",
            json={"email": ANNE, "provider": "sandbox", "timezone": "UTC", "auth": "user"},
        )
        assert resp.status_code in (409, 422) and "detail" in resp.json()
        bad = await api.post(
            "/v1/reps",
            json={"email": ANNE, "provider": "google", "timezone": "UTC", "auth": "magic"},
        )
        assert bad.status_code == 422 and "auth" in bad.json()["detail"]


# --- roles -------------------------------------------------------------------------------------


async def test_every_role_sees_its_own_and_no_id_in_a_url_reaches_another_team(
    stack: Stack,
) -> None:
    anne = await register(stack, ANNE, manager_email=MIA)
    bob = await register(stack, BOB, manager_email=MAX)
    async with stack.browser() as as_anne:
        await sign_in(stack, as_anne, ANNE)
        home = await as_anne.get("/")
        assert home.headers["location"] == f"/reps/{anne['id']}"
        assert (await as_anne.get(f"/reps/{anne['id']}")).status_code == 200
        other = await as_anne.get(f"/reps/{bob['id']}")
        assert other.status_code == 404 and BOB not in other.text
        assert (await as_anne.get("/team")).status_code == 404
    async with stack.browser() as as_mia:
        await sign_in(stack, as_mia, MIA)
        board = await as_mia.get("/team")
        assert board.status_code == 200 and ANNE in board.text and BOB not in board.text
        assert (await as_mia.get(f"/reps/{anne['id']}")).status_code == 200
        assert (await as_mia.get(f"/reps/{bob['id']}")).status_code == 404
        assert (await as_mia.get("/reps/no-such-id")).status_code == 404
    async with stack.browser() as as_ada:
        await sign_in(stack, as_ada, ADA)
        board = await as_ada.get("/team")
        assert ANNE in board.text and BOB in board.text
        assert (await as_ada.get(f"/reps/{bob['id']}")).status_code == 200
    async with stack.browser() as anonymous:
        assert (await anonymous.get(f"/reps/{anne['id']}")).headers["location"] == "/signin"


async def test_a_tampered_or_foreign_session_cookie_is_no_session(stack: Stack) -> None:
    anne = await register(stack, ANNE, manager_email=MIA)
    async with stack.browser() as browser:
        await sign_in(stack, browser, BOB)  # Bob is no rep and no manager here
        value = browser.cookies.get("nextstep_session")
        assert value
        body, _, sig = value.partition(".")
        forged = json.dumps({"e": MIA, "x": 4102444800}).encode()
        browser.cookies.set(
            "nextstep_session",
            f"{base64.urlsafe_b64encode(forged).rstrip(b'=').decode()}.{sig}",
            domain="nextstep.test",
        )
        resp = await browser.get(f"/reps/{anne['id']}")
        assert resp.status_code == 303 and resp.headers["location"] == "/signin"


# --- CSRF ----------------------------------------------------------------------------------------


async def test_every_form_refuses_a_post_without_its_csrf_field(stack: Stack) -> None:
    rep = await register(stack, ANNE)
    path = rep["connect_url"].removeprefix(PUBLIC)
    async with stack.browser() as browser, stack.browser() as attacker:
        page = await browser.get(path)
        token = csrf_of(page.text)
        evil = await attacker.get("/signin")
        for target in ("/signin/google", "/signout", path):
            assert (await browser.post(target, data={})).status_code == 403
            assert (await browser.post(target, data={"csrf": "x" * 43})).status_code == 403
            # a token valid for the attacker's browser is worth nothing in the victim's
            assert (
                await browser.post(target, data={"csrf": csrf_of(evil.text)})
            ).status_code == 403
        assert (await browser.post(path, data={"csrf": token})).status_code == 303
    with stack.rt.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM oauth_states")).scalar_one() == 1


async def test_people_sign_in_with_microsoft_too(stack: Stack) -> None:
    await register(stack, ANNE, manager_email=MIA)
    stack.ms.emulator.auth.delegated.idp.signed_in = MIA
    async with stack.browser() as browser:
        page = await browser.get("/signin")
        assert "Sign in with Microsoft" in page.text and "Sign in with Google" in page.text
        start = await browser.post("/signin/microsoft", data={"csrf": csrf_of(page.text)})
        assert start.status_code == 303
        assert "code_challenge" in start.headers["location"]
        back = await browser.get(stack.idp_answer(start.headers["location"]))
        assert back.status_code == 303 and back.headers["location"] == "/"
        assert (await browser.get("/")).headers["location"] == "/team"
        board = await browser.get("/team")
        assert board.status_code == 200 and ANNE in board.text
    # Nothing of a sign-in is kept but the session cookie: no grant, no flow left.
    with stack.rt.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM oauth_states")).scalar_one() == 0
        assert conn.execute(text("SELECT oauth_grant FROM reps")).scalar_one() is None


async def test_a_refused_consent_comes_back_as_a_page_and_keeps_nothing(stack: Stack) -> None:
    rep = await register(stack, ANNE)
    stack.google.oauth.idp.signed_in = ANNE
    stack.google.oauth.idp.deny_consent = True  # "Cancel" on Google's consent screen
    async with stack.browser() as browser:
        back = await connect(stack, browser, rep)
    assert back.status_code == 400 and "access_denied" in back.text
    assert (await rep_row(stack, rep["id"]))["status"] == "pending_connection"


async def test_deleting_a_connected_rep_revokes_the_grant_at_google(stack: Stack) -> None:
    rep = await register(stack, ANNE)
    stack.google.oauth.idp.signed_in = ANNE
    async with stack.browser() as browser:
        assert (await connect(stack, browser, rep)).status_code == 303
    (grant,) = stack.google.oauth.idp.grants.values()
    async with stack.api() as api:
        assert (await api.delete(f"/v1/reps/{rep['id']}")).status_code == 204
    assert grant.revoked


async def test_bad_links_and_unknown_providers_answer_pages_never_500(stack: Stack) -> None:
    rep = await register(stack, ANNE)
    token = rep["connect_url"].rsplit("/", 1)[1]
    rep_id, _, sig = token.partition(".")
    async with stack.browser() as browser:
        for path in (
            "/connect/garbage",
            f"/connect/{rep_id}.{'A' * len(sig)}",  # forged signature
            f"/connect/{'0' * 36}.{sig}",  # another id under this signature
            "/auth/yahoo/callback?code=x&state=y",
            "/auth/google/callback",
        ):
            resp = await browser.get(path)
            assert resp.status_code in (400, 404), (path, resp.status_code)
            assert resp.headers["content-type"].startswith("text/html")
        page = await browser.get("/signin")
        unknown = await browser.post("/signin/yahoo", data={"csrf": csrf_of(page.text)})
        assert unknown.status_code == 404


async def test_a_microsoft_email_claim_set_by_another_tenant_is_not_an_identity(
    stack: Stack,
) -> None:
    """nOAuth: an account whose mutable ``email`` claim says Anne is not Anne."""
    rep = await register(stack, ANNE, provider="microsoft")
    idp = stack.ms.emulator.auth.delegated.idp
    idp.add_person(MALLORY, mail=ANNE)
    idp.signed_in = MALLORY
    async with stack.browser() as browser:
        back = await connect(stack, browser, rep)
    assert back.status_code == 400 and MALLORY in back.text
    assert (await rep_row(stack, rep["id"]))["status"] == "pending_connection"


async def test_one_browser_cannot_pile_up_sign_ins(stack: Stack) -> None:
    async with stack.browser() as browser:
        page = await browser.get("/signin")
        token = csrf_of(page.text)
        answers = [
            (await browser.post("/signin/google", data={"csrf": token})).status_code
            for _ in range(22)
        ]
    assert answers[:20] == [303] * 20 and set(answers[20:]) == {429}
    with stack.rt.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM oauth_states")).scalar_one() == 20


async def test_a_rotated_microsoft_refresh_token_is_stored_again_encrypted(stack: Stack) -> None:
    delegated = stack.ms.emulator.auth.delegated
    delegated.idp.token_lifetime = 60  # MSAL refreshes tokens this close to expiry
    rep = await register(stack, BOB, provider="microsoft")
    delegated.idp.signed_in = BOB
    async with stack.browser() as browser:
        assert (await connect(stack, browser, rep)).status_code == 303

    def stored() -> str:
        with stack.rt.db.engine.connect() as conn:
            return str(conn.execute(text("SELECT oauth_grant FROM reps")).scalar_one())

    before, issued = stored(), len(delegated.idp.grants)
    assert await sync_calendar(stack.rt, rep["id"])  # a refresh: Microsoft rotates the token
    assert len(delegated.idp.grants) > issued
    after = stored()
    assert after != before and after.startswith("v1.")
    newest = list(delegated.idp.grants)[-1]
    assert newest not in after
    assert await sync_calendar(stack.rt, rep["id"])  # and the stored grant works
