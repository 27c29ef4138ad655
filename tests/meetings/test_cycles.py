"""The rule holds every time: cycles and invite rounds, through the sandbox calendar.

CONTRACT.md "The rule holds every time": a nudge comes once per meeting, kind and cycle;
a new cycle opens each time the meeting goes back to ``needs_next_step`` (also after it
was ``secured``), its ``invite_within`` counted from that moment; each new follow-up
invite, and each move of it, starts its own ``accept_within``; the same change delivered
twice still yields one nudge. The default policy: invite_within PT2H, accept_within P2D.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.db.models import Nudge, WatchChannelRow
from tests.conftest import START
from tests.helpers.calendar import REP, event, meeting_of, register

H, D, S = timedelta(hours=1), timedelta(days=1), timedelta(seconds=1)
DANA = "dana.smith@acme.com"


def about(channel, title: str = "Acme discovery") -> list[str]:  # type: ignore[no-untyped-def]
    return [o.payload["kind"] for o in channel.sent if o.payload["meeting"]["title"] == title]


async def test_secured_then_cancelled_opens_a_new_cycle_with_its_own_no_next_step(rt, sim, channel):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))  # 09:00–10:00, Monday
    await sim.run_until(START + 4 * H)
    assert about(channel) == ["no_next_step"]  # the first cycle's lapse
    fu = sb.put_event(REP, event(START + 2 * D, title="Next step"))
    sb.respond(REP, fu.event_id, DANA, "accepted")
    await sim.run_until(START + D)
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert (row.state, row.cycle) == ("secured", 0)
    # The prospect's side cancels the accepted follow-up: back to needs_next_step.
    cancelled_at = START + D
    sb.cancel_event(REP, fu.event_id)
    await sim.run_until(cancelled_at + 2 * H - S)
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert (row.state, row.cycle) == ("needs_next_step", 1)
    assert about(channel) == ["no_next_step"]  # invite_within counts from the cancellation
    await sim.run_until(cancelled_at + 2 * H)
    assert about(channel) == ["no_next_step", "no_next_step"]
    second = channel.sent[-1].payload
    assert second["cycle"] == 1 and second["window"]["closed_at"] == (
        (cancelled_at + 2 * H).isoformat()
    )
    assert second["suggested_slots"], "a new cycle's nudge suggests slots again"
    assert "The last follow-up fell through" in second["message"]
    assert "of the meeting's end" not in second["message"]
    await sim.run_until(START + 10 * D)
    assert about(channel) == ["no_next_step", "no_next_step"]  # once per cycle


async def test_declined_then_a_second_invite_gets_its_own_not_accepted(rt, sim, channel):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    await sim.run_until(START + 2 * H)
    first = sb.put_event(REP, event(START + 3 * D, title="Demo"))  # within invite_within
    await sim.run_until(START + 2 * H + 2 * D)
    assert about(channel) == ["not_accepted"]  # nobody answered the first invite
    sb.respond(REP, first.event_id, DANA, "declined")
    await sim.run_until(sim.clock.now())
    assert about(channel) == ["not_accepted", "follow_up_declined"]
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert (row.state, row.cycle) == ("needs_next_step", 1)
    # The rep invites again; nobody accepts that one either.
    invited_at = sim.clock.now() + H
    await sim.run_until(invited_at)
    second = sb.put_event(REP, event(START + 6 * D, title="Demo, take two"))
    await sim.run_until(invited_at + 2 * D - S)
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert (row.state, row.follow_up["event_id"]) == ("invited", second.event_id)
    assert about(channel) == ["not_accepted", "follow_up_declined"]
    await sim.run_until(invited_at + 2 * D)
    assert about(channel) == ["not_accepted", "follow_up_declined", "not_accepted"]
    assert channel.sent[-1].payload["cycle"] == 1
    await sim.run_until(START + 12 * D)
    assert about(channel) == ["not_accepted", "follow_up_declined", "not_accepted"]


async def test_a_move_of_the_follow_up_starts_its_own_accept_within(rt, sim, channel):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    await sim.run_until(START + 2 * H)
    fu = sb.put_event(REP, event(START + 3 * D, title="Demo"))
    await sim.run_until(START + 2 * H + 2 * D)
    assert about(channel) == ["not_accepted"]
    moved_at = sim.clock.now() + H
    await sim.run_until(moved_at)
    sb.move_event(REP, fu.event_id, START + 5 * D)
    await sim.run_until(moved_at + 2 * D - S)
    assert about(channel) == ["not_accepted"]
    await sim.run_until(moved_at + 2 * D)
    assert about(channel) == ["not_accepted", "not_accepted"]
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert (row.state, row.cycle, row.invite_round) == ("invited", 0, 2)


async def test_replays_of_the_same_change_yield_one_nudge_per_cycle(rt, sim, channel):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    fu = sb.put_event(REP, event(START + 2 * D, title="Next step"))
    sb.respond(REP, fu.event_id, DANA, "accepted")
    await sim.run_until(START + 3 * H)
    sb.cancel_event(REP, fu.event_id)
    ch = await rt.db.run(lambda s: s.scalars(select(WatchChannelRow)).one())
    for n in range(3):  # the cancellation's notification, replayed
        await sb.redeliver(ch.channel_id, ch.token, 500 + n)
    await sim.run_until(sim.clock.now())
    # The same cancelled event listed again (a full resync) changes nothing either.
    sb.cancel_event(REP, fu.event_id)
    await sim.run_until(START + 10 * D)
    row = await meeting_of(rt, rep["id"], m.event_id)
    assert (row.state, row.cycle) == ("needs_next_step", 1)
    assert about(channel) == ["no_next_step"]
    nudges = await rt.db.run(lambda s: list(s.scalars(select(Nudge))))
    assert [(n.kind, n.cycle, n.round) for n in nudges if n.cycle is not None] == [
        ("no_next_step", 1, 0)
    ]


async def test_the_database_refuses_a_second_nudge_of_a_kind_in_a_cycle(rt, sim):
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 5 * H)
    first = await rt.db.run(
        lambda s: s.scalars(select(Nudge).where(Nudge.kind == "no_next_step")).one()
    )

    def duplicate(session, cycle: int):  # type: ignore[no-untyped-def]
        session.add(
            Nudge(
                id=f"other-{cycle}",
                dedupe_key=f"another key {cycle}",  # not the key: the columns refuse it
                kind=first.kind,
                cycle=cycle,
                round=0,
                rep_id=first.rep_id,
                meeting_id=first.meeting_id,
                payload={},
                created_at=START,
            )
        )

    with pytest.raises(IntegrityError):
        await rt.db.run(duplicate, 0)
    await rt.db.run(duplicate, 1)  # another cycle is another nudge
