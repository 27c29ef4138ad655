"""The rep's page and the manager's board, with meetings lived through on the sandbox
calendar (manual clock) and people signed in through the Google identity emulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from app.clock import ManualClock
from app.db.models import Nudge
from app.simulation import Simulation
from tests.conftest import START
from tests.helpers.calendar import event, meeting_of
from tests.web import flows
from tests.web.flows import ANNE, BOB, MAX, MIA, Stack, csrf_of, sign_in

H = timedelta(hours=1)


@pytest.fixture
async def sandboxed(database_url: str, emulators: tuple) -> AsyncIterator[Stack]:
    async with flows.running_stack(
        database_url, emulators, clock=ManualClock(START), sandbox=True
    ) as running:
        yield running


async def _sandbox_rep(stack: Stack, email: str, manager: str) -> dict:
    async with stack.api() as api:
        resp = await api.post(
            "/v1/reps",
            json={
                "email": email,
                "provider": "sandbox",
                "timezone": "Europe/Paris",
                "manager_email": manager,
            },
        )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def _lived(stack: Stack) -> tuple[dict, dict, str, str]:
    """Anne: one meeting secured in time, one left without a next step (nudged, then
    escalated to Mia); Bob (Max's rep): one meeting without a next step."""
    sim = Simulation(stack.rt)
    anne = await _sandbox_rep(stack, ANNE, MIA)
    bob = await _sandbox_rep(stack, BOB, MAX)
    sb = stack.rt.providers["sandbox"]
    kept = sb.put_event(ANNE, event(START + H, title="Acme discovery", rep=ANNE))
    follow = sb.put_event(ANNE, event(START + 3 * H, minutes=15, title="Acme next step", rep=ANNE))
    slipped = sb.put_event(
        ANNE,
        event(START + 4 * H, title="Globex intro", rep=ANNE, guests=("li@globex.com",)),
    )
    sb.put_event(
        BOB, event(START + 2 * H, title="Initech call", rep=BOB, guests=("p@initech.com",))
    )
    await sim.run_until(START + 2 * H)
    sb.respond(ANNE, follow.event_id, "dana.smith@acme.com", "accepted")
    await sim.run_until(START + 5 * 24 * H)  # windows close, nudges, then the escalation
    assert (await meeting_of(stack.rt, anne["id"], kept.event_id)).state == "secured"
    return anne, bob, kept.event_id, slipped.event_id


async def test_the_rep_page_lists_what_needs_a_next_step_with_the_nudge_actions(
    sandboxed: Stack,
) -> None:
    stack = sandboxed
    anne, bob, _, slipped = await _lived(stack)
    m = await meeting_of(stack.rt, anne["id"], slipped)
    assert m.state == "needs_next_step"
    # The nudge carries its action links (CONTRACT v2, "From the nudge to the accepted
    # invite"); the page links to exactly those, it has no action mechanism of its own.
    send = "https://nextstep.test/a/opaque-send-token"
    with stack.rt.db.engine.begin() as conn:
        nudge_id = conn.execute(
            text("SELECT id FROM nudges WHERE meeting_id = :m AND kind = 'no_next_step'"),
            {"m": m.id},
        ).scalar_one()

    def add_actions(session):  # type: ignore[no-untyped-def]
        row = session.get(Nudge, nudge_id)
        row.payload = {
            **row.payload,
            "actions": [
                {"kind": "send_invite", "url": send, "label": "Send invite Tue 10:00"},
                {"kind": "snooze", "url": send + "-snooze", "label": "Snooze 1 day"},
                {"kind": "waive", "url": send + "-waive", "label": "No follow-up needed"},
            ],
        }

    await stack.rt.db.run(add_actions)
    async with stack.browser() as browser:
        await sign_in(stack, browser, ANNE)
        page = await browser.get(f"/reps/{anne['id']}")
    assert page.status_code == 200
    html = page.text
    assert "Globex intro" in html and "Acme discovery" not in html.split("Recent nudges")[0]
    assert f'href="{send}"' in html and 'data-kind="send_invite"' in html
    assert "Snooze 1 day" in html and "No follow-up needed" in html
    assert "no next step" in html  # recent nudges
    assert 'name="viewport"' in html and "<script" not in html
    assert page.headers["cache-control"] == "no-store"


async def test_the_board_shows_each_rep_of_the_team_with_shares_risk_and_trend(
    sandboxed: Stack,
) -> None:
    stack = sandboxed
    anne, bob, _, _ = await _lived(stack)
    # The CRM reports six silent signals about Acme: its health falls to at risk.
    when = stack.rt.clock.now().isoformat()
    async with stack.api() as api:
        for kind in ("small_talk_gone", "feature_requests_stopped", "champion_left",
                     "usage_down", "tickets_up", "invoice_late"):  # fmt: skip
            resp = await api.post(
                "/v1/accounts/acme.com/signals", json={"kind": kind, "occurred_at": when}
            )
            assert resp.status_code == 201, resp.text
    await Simulation(stack.rt).settle()
    async with stack.browser() as browser:
        await sign_in(stack, browser, MIA)
        board = await browser.get("/team")
        assert board.status_code == 200
        html = board.text
        row = re.search(r"<tr>\s*<td><a href=\"/reps/" + anne["id"] + r"\">.*?</tr>", html, re.S)
        assert row, html
        cells = [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<td>(.*?)</td>", row.group(0), re.S)
        ]
        # 30 days: of three prospect meetings (the follow-up is one too), one secured in time
        assert cells[1] == "33%"
        assert cells[2].startswith("33%") and "of 3" in cells[2]
        assert cells[3] == "2"  # Globex and the follow-up still need a next step
        assert int(cells[4]) >= 1  # the unanswered nudge went to Mia
        assert BOB not in html
        assert '<svg id="trend"' in html and "<rect" in html
        accounts = html.split("Accounts at risk")[1]
        assert "acme.com" in accounts and "at risk" in accounts
        assert "champion left" in accounts and "Reported by the CRM" in accounts
        assert "initech.com" not in accounts  # Bob's account is not Mia's team's
        # Signing out needs the form's CSRF field, and ends the session.
        out = await browser.post("/signout", data={"csrf": csrf_of(html)})
        assert out.status_code == 303
        assert (await browser.get("/team")).headers["location"] == "/signin"


async def test_a_session_ends_when_it_expires_and_a_stale_sign_in_is_refused(
    sandboxed: Stack,
) -> None:
    stack = sandboxed
    await _sandbox_rep(stack, ANNE, MIA)
    clock = stack.rt.clock
    assert isinstance(clock, ManualClock)
    async with stack.browser() as browser:
        await sign_in(stack, browser, MIA)
        assert (await browser.get("/team")).status_code == 200
        clock.set(clock.now() + timedelta(seconds=stack.rt.settings.session_seconds + 1))
        assert (await browser.get("/team")).headers["location"] == "/signin"
        # A sign-in left at the identity provider for more than ten minutes is refused.
        page = await browser.get("/signin")
        start = await browser.post("/signin/google", data={"csrf": csrf_of(page.text)})
        callback = stack.idp_answer(start.headers["location"])
        clock.set(clock.now() + timedelta(minutes=11))
        late = await browser.get(callback)
        assert late.status_code == 400 and "expired" in late.text
        assert (await browser.get("/team")).headers["location"] == "/signin"
