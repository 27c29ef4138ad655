"""A meeting with attendees from several external accounts is tracked for each account
(CONTRACT.md "The rule holds every time"): its own state, follow-up and nudges. The
account tracked first keeps the meeting's plain id, so a single-account meeting's id never
changes when another company joins.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from app.meetings.service import meeting_id
from connectors.base import Attendee
from tests.conftest import START
from tests.helpers.calendar import REP, event, meeting_of, register

H, D = timedelta(hours=1), timedelta(days=1)
DANA, LEE = "dana.smith@acme.com", "lee.wong@acme.com"
PIA = "pia.berg@globex.com"


async def rows_of(rt, rep_id: str, event_id: str) -> dict:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from app.db.models import Meeting

    rows = await rt.db.run(
        lambda s: list(
            s.scalars(select(Meeting).where(Meeting.rep_id == rep_id, Meeting.event_id == event_id))
        )
    )
    return {m.account_domain: m for m in rows}


async def test_two_companies_in_one_meeting_are_two_meetings(rt, sim, channel):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H, guests=(DANA, LEE, PIA), title="Joint workshop"))
    await sim.run_until(START + 2 * H + 30 * timedelta(minutes=1))
    rows = await rows_of(rt, rep["id"], m.event_id)
    assert sorted(rows) == ["acme.com", "globex.com"]
    assert rows["acme.com"].id == meeting_id(rep["id"], m.event_id)  # the larger party
    assert rows["globex.com"].id == meeting_id(rep["id"], m.event_id, "globex.com")
    assert rows["acme.com"].external_attendees == [DANA, LEE]
    assert rows["globex.com"].external_attendees == [PIA]
    # Acme books its follow-up and accepts; Globex gets none.
    fu = sb.put_event(REP, event(START + 2 * D, guests={DANA: "accepted"}, title="Acme next"))
    await sim.run_until(START + 5 * H)
    rows = await rows_of(rt, rep["id"], m.event_id)
    assert (rows["acme.com"].state, rows["globex.com"].state) == ("secured", "needs_next_step")
    assert rows["acme.com"].follow_up["event_id"] == fu.event_id
    assert rows["globex.com"].follow_up is None
    about = [o.payload for o in channel.sent if o.payload["meeting"]["title"] == "Joint workshop"]
    assert [(p["kind"], p["meeting"]["account_domain"]) for p in about] == [
        ("no_next_step", "globex.com")
    ]
    assert about[0]["draft_invite"]["attendees"] == [PIA]
    assert about[0]["meeting"]["external_attendees"] == [PIA]
    # Globex's own follow-up makes its meeting invited; Acme's stays secured.
    sb.put_event(REP, event(START + 3 * D, guests=(PIA,), title="Globex next"))
    await sim.run_until(sim.clock.now())
    rows = await rows_of(rt, rep["id"], m.event_id)
    assert (rows["acme.com"].state, rows["globex.com"].state) == ("secured", "invited")


async def test_a_company_joining_keeps_the_meeting_id_and_state_of_the_first(rt, sim, channel):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H, guests=(PIA,), title="Globex intro"))
    await sim.run_until(START + 5 * H)
    first = await meeting_of(rt, rep["id"], m.event_id)
    assert (first.account_domain, first.state) == ("globex.com", "needs_next_step")
    assert channel.kinds() == ["no_next_step"]
    # Two people of Acme are added later (more than Globex): Globex keeps its meeting.
    joined = replace(
        m,
        attendees=(*m.attendees, Attendee(email=DANA), Attendee(email=LEE)),
    )
    sb.put_event(REP, joined)
    await sim.run_until(sim.clock.now())
    rows = await rows_of(rt, rep["id"], m.event_id)
    assert rows["globex.com"].id == first.id
    assert rows["globex.com"].state == "needs_next_step"
    assert rows["acme.com"].id == meeting_id(rep["id"], m.event_id, "acme.com")
    await sim.run_until(START + 10 * D)
    assert channel.kinds() == ["no_next_step", "no_next_step"]  # one for each company


async def test_a_company_whose_people_all_declined_is_not_tracked(rt, sim):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H, guests=(DANA, PIA)))
    await sim.run_until(START + 30 * timedelta(minutes=1))
    assert sorted(await rows_of(rt, rep["id"], m.event_id)) == ["acme.com", "globex.com"]
    sb.respond(REP, m.event_id, PIA, "declined")
    await sim.run_until(sim.clock.now())
    rows = await rows_of(rt, rep["id"], m.event_id)
    assert sorted(rows) == ["acme.com"]
    assert rows["acme.com"].id == meeting_id(rep["id"], m.event_id)
