"""All SQL about calendar events and meetings, and how a stored event reads as facts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db.leases import insert_ignore, next_time
from app.db.models import Account, ActionResult, Calendar, Event, Hold, Meeting, Rep
from connectors.base import Attendee, CalendarEvent
from policies.classify import EVENT_FIELDS, EventFacts
from policies.vocabulary import MeetingState


def facts_of(row: Event) -> EventFacts:
    """The stored event as the rules read it."""
    return EventFacts(
        **{name: getattr(row, name) for name in EVENT_FIELDS},
        attendees=tuple(
            Attendee(
                email=a["email"],
                response=a.get("response", "needs_action"),
                is_resource=a.get("is_resource", False),
                is_organizer=a.get("is_organizer", False),
                proposed_start=_time(a.get("proposed_start")),
                proposed_end=_time(a.get("proposed_end")),
            )
            for a in row.attendees
        ),
        seen_at=row.created or row.first_seen_at,
        series_id=row.recurring_event_id,
    )


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def rep(session: Session, rep_id: str) -> Rep | None:
    return session.get(Rep, rep_id)


def meeting(session: Session, meeting_id: str) -> Meeting | None:
    return session.get(Meeting, meeting_id)


def add_meeting(
    session: Session,
    *,
    meeting_id: str,
    rep_id: str,
    event_id: str,
    policy: str,
    tracked_from: datetime,
    now: datetime,
) -> Meeting:
    """A new meeting, ``upcoming`` until evaluated."""
    row = Meeting(
        id=meeting_id,
        rep_id=rep_id,
        event_id=event_id,
        state=MeetingState.UPCOMING,
        policy=policy,
        tracked_from=tracked_from,
        updated_at=now,
    )
    session.add(row)
    return row


def flush(session: Session) -> None:
    """Send pending changes, so the queries that follow see them."""
    session.flush()


def refresh(session: Session, row: Meeting) -> None:
    session.refresh(row)


def events_by_id(session: Session, rep_id: str, event_ids: Iterable[str]) -> dict[str, Event]:
    ids = list(event_ids)
    out: dict[str, Event] = {}
    for i in range(0, len(ids), 500):
        rows = session.scalars(
            select(Event).where(Event.rep_id == rep_id, Event.event_id.in_(ids[i : i + 500]))
        )
        out.update({r.event_id: r for r in rows})
    return out


def attendees_json(ev: CalendarEvent) -> list[dict[str, Any]]:
    return [
        {
            "email": a.email,
            "response": a.response,
            "name": a.name,
            "is_resource": a.is_resource,
            "is_organizer": a.is_organizer,
            "optional": a.optional,
            **(
                {
                    "proposed_start": a.proposed_start.isoformat(),
                    "proposed_end": a.proposed_end.isoformat(),
                }
                if a.proposed_start is not None and a.proposed_end is not None
                else {}
            ),
        }
        for a in ev.attendees
    ]


SYNCED_FIELDS = (
    *(name for name in EVENT_FIELDS if name not in ("event_id", "created")),
    "recurring_event_id",
)
"""A provider event's fields stored under the same name and replaced on every sync (the id
is the key; ``created`` is kept once known)."""


def upsert_event(
    session: Session,
    row: Event | None,
    rep_id: str,
    ev: CalendarEvent,
    *,
    now: datetime,
    generation: int,
) -> Event:
    values = dict(
        **{name: getattr(ev, name) for name in SYNCED_FIELDS},
        attendees=attendees_json(ev),
        updated_at=now,
        generation=generation,
    )
    if row is None:
        row = Event(
            rep_id=rep_id, event_id=ev.event_id, created=ev.created, first_seen_at=now, **values
        )
        session.add(row)
    else:
        for k, v in values.items():
            setattr(row, k, v)
        if ev.created is not None:
            row.created = ev.created
    return row


def delete_events(session: Session, rows: Sequence[Event]) -> None:
    for row in rows:
        session.delete(row)


def stale_events(session: Session, rep_id: str, generation: int) -> list[Event]:
    """Events a completed full sync did not list again."""
    return list(
        session.scalars(select(Event).where(Event.rep_id == rep_id, Event.generation < generation))
    )


def events_starting_between(
    session: Session, rep_id: str, lo: datetime, hi: datetime
) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(Event.rep_id == rep_id, Event.start >= lo, Event.start <= hi)
            .order_by(Event.start)
        )
    )


def meetings_by_id(session: Session, ids: Iterable[str]) -> dict[str, Meeting]:
    ids = list(ids)
    out: dict[str, Meeting] = {}
    for i in range(0, len(ids), 500):
        out.update(
            {
                m.id: m
                for m in session.scalars(select(Meeting).where(Meeting.id.in_(ids[i : i + 500])))
            }
        )
    return out


def meetings_of_accounts_ending_between(
    session: Session, rep_id: str, accounts: Iterable[str], lo: datetime, hi: datetime
) -> list[Meeting]:
    accounts = list(accounts)
    if not accounts:
        return []
    return list(
        session.scalars(
            select(Meeting).where(
                Meeting.rep_id == rep_id,
                Meeting.account_domain.in_(accounts),
                Meeting.end >= lo,
                Meeting.end <= hi,
            )
        )
    )


def list_meetings(
    session: Session,
    *,
    rep_id: str | None,
    state: MeetingState | None,
    limit: int,
    offset: int,
) -> list[Meeting]:
    stmt = select(Meeting)
    if rep_id:
        stmt = stmt.where(Meeting.rep_id == rep_id)
    if state:
        stmt = stmt.where(Meeting.state == state)
    return list(
        session.scalars(stmt.order_by(Meeting.start, Meeting.id).limit(limit).offset(offset))
    )


def earliest_due(session: Session, now: datetime) -> datetime | None:
    return next_time(session, Meeting, Meeting.due_at, now)


def release(session: Session, meeting_id: str, owner: str) -> None:
    session.execute(
        update(Meeting)
        .where(Meeting.id == meeting_id, Meeting.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def delete_meetings_of_events(session: Session, rep_id: str, event_ids: Iterable[str]) -> None:
    ids = list(event_ids)
    for i in range(0, len(ids), 500):
        session.execute(
            delete(Meeting)
            .where(Meeting.rep_id == rep_id, Meeting.event_id.in_(ids[i : i + 500]))
            .execution_options(synchronize_session=False)
        )


def calendar_generation(session: Session, rep_id: str) -> int | None:
    """The rep's calendar's current full-listing generation (None: no calendar)."""
    return session.scalar(select(Calendar.generation).where(Calendar.rep_id == rep_id))


def meetings_sharing(session: Session, keys: Iterable[tuple[str | None, str]]) -> list[Meeting]:
    """Every rep's meeting with one of these (iCalUID, account) pairs."""
    wanted = {(uid, account) for uid, account in keys if uid}
    uids = sorted({uid for uid, _ in wanted if uid})
    out: list[Meeting] = []
    for i in range(0, len(uids), 500):
        rows = session.scalars(select(Meeting).where(Meeting.ical_uid.in_(uids[i : i + 500])))
        out += [m for m in rows if (m.ical_uid, m.account_domain) in wanted]
    return out


def reps_by_id(session: Session, ids: Iterable[str]) -> dict[str, Rep]:
    return {r.id: r for r in session.scalars(select(Rep).where(Rep.id.in_(list(ids))))}


def organizers_of(
    session: Session, events: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str | None]:
    """The organiser of each (rep, event) as that rep's calendar shows it."""
    out: dict[tuple[str, str], str | None] = {}
    for rep_id, event_id in events:
        out[(rep_id, event_id)] = session.scalar(
            select(Event.organizer_email).where(Event.rep_id == rep_id, Event.event_id == event_id)
        )
    return out


def meetings_of_events(session: Session, rep_id: str, event_ids: Sequence[str]) -> list[Meeting]:
    """The rep's meetings of these events (one per external account of each)."""
    out: list[Meeting] = []
    for i in range(0, len(event_ids), 500):
        out += session.scalars(
            select(Meeting).where(
                Meeting.rep_id == rep_id, Meeting.event_id.in_(event_ids[i : i + 500])
            )
        )
    return out


def delete_meetings(session: Session, ids: Sequence[str]) -> None:
    for i in range(0, len(ids), 500):
        session.execute(
            delete(Meeting)
            .where(Meeting.id.in_(ids[i : i + 500]))
            .execution_options(synchronize_session=False)
        )


def stages_of(session: Session, domains: Iterable[str]) -> dict[str, str | None]:
    """The CRM's stage of each of these accounts (absent: not in the CRM)."""
    keys = sorted(set(domains))
    out: dict[str, str | None] = {}
    for i in range(0, len(keys), 500):
        rows = session.execute(
            select(Account.domain, Account.stage).where(Account.domain.in_(keys[i : i + 500]))
        )
        out.update((domain, stage) for domain, stage in rows)
    return out


# --- sending the follow-up: action results, the per-meeting send lock, holds -------------------


def account(session: Session, domain: str) -> Account | None:
    return session.get(Account, domain)


def action_result(session: Session, key: str) -> ActionResult | None:
    return session.get(ActionResult, key)


def claim_action(
    session: Session, key: str, *, meeting_id: str, owner: str, now: datetime, stale: datetime
) -> bool:
    """Take the row ``key`` (insert-or-ignore; a pending row older than ``stale`` is taken
    over: its holder died). True when this caller holds it now."""
    if insert_ignore(
        session,
        ActionResult,
        {
            "key": key,
            "meeting_id": meeting_id,
            "status": "pending",
            "owner": owner,
            "created_at": now,
            "updated_at": now,
        },
    ):
        return True
    taken = session.execute(
        update(ActionResult)
        .where(
            ActionResult.key == key,
            ActionResult.status == "pending",
            ActionResult.updated_at < stale,
        )
        .values(owner=owner, updated_at=now)
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def release_action(session: Session, key: str, owner: str) -> None:
    session.execute(
        delete(ActionResult).where(
            ActionResult.key == key, ActionResult.owner == owner, ActionResult.status == "pending"
        )
    )


def record_action(
    session: Session,
    key: str,
    *,
    meeting_id: str,
    fingerprint: str,
    result: dict[str, Any],
    now: datetime,
) -> bool:
    """What ``key`` did, once: a second record of the same key keeps the first (False)."""
    return insert_ignore(
        session,
        ActionResult,
        {
            "key": key,
            "meeting_id": meeting_id,
            "status": "done",
            "fingerprint": fingerprint,
            "result": result,
            "created_at": now,
            "updated_at": now,
        },
    )


def hold_of(session: Session, meeting_id: str) -> Hold | None:
    return session.get(Hold, meeting_id)


def prune(session: Session, before: datetime) -> int:
    """Forget synced events that ended before ``before``, and meetings that ended before it
    with nothing left to do (no ``due_at``); returns how many rows went."""
    events = session.execute(
        delete(Event).where(Event.end < before).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    meetings = session.execute(
        delete(Meeting)
        .where(Meeting.end < before, Meeting.due_at.is_(None))
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return int(events or 0) + int(meetings or 0)
