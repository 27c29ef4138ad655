"""Every meeting state transition, driven through the sandbox calendar."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from connectors.base import Attendee
from tests.conftest import START
from tests.helpers.calendar import REP, event, meeting_of, register, state_of

H = timedelta(hours=1)


async def test_upcoming_then_needs_next_step_when_it_ends(rt, sim):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + 2 * H))
    await sim.run_until(START + H)
    assert await state_of(rt, rep["id"], m.event_id) == "upcoming"
    await sim.run_until(START + 3 * H)
    assert await state_of(rt, rep["id"], m.event_id) == "needs_next_step"


async def test_follow_up_makes_it_invited_then_secured_when_accepted(rt, sim):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    await sim.run_until(START + 2 * H + timedelta(minutes=30))
    fu = sb.put_event(REP, event(START + 26 * H, minutes=15, title="Next step"))
    await sim.run_until(sim.clock.now())
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert row.state == "invited"
    assert row.follow_up["event_id"] == fu.event_id
    assert row.follow_up["responses"] == {"dana.smith@acme.com": "needs_action"}
    sb.respond(REP, fu.event_id, "dana.smith@acme.com", "accepted")
    await sim.run_until(sim.clock.now())
    assert await state_of(rt, rep["id"], m.event_id) == "secured"


async def test_declined_by_every_external_attendee_goes_back_with_a_nudge(rt, sim, channel):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    fu = sb.put_event(
        REP, event(START + 30 * H, guests=("dana.smith@acme.com", "bob@acme.com"), title="Demo")
    )
    await sim.run_until(START + 3 * H)
    assert await state_of(rt, rep["id"], m.event_id) == "invited"
    sb.respond(REP, fu.event_id, "dana.smith@acme.com", "declined")
    await sim.run_until(sim.clock.now())
    assert await state_of(rt, rep["id"], m.event_id) == "invited"  # bob has not declined
    sb.respond(REP, fu.event_id, "bob@acme.com", "declined")
    await sim.run_until(sim.clock.now())
    assert await state_of(rt, rep["id"], m.event_id) == "needs_next_step"
    assert channel.kinds() == ["follow_up_declined"]


async def test_cancelled_follow_up_goes_back_to_needs_next_step(rt, sim):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    fu = sb.put_event(REP, event(START + 30 * H))
    await sim.run_until(START + 3 * H)
    assert await state_of(rt, rep["id"], m.event_id) == "invited"
    sb.cancel_event(REP, fu.event_id)
    await sim.run_until(sim.clock.now())
    assert await state_of(rt, rep["id"], m.event_id) == "needs_next_step"


async def test_follow_up_moved_past_the_horizon_no_longer_counts(rt, sim):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    fu = sb.put_event(REP, event(START + 30 * H))
    await sim.run_until(START + 3 * H)
    assert await state_of(rt, rep["id"], m.event_id) == "invited"
    sb.move_event(REP, fu.event_id, START + timedelta(days=20))
    await sim.run_until(sim.clock.now())
    assert await state_of(rt, rep["id"], m.event_id) == "needs_next_step"
    sb.move_event(REP, fu.event_id, START + timedelta(days=3))
    await sim.run_until(sim.clock.now())
    assert await state_of(rt, rep["id"], m.event_id) == "invited"


async def test_waived_meeting_stays_waived_and_never_nudges(rt, sim, channel):
    from app.meetings.service import waive

    rep = await register(rt)
    m = rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + H)
    row = await meeting_of(rt, rep["id"], m.event_id)
    await rt.db.run(waive, rt, row.id, "partner deal, no follow-up")
    await sim.run_until(START + timedelta(days=10))
    assert await state_of(rt, rep["id"], m.event_id) == "waived"
    assert channel.sent == []


async def test_what_is_not_a_prospect_meeting(rt, sim):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    t = START + H
    cases = {
        "internal": event(t, guests=("bob@seller.io",)),
        "internal_subdomain": event(t, guests=("bob@eu.seller.io",)),
        "room_only": event(t, guests=("room-1@resource.calendar.google.com",)),
        "flagged_resource": replace(
            event(t, guests=()),
            attendees=(
                Attendee(email=REP, response="accepted"),
                Attendee(email="projector@acme.com", is_resource=True),
            ),
        ),
        "rep_declined": replace(event(t), rep_response="declined"),
        "all_externals_declined": event(t, guests={"dana.smith@acme.com": "declined"}),
        "all_day": replace(event(t, minutes=24 * 60), all_day=True),
        "out_of_office": replace(event(t), event_type="out_of_office"),
        "focus_time": replace(event(t), event_type="focus_time"),
    }
    ids = {name: sb.put_event(REP, ev).event_id for name, ev in cases.items()}
    cancelled = sb.put_event(REP, event(t))
    sb.cancel_event(REP, cancelled.event_id)
    ids["cancelled"] = cancelled.event_id
    await sim.run_until(START + 2 * H)
    for name, eid in ids.items():
        assert await meeting_of(rt, rep["id"], eid) is None, name
    # ...while one external person, even among colleagues and rooms, makes it one.
    mixed = sb.put_event(
        REP,
        event(
            t,
            guests=("bob@seller.io", "room-1@resource.calendar.google.com", "Dana.Smith@ACME.com"),
        ),
    )
    await sim.run_until(sim.clock.now())
    row = await meeting_of(rt, rep["id"], mixed.event_id)
    assert row.account_domain == "acme.com"
    assert row.external_attendees == ["dana.smith@acme.com"]


async def test_free_mail_prospect_is_the_person_not_the_domain(rt, sim):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H, guests=("jane.doe@gmail.com",)))
    sb.put_event(REP, event(START + 30 * H, guests=("someone.else@gmail.com",)))
    await sim.run_until(START + 3 * H)
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert row.account_domain == "jane.doe@gmail.com"
    assert row.state == "needs_next_step"  # another gmail user is not a follow-up
    sb.put_event(REP, event(START + 40 * H, guests=("JANE.DOE@gmail.com",)))
    await sim.run_until(sim.clock.now())
    assert await state_of(rt, rep["id"], m.event_id) == "invited"


async def test_each_recurring_instance_is_a_meeting_and_the_next_is_its_follow_up(rt, sim):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    weekly = [
        sb.put_event(
            REP,
            event(
                START + H + timedelta(days=7 * i),
                event_id=f"weekly_{i}",
                recurring_event_id="weekly",
                guests={"dana.smith@acme.com": "accepted"},
            ),
        )
        for i in range(3)
    ]
    await sim.run_until(START + timedelta(days=15))
    assert await state_of(rt, rep["id"], weekly[0].event_id) == "secured"
    assert (await meeting_of(rt, rep["id"], weekly[0].event_id)).follow_up["event_id"] == "weekly_1"
    assert await state_of(rt, rep["id"], weekly[1].event_id) == "secured"
    assert await state_of(rt, rep["id"], weekly[2].event_id) == "needs_next_step"


async def test_registration_tracks_recent_meetings_without_nudging_for_closed_windows(
    rt, sim, channel, clock
):
    sb = rt.providers["sandbox"]
    old = sb.put_event(REP, event(START - timedelta(days=3)))  # window closed long ago
    recent = sb.put_event(
        REP, event(START - timedelta(minutes=90), guests=("joe@globex.com",), title="Globex intro")
    )  # window closes in 30 min
    ancient = sb.put_event(REP, event(START - timedelta(days=30)))  # beyond the horizon
    rep = await register(rt)
    assert await state_of(rt, rep["id"], old.event_id) == "needs_next_step"
    assert await state_of(rt, rep["id"], recent.event_id) == "needs_next_step"
    assert await meeting_of(rt, rep["id"], ancient.event_id) is None
    await sim.run_until(START + timedelta(days=2))
    assert [o.payload["meeting"]["title"] for o in channel.sent] == ["Globex intro"]
    assert channel.sent[0].payload["meeting"]["start"] == recent.start.isoformat()


async def test_a_later_meeting_of_another_account_is_not_a_follow_up(rt, sim):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    sb.put_event(REP, event(START + 30 * H, guests=("joe@globex.com",)))
    await sim.run_until(START + 3 * H)
    assert await state_of(rt, rep["id"], m.event_id) == "needs_next_step"
