"""Per-event history of meetings with external domains (account health, issue 5).

``record`` is called by app.meetings.service.apply_changes for every page of calendar
changes, inside the page's transaction, before the events table is updated: ``old`` maps
event ids to the rows as they were, ``changed`` are the new versions, ``gone`` the rows
being removed. ``initial`` is true for a calendar's first full sync (the past as the
calendar still shows it).

For every account with a person on the event it appends what changed — ``seen`` (first
sight), ``moved`` (start from → to, and who moved it: the organiser's side), ``attendees``
(added/removed), ``response`` (who answered what), ``cancelled`` — each row carrying the
meeting's state after the change, and marks the account's health due for a recompute.
At registration, a recurring instance whose ``original_start`` differs from its start was
moved before we watched: it is recorded as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.accounts import repository as repo
from app.db.models import Event, Rep
from connectors.base import CalendarEvent
from policies.classify import account_key, external_people, is_internal

if TYPE_CHECKING:
    from app.runtime import Runtime


def _people(
    attendees: Sequence[Any], internal: Sequence[str], rep_email: str
) -> dict[str, dict[str, str]]:
    """account → {email: response} of the external people (not rooms) on an event."""
    out: dict[str, dict[str, str]] = {}
    for a in external_people(attendees, internal, rep_email):
        out.setdefault(account_key(a.email), {})[a.email] = a.response
    return out


def _side(
    organizer: str | None, account: str, internal: Sequence[str], rep_email: str
) -> str | None:
    if not organizer:
        return None
    if account_key(organizer) == account:
        return "account"
    if organizer == rep_email.lower() or is_internal(organizer, internal):
        return "internal"
    return "other"


def _meeting_like(all_day: bool, event_type: str) -> bool:
    return not all_day and event_type == "default"


def record(
    session: Session,
    rt: Runtime,
    rep: Rep,
    *,
    old: dict[str, Event],
    changed: Sequence[CalendarEvent],
    gone: Sequence[Event],
    now: datetime,
    initial: bool,
) -> None:
    """Record what changed for meetings with external domains; mark their accounts due."""
    from app.meetings.service import facts_of  # meetings builds on this module

    internal = rt.settings.internal_domains
    rows: list[dict[str, Any]] = []

    def add(
        account: str,
        kind: str,
        ev: CalendarEvent | Event,
        people: dict[str, str],
        *,
        at: datetime,
        old_start: datetime | None = None,
        actor: str | None = None,
        side: str | None = None,
        cancelled: bool = False,
        detail: Any = None,
    ) -> None:
        series = ev.recurring_event_id
        rows.append(
            {
                "account_domain": account,
                "rep_id": rep.id,
                "event_id": ev.event_id,
                "series_id": series,
                "kind": kind,
                "at": at,
                "start": ev.start,
                "end": ev.end,
                "old_start": old_start,
                "title": ev.title or "",
                "actor": actor,
                "actor_side": side,
                "attendees": people,
                "cancelled": cancelled,
                "detail": detail,
            }
        )

    for ev in changed:
        row = old.get(ev.event_id)
        if not _meeting_like(ev.all_day, ev.event_type):
            continue
        new_people = _people(ev.attendees, internal, rep.email)
        before = _people(facts_of(row).attendees, internal, rep.email) if row is not None else {}
        cancelled = ev.status == "cancelled"
        organizer = ev.organizer_email
        for account in new_people.keys() | before.keys():
            people = new_people.get(account, {})
            side = _side(organizer, account, internal, rep.email)
            if row is None:
                at = now
                if initial:  # the past as the calendar shows it: when it was, not when we read it
                    at = min(t for t in (ev.created, ev.start, now) if t is not None)
                add(account, "seen", ev, people, at=at, cancelled=cancelled)
                if ev.original_start is not None and ev.original_start != ev.start:
                    moved_at = (
                        min(ev.updated or now, now)
                        if not initial
                        else min(
                            t
                            for t in (ev.updated, ev.original_start, ev.start, now)
                            if t is not None
                        )
                    )
                    add(
                        account,
                        "moved",
                        ev,
                        people,
                        at=max(moved_at, at),
                        old_start=ev.original_start,
                        actor=organizer,
                        side=side,
                        cancelled=cancelled,
                    )
                if cancelled:
                    add(
                        account,
                        "cancelled",
                        ev,
                        people,
                        at=at,
                        actor=organizer,
                        side=side,
                        cancelled=True,
                    )
                continue
            was = before.get(account, {})
            if row.start != ev.start:
                add(
                    account,
                    "moved",
                    ev,
                    people,
                    at=now,
                    old_start=row.start,
                    actor=organizer,
                    side=side,
                    cancelled=cancelled,
                )
            if was.keys() != people.keys():
                add(
                    account,
                    "attendees",
                    ev,
                    people,
                    at=now,
                    cancelled=cancelled,
                    detail={
                        "added": sorted(people.keys() - was.keys()),
                        "removed": sorted(was.keys() - people.keys()),
                    },
                )
            answered = {e: [was[e], r] for e, r in people.items() if e in was and was[e] != r}
            for email, (before_r, after_r) in sorted(answered.items()):
                add(
                    account,
                    "response",
                    ev,
                    people,
                    at=now,
                    actor=email,
                    side="account",
                    cancelled=cancelled,
                    detail={"from": before_r, "to": after_r},
                )
            if cancelled and row.status != "cancelled":
                add(
                    account,
                    "cancelled",
                    ev,
                    people,
                    at=now,
                    actor=organizer,
                    side=side,
                    cancelled=True,
                )
    for row in gone:
        # A past event leaving the sync window is forgotten, not cancelled.
        if (
            row.end <= now
            or not _meeting_like(row.all_day, row.event_type)
            or row.status == "cancelled"
        ):
            continue
        for account, people in _people(facts_of(row).attendees, internal, rep.email).items():
            side = _side(row.organizer_email, account, internal, rep.email)
            add(
                account,
                "cancelled",
                row,
                people,
                at=now,
                actor=row.organizer_email,
                side=side,
                cancelled=True,
            )
    if rows:
        repo.add_history(session, rows)
        repo.mark_due(session, {r["account_domain"] for r in rows}, now)
