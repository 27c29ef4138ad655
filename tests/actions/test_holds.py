"""Tentative holds (policy ``hold: true``) over the sandbox: placed at the first slot with
no attendees, never busy for its own meeting's slots, removed when the follow-up exists,
the meeting is waived or the horizon ends, turned into the follow-up for the held slot."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from app.main import create_app
from policies.loader import parse_policies
from tests.conftest import START
from tests.helpers.calendar import REP, event

H = timedelta(hours=1)
HOLD_POLICY = """\
policies:
  - name: with-hold
    invite_within: PT2H
    accept_within: P2D
    horizon: P14D
    follow_up_duration: PT15M
    escalate_after: P1D
    hold: true
"""


@pytest.fixture
async def api(rt):
    rt.policies = parse_policies(HOLD_POLICY)
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": "Bearer test-key"}
    ) as client:
        yield client


async def _nudged(api, rt, sim, **rep):
    body = {"email": REP, "provider": "sandbox", "timezone": "Europe/Paris", **rep}
    assert (await api.post("/v1/reps", json=body)).status_code == 201
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 5 * H)
    (nudge,) = (await api.get("/v1/nudges")).json()["items"]
    return nudge


def _holds(rt):
    return [
        e
        for e in rt.providers["sandbox"].events(REP)
        if e.title.startswith("Hold:") and e.status != "cancelled"
    ]


def _path(url: str) -> str:
    return urlsplit(url).path


async def test_a_hold_is_placed_at_the_first_slot_with_no_attendees(api, rt, sim):
    nudge = await _nudged(api, rt, sim)
    (hold,) = _holds(rt)
    assert hold.title == "Hold: follow-up with acme.com"
    assert hold.attendees == () and hold.status == "tentative"
    first = nudge["suggested_slots"][0]
    assert hold.start == datetime.fromisoformat(first["start"])
    assert hold.end == datetime.fromisoformat(first["end"])
    # Not a meeting, not a follow-up: the prospect never sees it.
    meetings = (await api.get("/v1/meetings")).json()["items"]
    assert [m["title"] for m in meetings] == ["Acme discovery"]
    assert meetings[0]["state"] == "needs_next_step"


async def test_the_hold_never_blocks_its_own_meetings_slots(api, rt, sim):
    rt.policies = parse_policies(HOLD_POLICY.replace("escalate_after: P1D", "escalate_after: PT2H"))
    nudge = await _nudged(api, rt, sim, manager_email="boss@seller.io")
    (hold,) = _holds(rt)
    await sim.run_until(START + 8 * H)
    escalation = next(
        n for n in (await api.get("/v1/nudges")).json()["items"] if n["kind"] == "escalation"
    )
    assert escalation["suggested_slots"][0]["start"] == hold.start.isoformat()
    assert len(_holds(rt)) == 1, "still one hold"
    del nudge


async def test_sending_the_held_slot_turns_the_hold_into_the_follow_up(api, rt, sim):
    nudge = await _nudged(api, rt, sim)
    (hold,) = _holds(rt)
    page = await api.get(_path(nudge["actions"][0]["url"]))
    assert "tentative hold" in page.text
    r = await api.post(_path(nudge["actions"][0]["url"]))
    assert r.status_code == 200, r.text
    await sim.run_until(sim.clock.now())
    assert _holds(rt) == []
    events = {e.event_id: e for e in rt.providers["sandbox"].events(REP)}
    follow_up = events[hold.event_id]
    assert follow_up.status == "confirmed" and follow_up.title.startswith("Acme discovery")
    assert {a.email for a in follow_up.attendees} == {REP, "dana.smith@acme.com"}
    meeting = (await api.get(f"/v1/meetings/{nudge['meeting']['id']}")).json()
    assert meeting["state"] == "invited" and meeting["follow_up"]["event_id"] == hold.event_id


async def test_another_slot_replaces_the_hold(api, rt, sim):
    nudge = await _nudged(api, rt, sim)
    (hold,) = _holds(rt)
    r = await api.post(_path(nudge["actions"][1]["url"]))
    assert r.status_code == 200, r.text
    await sim.run_until(sim.clock.now())
    assert _holds(rt) == []
    meeting = (await api.get(f"/v1/meetings/{nudge['meeting']['id']}")).json()
    assert meeting["follow_up"]["event_id"] != hold.event_id
    assert meeting["follow_up"]["start"] == nudge["suggested_slots"][1]["start"]


async def test_the_hold_goes_when_the_meeting_is_waived(api, rt, sim):
    nudge = await _nudged(api, rt, sim)
    assert len(_holds(rt)) == 1
    r = await api.post(_path(nudge["actions"][-1]["url"]))
    assert r.status_code == 200
    await sim.run_until(sim.clock.now())
    assert _holds(rt) == []


async def test_the_hold_goes_when_a_follow_up_appears_any_other_way(api, rt, sim):
    nudge = await _nudged(api, rt, sim)
    assert len(_holds(rt)) == 1
    rt.providers["sandbox"].put_event(REP, event(START + 50 * H, minutes=30, title="By hand"))
    await sim.run_until(sim.clock.now() + timedelta(minutes=1))
    assert _holds(rt) == []
    del nudge


async def test_the_hold_goes_when_the_horizon_ends(api, rt, sim):
    await _nudged(api, rt, sim)
    assert len(_holds(rt)) == 1
    await sim.run_until(START + timedelta(days=15))
    assert _holds(rt) == []
