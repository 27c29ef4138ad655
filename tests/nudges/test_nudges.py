"""Every nudge kind, when it comes, what it carries, and that it comes once."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.accounts.schemas import AccountIn
from app.accounts.service import upsert as put_account
from app.db.models import Delivery, Meeting, Nudge
from app.meetings.service import process_meeting, snooze, waive
from policies.vocabulary import EVENT_TYPES
from tests.conftest import START
from tests.helpers.calendar import REP, event, meeting_of, register

H = timedelta(hours=1)
PAYLOAD_KEYS = {
    "id",
    "kind",
    "created_at",
    "rep",
    "meeting",
    "suggested_slots",
    "draft_invite",
    "message",
}

NUDGES = Nudge.kind.not_in(EVENT_TYPES)  # the CRM's events share the table


async def test_no_next_step_comes_when_invite_within_closes_not_before(rt, sim, channel):
    rep = await register(rt)
    m = rt.providers["sandbox"].put_event(REP, event(START + H))
    closes = START + 2 * H + 2 * H  # meeting ends at +2h, invite_within PT2H
    await sim.run_until(closes - timedelta(seconds=1))
    assert channel.sent == []
    await sim.run_until(closes)
    assert channel.kinds() == ["no_next_step"]
    payload = channel.sent[0].payload
    assert PAYLOAD_KEYS <= set(payload)
    assert payload["rep"]["id"] == rep["id"] and payload["rep"]["email"] == REP
    assert payload["meeting"]["external_attendees"] == ["dana.smith@acme.com"]
    assert payload["meeting"]["start"] == m.start.isoformat()
    assert payload["draft_invite"]["attendees"] == ["dana.smith@acme.com"]
    assert "Acme discovery" in payload["message"]
    await sim.run_until(START + timedelta(days=1))
    assert channel.kinds() == ["no_next_step"]  # once


async def test_suggested_slots_are_free_inside_both_working_hours_and_the_horizon(rt, sim, channel):
    await register(rt, timezone="Europe/Paris")
    await rt.db.run(put_account, rt, "acme.com", AccountIn(timezone="America/New_York"))
    sb = rt.providers["sandbox"]
    sb.put_event(REP, event(START + H))  # Mon 09:00–10:00 UTC
    # Tuesday 15:00–16:00 Paris is taken: the first overlap hour must be skipped.
    sb.put_event(REP, event(START + 30 * H, guests=("bob@seller.io",), title="Internal"))
    await sim.run_until(START + timedelta(hours=6))
    slots = channel.sent[0].payload["suggested_slots"]
    assert slots, "a slot exists: Paris 15:00–18:00 overlaps New York 09:00–12:00"
    paris, ny = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
    from datetime import datetime

    busy_start, busy_end = START + 30 * H, START + 31 * H
    for s in slots:
        start, end = datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])
        assert end - start == timedelta(minutes=15)
        assert START + 2 * H < start <= START + 2 * H + timedelta(days=14)
        for zone, last in ((paris, "18:00"), (ny, "17:00")):
            local_start, local_end = start.astimezone(zone), end.astimezone(zone)
            assert local_start.weekday() < 5
            assert "09:00" <= local_start.strftime("%H:%M") and local_end.strftime("%H:%M") <= last
        assert end <= busy_start or start >= busy_end
    first = datetime.fromisoformat(slots[0]["start"]).astimezone(paris)
    assert (first.strftime("%a %H:%M")) == "Tue 16:00"
    assert "EST" in channel.sent[0].payload["draft_invite"]["body"]


async def test_not_accepted_counts_from_when_the_invite_appeared(rt, sim, channel):
    await register(rt)
    sb = rt.providers["sandbox"]
    sb.put_event(REP, event(START + H))
    await sim.run_until(START + 3 * H)  # within invite_within: invite sent at +3h
    sb.put_event(REP, event(START + 50 * H, title="Proposal review"))
    await sim.run_until(START + 3 * H + timedelta(days=2) - timedelta(seconds=1))
    assert channel.kinds() == []
    await sim.run_until(START + 3 * H + timedelta(days=2))
    assert channel.kinds() == ["not_accepted"]


async def test_escalation_goes_to_the_manager_when_the_nudge_is_ignored(rt, sim, channel):
    await register(rt, manager_email="boss@seller.io")
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 4 * H)
    assert channel.kinds() == ["no_next_step"]
    await sim.run_until(START + 4 * H + timedelta(days=3) - timedelta(seconds=1))
    assert channel.kinds() == ["no_next_step"]
    await sim.run_until(START + 4 * H + timedelta(days=3))
    assert channel.kinds() == ["no_next_step", "escalation"]
    esc = channel.sent[1].payload
    assert esc["recipient"] == "boss@seller.io"
    assert esc["rep"]["email"] == REP
    await sim.run_until(START + timedelta(days=12))
    assert channel.kinds() == ["no_next_step", "escalation"]


async def test_no_escalation_when_the_rep_acted_or_has_no_manager(rt, sim, channel):
    await register(rt, manager_email="boss@seller.io")
    await register(rt, email="paul@seller.io")
    sb = rt.providers["sandbox"]
    sb.put_event(REP, event(START + H))
    sb.put_event("paul@seller.io", event(START + H, rep="paul@seller.io"))
    await sim.run_until(START + 4 * H)
    assert channel.kinds() == ["no_next_step", "no_next_step"]
    # Anne answers her nudge with an invite (that call is a meeting of its own, later).
    fu = sb.put_event(REP, event(START + 30 * H, title="Proposal review"))
    await sim.run_until(START + 2 * H + timedelta(days=1))
    sb.respond(REP, fu.event_id, "dana.smith@acme.com", "accepted")
    await sim.run_until(START + timedelta(days=10))
    about_discovery = [
        (o.payload["kind"], o.payload["rep"]["email"])
        for o in channel.sent
        if o.payload["meeting"]["title"] == "Acme discovery"
    ]
    assert sorted(about_discovery) == [("no_next_step", REP), ("no_next_step", "paul@seller.io")]


async def test_snooze_defers_the_nudge_to_its_end(rt, sim, channel):
    rep = await register(rt)
    m = rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 3 * H)
    row = await meeting_of(rt, rep["id"], m.event_id)
    until = START + timedelta(days=1)
    await rt.db.run(snooze, rt, row.id, until)
    await sim.run_until(until - timedelta(seconds=1))
    assert channel.sent == []
    await sim.run_until(until)
    assert channel.kinds() == ["no_next_step"]


async def test_waive_before_the_window_closes_means_no_nudge(rt, sim, channel):
    rep = await register(rt)
    m = rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 3 * H)
    row = await meeting_of(rt, rep["id"], m.event_id)
    await rt.db.run(waive, rt, row.id, "they bought already")
    await sim.run_until(START + timedelta(days=5))
    assert channel.sent == []


async def test_the_same_change_delivered_twice_yields_one_nudge(rt, sim, channel):
    from app.db.models import WatchChannelRow

    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    await sim.run_until(START + 3 * H)
    fu = sb.put_event(REP, event(START + 30 * H))
    sb.respond(REP, fu.event_id, "dana.smith@acme.com", "declined")
    ch = await rt.db.run(lambda s: s.scalars(select(WatchChannelRow)).one())
    for _ in range(3):  # a notification replayed, as providers do
        await sb.redeliver(ch.channel_id, ch.token, 99)
    await sim.run_until(sim.clock.now())
    assert channel.kinds() == ["follow_up_declined"]
    # Processing the same meeting concurrently, twice, still makes one nudge.
    row = await meeting_of(rt, rep["id"], m.event_id)
    await rt.db.run(lambda s: s.get(Meeting, row.id).__setattr__("due_at", sim.clock.now()))
    await asyncio.gather(process_meeting(rt, row.id), process_meeting(rt, row.id))
    count = await rt.db.run(
        lambda s: s.scalar(select(func.count()).select_from(Nudge).where(NUDGES))
    )
    assert count == 1


async def test_the_database_refuses_a_second_nudge_of_a_kind(rt, sim):
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 5 * H)
    first = await rt.db.run(lambda s: s.scalars(select(Nudge).where(NUDGES)).one())

    def duplicate(session):  # type: ignore[no-untyped-def]
        session.add(
            Nudge(
                id="other",
                dedupe_key=first.dedupe_key,
                kind=first.kind,
                rep_id=first.rep_id,
                meeting_id=first.meeting_id,
                payload={},
                created_at=START,
            )
        )

    with pytest.raises(IntegrityError):
        await rt.db.run(duplicate)


async def test_failed_deliveries_retry_with_backoff_and_the_same_id(rt, sim, channel):
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    channel.fail_next = 2
    await sim.run_until(START + 4 * H)
    assert len(channel.sent) == 0
    await sim.run_until(START + 5 * H)
    assert channel.kinds() == ["no_next_step"]
    row = await rt.db.run(lambda s: s.scalars(select(Delivery)).one())
    assert row.attempts == 3 and row.status == "delivered"
    nudge = await rt.db.run(lambda s: s.scalars(select(Nudge).where(NUDGES)).one())
    assert channel.sent[0].nudge_id == nudge.id == channel.sent[0].payload["id"]


async def test_outbox_survives_a_crash_between_decision_and_delivery(rt, sim, channel, clock):
    """A replica decided and wrote the outbox row, claimed it, then died before sending."""
    from app.meetings.service import process_due

    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 4 * H - timedelta(seconds=1))
    clock.set(START + 4 * H)
    await process_due(rt)  # the decision and its outbox row, committed together
    nudge = await rt.db.run(lambda s: s.scalars(select(Nudge).where(NUDGES)).one())
    assert channel.sent == []

    def crashed_mid_send(session):  # type: ignore[no-untyped-def]
        d = session.scalars(select(Delivery)).one()
        d.lease_owner, d.lease_until = "dead-replica", clock.now() + timedelta(seconds=60)

    await rt.db.run(crashed_mid_send)
    rt.instance_id = "new-replica"
    await sim.run_until(clock.now() + timedelta(seconds=59))
    assert channel.sent == []  # the dead replica's lease still holds
    await sim.run_until(clock.now() + timedelta(seconds=2))
    assert [o.nudge_id for o in channel.sent] == [nudge.id]


async def test_nudges_only_for_windows_closing_after_registration(rt, sim, channel):
    sb = rt.providers["sandbox"]
    sb.put_event(REP, event(START - timedelta(hours=5)))  # invite window closed at -2h
    await register(rt)
    await sim.run_until(START + timedelta(days=1))
    assert channel.sent == []


def test_payload_times_are_iso_with_offset():
    from app.nudges.service import meeting_json

    m = Meeting(
        id="x",
        title="t",
        start=START,
        end=START + H,
        account_domain="acme.com",
        external_attendees=["a@acme.com"],
    )
    out = meeting_json(m)
    assert out["start"].endswith("+00:00") and START.tzinfo is UTC
