"""Events their owner marked private are busy time only: no title, no organizer, no
attendees stored; never a prospect meeting, a follow-up or account history; never named
in a nudge — but still busy for slot suggestions. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from app import providers as registry
from app.db.models import AccountHistory, Event, Meeting
from tests.conftest import START
from tests.helpers.calendar import REP, event, register
from tests.helpers.dump import dump

H, D = timedelta(hours=1), timedelta(days=1)
SECRET_TITLE = "Acme: board-level restructuring talk"
INSIDER = "ceo.private@acme.com"


async def test_a_private_event_is_busy_time_only(rt, sim, channel, database_url) -> None:
    rep = await register(rt)
    sb = registry.sandbox(rt.providers)
    meeting = event(START + H)  # Monday 09:00 UTC with dana.smith@acme.com
    sb.put_event(REP, meeting)
    # Private, with a prospect attendee, all of Tuesday's working day in both zones.
    tuesday = (START + D).replace(hour=6)
    private = event(tuesday, minutes=14 * 60, guests=(INSIDER,), title=SECRET_TITLE, private=True)
    sb.put_event(REP, private)
    await sim.run_until(START + 6 * H)

    rows = await rt.db.run(
        lambda s: s.scalars(select(Event).where(Event.rep_id == rep["id"])).all()
    )
    kept = {r.event_id: r for r in rows}
    stored = kept[private.event_id]
    assert (stored.title, stored.attendees, stored.organizer_email) == ("", [], None)
    assert (stored.start, stored.end) == (private.start, private.end)
    meetings = await rt.db.run(lambda s: s.scalars(select(Meeting.event_id)).all())
    assert meetings == [meeting.event_id]
    history = await rt.db.run(lambda s: s.scalars(select(AccountHistory.event_id)).all())
    assert private.event_id not in history

    # The other meeting's nudge: nothing of the private event, and no slot inside it.
    assert channel.kinds() == ["no_next_step"]
    payload = channel.sent[0].payload
    text = json.dumps(payload)
    assert SECRET_TITLE not in text and INSIDER not in text
    slots = payload["suggested_slots"]
    assert slots
    for slot in slots:
        start = _instant(slot["start"])
        assert not (private.start < _instant(slot["end"]) and start < private.end), slot

    backup = dump(database_url)
    assert SECRET_TITLE not in backup and INSIDER not in backup


async def test_an_event_made_private_stops_being_a_meeting(rt, sim) -> None:
    await register(rt)
    sb = registry.sandbox(rt.providers)
    meeting = event(START + 30 * H, title=SECRET_TITLE)
    sb.put_event(REP, meeting)
    await sim.settle()
    assert await rt.db.run(lambda s: s.scalars(select(Meeting.title)).all()) == [SECRET_TITLE]
    sb.put_event(
        REP, event(START + 30 * H, title=SECRET_TITLE, event_id=meeting.event_id, private=True)
    )
    await sim.settle()
    assert await rt.db.run(lambda s: s.scalars(select(Meeting.title)).all()) == []
    row = await rt.db.run(lambda s: s.scalars(select(Event)).one())
    assert row.title == "" and row.attendees == []


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)
