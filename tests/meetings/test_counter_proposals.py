"""Outlook counter-proposals through the sandbox: the attendee proposes a new time for the
follow-up (``POST /sandbox/calendars/{email}/events/{id}/responses`` with ``"proposed"``).

CONTRACT.md "The rule holds every time": ``follow_up.responses`` shows ``"proposed"``, the
rep gets ``counter_proposed`` at once with the proposed time as the first suggested slot
(saying whether it is free on the rep's calendar), a decline with a proposal gives
``counter_proposed`` and not ``follow_up_declined``.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from app.main import create_app
from tests.conftest import START
from tests.helpers.calendar import REP, event, meeting_of, register

H, D = timedelta(hours=1), timedelta(days=1)
DANA = "dana.smith@acme.com"


@pytest.fixture
async def api(rt):  # type: ignore[no-untyped-def]
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": "Bearer test-key"}
    ) as client:
        yield client


def of_kind(channel, kind: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [o.payload for o in channel.sent if o.payload["kind"] == kind]


async def test_a_proposal_through_the_sandbox_api_nudges_with_that_time_first(
    rt, sim, channel, api
):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    fu = sb.put_event(REP, event(START + 2 * D, minutes=15, title="Next step"))
    await sim.run_until(START + 3 * H)
    assert channel.kinds() == []
    proposed = START + 3 * D + 5 * H  # Thursday 14:00 Paris: free for the rep
    resp = await api.post(
        f"/sandbox/calendars/{REP}/events/{fu.event_id}/responses",
        json={
            "attendee": DANA,
            "response": "proposed",
            "proposed_start": proposed.isoformat(),
            "proposed_end": (proposed + timedelta(minutes=15)).isoformat(),
        },
    )
    assert resp.status_code == 200, resp.text
    shown = {a["email"]: a for a in resp.json()["attendees"]}[DANA]
    assert shown["response"] == "proposed"
    assert shown["proposed_start"] == proposed.isoformat()
    await sim.run_until(sim.clock.now() + timedelta(seconds=59))  # within a minute
    (nudge,) = of_kind(channel, "counter_proposed")
    assert nudge["suggested_slots"][0] == {
        "start": proposed.isoformat(),
        "end": (proposed + timedelta(minutes=15)).isoformat(),
    }
    assert nudge["proposal"] == {
        "attendee": DANA,
        "start": proposed.isoformat(),
        "end": (proposed + timedelta(minutes=15)).isoformat(),
        "free": True,
        "busy": None,
    }
    assert "free on your calendar" in nudge["message"]
    assert "Thanks for suggesting" in nudge["draft_invite"]["body"]
    got = (await api.get(f"/v1/meetings/{nudge['meeting']['id']}")).json()
    assert got["state"] == "invited"
    assert got["follow_up"]["responses"] == {DANA: "proposed"}
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert row.id == nudge["meeting"]["id"]
    # Once per cycle and round: the same proposal synced again nudges no more.
    await sim.run_until(START + 5 * D)
    assert len(of_kind(channel, "counter_proposed")) == 1


async def test_a_decline_with_a_proposal_is_counter_proposed_not_declined(rt, sim, channel):
    await register(rt)
    sb = rt.providers["sandbox"]
    sb.put_event(REP, event(START + H))
    fu = sb.put_event(REP, event(START + 2 * D, minutes=15, title="Next step"))
    # The rep is busy at the time the prospect proposes.
    proposed = START + 3 * D + 5 * H
    sb.put_event(REP, event(proposed - timedelta(minutes=30), guests=(), title="Board meeting"))
    await sim.run_until(START + 3 * H)
    sb.propose(REP, fu.event_id, DANA, proposed, proposed + timedelta(minutes=15), "declined")
    await sim.run_until(sim.clock.now())
    assert of_kind(channel, "follow_up_declined") == []
    (nudge,) = of_kind(channel, "counter_proposed")
    assert nudge["suggested_slots"][0]["start"] == proposed.isoformat()
    assert nudge["proposal"]["free"] is False
    assert nudge["proposal"]["busy"] == {
        "start": (proposed - timedelta(minutes=30)).isoformat(),
        "end": (proposed + timedelta(minutes=30)).isoformat(),
    }
    assert "busy on your calendar" in nudge["message"]
    assert len(nudge["suggested_slots"]) > 1, "free alternatives follow the proposal"
    assert "already committed" in nudge["draft_invite"]["body"]


async def test_a_move_to_the_proposed_time_is_a_new_round(rt, sim, channel):
    rep = await register(rt, locale="fr")
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    fu = sb.put_event(REP, event(START + 2 * D, minutes=15, title="Next step"))
    await sim.run_until(START + 3 * H)
    proposed = START + 3 * D + 5 * H
    sb.propose(REP, fu.event_id, DANA, proposed, proposed + timedelta(minutes=15))
    await sim.run_until(sim.clock.now())
    (nudge,) = of_kind(channel, "counter_proposed")
    assert "libre dans votre agenda" in nudge["message"]
    sb.move_event(REP, fu.event_id, proposed)  # the rep takes the proposal
    await sim.run_until(sim.clock.now())
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert (row.state, row.invite_round) == ("invited", 2)
    assert row.follow_up["responses"] == {DANA: "tentative"}
    sb.respond(REP, fu.event_id, DANA, "accepted")
    await sim.run_until(START + 6 * D)
    assert (await meeting_of(rt, rep["id"], m.event_id)).state == "secured"
    assert len(of_kind(channel, "counter_proposed")) == 1


async def test_the_sandbox_refuses_a_proposal_without_its_time(rt, sim, api):
    await register(rt)
    sb = rt.providers["sandbox"]
    fu = sb.put_event(REP, event(START + 2 * D))
    for body, field in (
        ({"attendee": DANA, "response": "proposed"}, "proposed_start"),
        (
            {
                "attendee": DANA,
                "response": "proposed",
                "proposed_start": (START + H).isoformat(),
                "proposed_end": START.isoformat(),
            },
            "proposed_end",
        ),
    ):
        resp = await api.post(f"/sandbox/calendars/{REP}/events/{fu.event_id}/responses", json=body)
        assert resp.status_code == 422, resp.text
        assert field in resp.text
    assert sb.calendar(REP).events[fu.event_id].attendees[1].proposed is False


async def test_an_unanswered_counter_proposal_escalates_to_the_manager(rt, sim, channel):
    await register(rt, manager_email="boss@seller.io")
    sb = rt.providers["sandbox"]
    sb.put_event(REP, event(START + H))
    # Invited before registration: its accept_within closed before tracking began.
    fu = sb.put_event(
        REP, event(START + 5 * D, minutes=15, title="Next step", created=START - 3 * D)
    )
    await sim.run_until(START + 3 * H)
    proposed = START + 6 * D + 5 * H
    sb.propose(REP, fu.event_id, DANA, proposed, proposed + timedelta(minutes=15))
    await sim.run_until(START + 4 * H)
    assert channel.kinds() == ["counter_proposed"]
    await sim.run_until(START + 3 * H + 3 * D + timedelta(minutes=1))  # escalate_after P3D
    assert channel.kinds() == ["counter_proposed", "escalation"]
    escalation = channel.sent[1].payload
    assert escalation["recipient"] == "boss@seller.io"
    assert escalation["suggested_slots"][0]["start"] == proposed.isoformat()
    assert "proposed a new time" in escalation["message"]
