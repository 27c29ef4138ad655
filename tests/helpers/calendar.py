"""Building sandbox calendars for tests: meetings as a rep's calendar shows them."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from connectors.base import Attendee, CalendarEvent

REP = "anne@seller.io"
_ids = itertools.count(1)


def event(
    start: datetime,
    *,
    minutes: int = 60,
    guests: dict[str, str] | tuple[str, ...] = ("dana.smith@acme.com",),
    rep: str = REP,
    title: str = "Acme discovery",
    event_id: str | None = None,
    **kw: object,
) -> CalendarEvent:
    """An event organised by the rep with ``guests`` ({email: response} or e-mails)."""
    if not isinstance(guests, dict):
        guests = {g: "needs_action" for g in guests}
    attendees = (
        Attendee(email=rep, response="accepted", is_organizer=True),
        *(Attendee(email=e, response=r) for e, r in guests.items()),  # type: ignore[arg-type]
    )
    return CalendarEvent(
        event_id=event_id or f"ev{next(_ids)}",
        title=title,
        start=start,
        end=start + timedelta(minutes=minutes),
        organizer_email=rep,
        attendees=attendees,
        **kw,  # type: ignore[arg-type]
    )


async def register(rt, email: str = REP, **kw: object) -> dict:  # type: ignore[no-untyped-def]
    """Register a sandbox rep through the same service the API uses."""
    from app.reps import service
    from app.reps.schemas import RepIn

    body = {"email": email, "provider": "sandbox", "timezone": "Europe/Paris", **kw}
    return (await service.register(rt, RepIn(**body))).model_dump()


async def meeting_of(rt, rep_id: str, event_id: str):  # type: ignore[no-untyped-def]
    """The meeting row of an event (None when the event is not a prospect meeting)."""
    from app.db.models import Meeting
    from app.meetings.service import meeting_id

    return await rt.db.run(lambda s: s.get(Meeting, meeting_id(rep_id, event_id)))


async def state_of(rt, rep_id: str, event_id: str) -> str | None:  # type: ignore[no-untyped-def]
    m = await meeting_of(rt, rep_id, event_id)
    return None if m is None else m.state
