"""Tentative holds (policy ``hold: true``): the rep's first suggested slot kept free.

A nudge that suggests slots writes a ``holds`` row (``wanted``) in its own transaction;
the due-work job places it through the provider — an event with no attendees, titled
``Hold: follow-up with <account name or domain>``, shown as tentative where the provider
has that (Graph ``showAs: tentative``), under a deterministic request id so a retry makes
one event. It is removed (``removing`` → deleted through the provider → ``gone``) when the
meeting's follow-up exists, the meeting is waived, or the horizon ends; sending the
invite for the held slot turns the hold into the follow-up (app/meetings/invite.py). The
hold is never busy time for its own meeting's slot search (``without_own_hold``). A
provider that fails leaves the row due again a minute later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.db.leases import claim_due, work_through
from app.db.models import Account, Hold, Meeting, Rep
from app.nudges import repository as repo
from app.runtime import Runtime
from connectors.base import CalendarRef, NewEvent, ProviderError
from policies.invite import Interval, overlapping, subtract
from policies.slots import Slot
from policies.vocabulary import MeetingState

log = logging.getLogger(__name__)
RETRY = timedelta(minutes=1)
DONE_STATES = (MeetingState.INVITED, MeetingState.SECURED, MeetingState.WAIVED)


def title_for(meeting: Meeting, account: Account | None) -> str:
    name = account.name if account is not None and account.name else meeting.account_domain
    return f"Hold: follow-up with {name}"


def want(
    session: Session,
    rep: Rep,
    meeting: Meeting,
    slot: Slot,
    nudge_id: str,
    remove_at: datetime,
    now: datetime,
) -> None:
    """Ask for a hold at ``slot`` (none when the meeting already has one live)."""
    row = repo.hold(session, meeting.id)
    if row is not None and row.status != "gone":
        return  # one live (or still being removed) at a time: the old event must go first
    if row is None:
        row = Hold(meeting_id=meeting.id, rep_id=rep.id)
        repo.add_hold(session, row)
    row.nudge_id = nudge_id
    row.event_id = None
    row.start, row.end = slot.start, slot.end
    row.remove_at = remove_at
    row.status = "wanted"
    row.due_at = now
    row.updated_at = now


def release(session: Session, rt: Runtime, meeting_ids: Sequence[str], now: datetime) -> None:
    """These meetings' holds go (their follow-up exists, or they are waived)."""
    if repo.release_holds(session, meeting_ids, now):
        rt.wake.due(now)


def without_own_hold(
    session: Session,
    meeting: Meeting,
    busy: Sequence[Interval],
    local: Sequence[tuple[str, Interval]],
) -> list[Interval]:
    """``busy`` minus the meeting's own hold; ``local`` (event id, interval) puts back any
    other synced event that overlaps the hold's time."""
    row = repo.hold(session, meeting.id)
    if row is None or row.status not in repo.OPEN_HOLD:
        return list(busy)
    own = (row.start, row.end)
    others = [iv for eid, iv in local if eid != row.event_id]
    return [*subtract(busy, [own]), *overlapping(others, *own)]


# --- the job ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _Step:
    provider: str
    calendar: CalendarRef
    place: NewEvent | None = None
    remove: str | None = None


async def process_due(rt: Runtime, *, limit: int = 100) -> int:
    now, ids = await claim_due(rt, Hold, key=Hold.meeting_id, due=Hold.due_at, limit=limit)
    return await work_through(
        rt,
        Hold,
        key=Hold.meeting_id,
        items=ids,
        claimed_at=now,
        handle=lambda mid: _handle(rt, mid),
    )


async def next_due(rt: Runtime) -> datetime | None:
    return await rt.db.run(repo.earliest_hold, rt.clock.now())


def _settle(row: Hold, status: str, due: datetime | None, now: datetime) -> None:
    row.status = status
    row.due_at = due
    row.updated_at = now
    row.lease_owner = None
    row.lease_until = None


def _step(session: Session, rt: Runtime, mid: str) -> _Step | None:
    row = repo.hold(session, mid)
    if row is None or row.lease_owner != rt.instance_id:
        return None
    now = rt.clock.now()
    meeting = repo.meeting_row(session, mid)
    rep = repo.rep_row(session, row.rep_id)
    over = meeting is None or meeting.state in DONE_STATES or now >= row.remove_at
    if rep is None:
        _settle(row, "gone", None, now)
        return None
    if row.status == "wanted":
        if over or meeting is None:
            _settle(row, "gone", None, now)
            return None
        account = repo.account(session, meeting.account_domain)
        event = NewEvent(
            title=title_for(meeting, account),
            start=row.start,
            end=row.end,
            attendees=(),
            time_zone=rep.timezone,
            request_id=f"hold:{mid}:{row.nudge_id}",
            tentative=True,
        )
        return _Step(provider=rep.provider, calendar=rep.calendar_ref(), place=event)
    if row.status == "placed" and not over:
        _settle(row, "placed", row.remove_at, now)
        return None
    if row.status in ("placed", "removing") and row.event_id:
        return _Step(provider=rep.provider, calendar=rep.calendar_ref(), remove=row.event_id)
    _settle(row, "gone", None, now)
    return None


def _placed(session: Session, rt: Runtime, mid: str, event_id: str) -> None:
    row = repo.hold(session, mid)
    if row is None:
        return
    now = rt.clock.now()
    row.event_id = event_id
    if row.status == "wanted":
        _settle(row, "placed", row.remove_at, now)
    else:  # the follow-up came (or the meeting was waived) while it was being placed
        _settle(row, "removing", now, now)


def _removed(session: Session, rt: Runtime, mid: str) -> None:
    row = repo.hold(session, mid)
    if row is not None:
        _settle(row, "gone", None, rt.clock.now())


def _later(session: Session, rt: Runtime, mid: str) -> None:
    row = repo.hold(session, mid)
    if row is not None:
        now = rt.clock.now()
        _settle(row, row.status, now + RETRY, now)


async def _handle(rt: Runtime, mid: str) -> None:
    step = await rt.db.run(_step, rt, mid)
    if step is None:
        return
    provider = rt.provider(step.provider)
    try:
        if step.place is not None:
            created = await provider.create_event(step.calendar, step.place)
            await rt.db.run(_placed, rt, mid, created.event_id)
        elif step.remove is not None:
            await provider.delete_event(step.calendar, step.remove)
            await rt.db.run(_removed, rt, mid)
    except ProviderError as err:
        log.warning("hold.provider_failed", extra={"meeting_id": mid, "error": str(err)})
        await rt.db.run(_later, rt, mid)
