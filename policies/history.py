"""Account history as a pure diff: the stored facts before a page of calendar changes, the
facts after it, and out come the history entries of every external account involved.

Pure: no I/O, ``now`` is a parameter. The meetings stage calls ``diff`` for every page of
calendar changes, before it stores the page: ``old`` maps event ids to the events as they
were stored, ``changed`` are the new versions, ``gone`` the stored events being removed.
``initial`` is true for a calendar's first full sync (the past as the calendar still
shows it).

For every account with a person on the event it records what changed — ``seen`` (first
sight), ``moved`` (start from → to, and who moved it: the organiser's side),
``attendees`` (added/removed), ``response`` (who answered what), ``cancelled`` — each
entry carrying the meeting's state after the change. At registration, a recurring
instance whose ``original_start`` differs from its start was moved before we watched: it
is recorded as such. A past event leaving the sync window is forgotten, not cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from connectors.base import Attendee
from policies.classify import EventFacts, account_key, external_people, is_internal
from policies.signals import HistoryEntry
from policies.vocabulary import ActorSide, HistoryKind


def people_by_account(
    attendees: Sequence[Attendee], internal: Sequence[str], rep_email: str
) -> dict[str, dict[str, str]]:
    """account → {email: response} of the external people (not rooms) on an event."""
    out: dict[str, dict[str, str]] = {}
    for a in external_people(attendees, internal, rep_email):
        out.setdefault(account_key(a.email), {})[a.email] = a.response
    return out


def side_of(
    organizer: str | None, account: str, internal: Sequence[str], rep_email: str
) -> ActorSide | None:
    """Whose side organised the event, seen from ``account``."""
    if not organizer:
        return None
    if account_key(organizer) == account:
        return ActorSide.ACCOUNT
    if organizer == rep_email.lower() or is_internal(organizer, internal):
        return ActorSide.INTERNAL
    return ActorSide.OTHER


def _entry(
    account: str,
    kind: HistoryKind,
    ev: EventFacts,
    people: dict[str, str],
    *,
    at: datetime,
    old_start: datetime | None = None,
    actor: str | None = None,
    side: ActorSide | None = None,
    cancelled: bool = False,
    detail: Mapping[str, Any] | None = None,
) -> HistoryEntry:
    return HistoryEntry(
        account=account,
        event_id=ev.event_id,
        series_id=ev.series_id,
        kind=kind,
        at=at,
        start=ev.start,
        end=ev.end,
        old_start=old_start,
        title=ev.title or "",
        actor=actor,
        actor_side=side,
        attendees=people,
        cancelled=cancelled,
        detail=detail,
    )


def _first_sight(
    account: str,
    ev: EventFacts,
    people: dict[str, str],
    side: ActorSide | None,
    *,
    now: datetime,
    initial: bool,
) -> list[HistoryEntry]:
    """An event seen for the first time: ``seen``, and what it already went through."""
    cancelled = ev.status == "cancelled"
    entry = partial(_entry, account, ev=ev, people=people, cancelled=cancelled)
    by_organizer = partial(entry, actor=ev.organizer_email, side=side)  # moves, cancellations
    at = now
    if initial:  # the past as the calendar shows it: when it was, not when we read it
        at = min(t for t in (ev.created, ev.start, now) if t is not None)
    out = [entry(HistoryKind.SEEN, at=at)]
    if ev.original_start is not None and ev.original_start != ev.start:
        moved_at = (
            min(ev.updated or now, now)
            if not initial
            else min(t for t in (ev.updated, ev.original_start, ev.start, now) if t is not None)
        )
        out.append(
            by_organizer(HistoryKind.MOVED, at=max(moved_at, at), old_start=ev.original_start)
        )
    if cancelled:
        out.append(by_organizer(HistoryKind.CANCELLED, at=at))
    return out


def _changes(
    account: str,
    before: EventFacts,
    ev: EventFacts,
    was: dict[str, str],
    people: dict[str, str],
    side: ActorSide | None,
    *,
    now: datetime,
) -> list[HistoryEntry]:
    """What changed between the stored version of an event and its new one."""
    cancelled = ev.status == "cancelled"
    entry = partial(_entry, account, ev=ev, people=people, cancelled=cancelled)
    by_organizer = partial(entry, actor=ev.organizer_email, side=side)  # moves, cancellations
    out: list[HistoryEntry] = []
    # Answers before the move they came with: "can we move this?" comes first.
    answered = {e: [was[e], r] for e, r in people.items() if e in was and was[e] != r}
    for email, (before_r, after_r) in sorted(answered.items()):
        out.append(
            entry(
                HistoryKind.RESPONSE,
                at=now,
                actor=email,
                side=ActorSide.ACCOUNT,
                detail={"from": before_r, "to": after_r},
            )
        )
    if before.start != ev.start:
        out.append(by_organizer(HistoryKind.MOVED, at=now, old_start=before.start))
    if was.keys() != people.keys():
        out.append(
            entry(
                HistoryKind.ATTENDEES,
                at=now,
                detail={
                    "added": sorted(people.keys() - was.keys()),
                    "removed": sorted(was.keys() - people.keys()),
                },
            )
        )
    if cancelled and before.status != "cancelled":
        out.append(by_organizer(HistoryKind.CANCELLED, at=now))
    return out


def diff(
    *,
    old: Mapping[str, EventFacts],
    changed: Sequence[EventFacts],
    gone: Sequence[EventFacts],
    internal: Sequence[str],
    rep_email: str,
    now: datetime,
    initial: bool,
) -> list[HistoryEntry]:
    """The history entries a page of calendar changes makes, for every external account."""
    out: list[HistoryEntry] = []
    for ev in changed:
        if not ev.meeting_like:
            continue
        stored = old.get(ev.event_id)
        new_people = people_by_account(ev.attendees, internal, rep_email)
        before = (
            people_by_account(stored.attendees, internal, rep_email) if stored is not None else {}
        )
        for account in new_people.keys() | before.keys():
            people = new_people.get(account, {})
            side = side_of(ev.organizer_email, account, internal, rep_email)
            if stored is None:
                out += _first_sight(account, ev, people, side, now=now, initial=initial)
            else:
                was = before.get(account, {})
                out += _changes(account, stored, ev, was, people, side, now=now)
    for stored in gone:
        # A past event leaving the sync window is forgotten, not cancelled.
        if stored.end <= now or not stored.meeting_like or stored.status == "cancelled":
            continue
        for account, people in people_by_account(stored.attendees, internal, rep_email).items():
            side = side_of(stored.organizer_email, account, internal, rep_email)
            out.append(
                _entry(
                    account,
                    HistoryKind.CANCELLED,
                    stored,
                    people,
                    at=now,
                    actor=stored.organizer_email,
                    side=side,
                    cancelled=True,
                )
            )
    return out
