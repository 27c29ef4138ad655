"""What /v1/meetings does: read, waive, snooze, schedule the follow-up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Calendar, Meeting, Nudge, Rep
from app.errors import InvalidRequest, NotFoundError, ProviderFailure, SlotConflict
from app.meetings import repository as repo
from app.meetings.schemas import ScheduleIn, iso
from app.meetings.service import apply_changes, evaluate, policy_of
from app.nudges.service import calendar_ref
from app.runtime import Runtime
from connectors.base import AuthFailed, NewEvent, ProviderError
from policies.state import STATES


def to_json(m: Meeting) -> dict[str, Any]:
    fu = m.follow_up
    return {
        "id": m.id,
        "rep_id": m.rep_id,
        "event_id": m.event_id,
        "title": m.title,
        "start": iso(m.start),
        "end": iso(m.end),
        "account_domain": m.account_domain,
        "external_attendees": list(m.external_attendees),
        "state": m.state,
        "follow_up": None
        if fu is None
        else {
            "event_id": fu["event_id"],
            "start": fu["start"],
            "end": fu["end"],
            "responses": fu["responses"],
        },
        # Extensions beyond the contract.
        "policy": m.policy,
        "due_at": iso(m.due_at),
        "snoozed_until": iso(m.snoozed_until),
        "waived_reason": m.waived_reason,
    }


def _get(session: Session, mid: str) -> Meeting:
    meeting = session.get(Meeting, mid)
    if meeting is None:
        raise NotFoundError(f"no meeting with id {mid!r}")
    return meeting


def list_meetings(
    session: Session, *, rep_id: str | None, state: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    if state is not None and state not in STATES:
        raise InvalidRequest(f"state: {state!r} is not one of {', '.join(STATES)}")
    if rep_id is not None and session.get(Rep, rep_id) is None:
        raise NotFoundError(f"no rep with id {rep_id!r}")
    return [
        to_json(m)
        for m in repo.list_meetings(session, rep_id=rep_id, state=state, limit=limit, offset=offset)
    ]


def read(session: Session, mid: str) -> dict[str, Any]:
    return to_json(_get(session, mid))


def waive(session: Session, rt: Runtime, mid: str, reason: str) -> dict[str, Any]:
    meeting = _get(session, mid)
    now = rt.clock.now()
    meeting.state = "waived"
    meeting.waived_reason = reason
    meeting.waived_at = now
    meeting.due_at = None
    meeting.updated_at = now
    return to_json(meeting)


def snooze(session: Session, rt: Runtime, mid: str, until: datetime) -> dict[str, Any]:
    meeting = _get(session, mid)
    now = rt.clock.now()
    if until <= now:
        raise InvalidRequest(f"until: {until.isoformat()} is not in the future")
    meeting.snoozed_until = until
    rep = session.get(Rep, meeting.rep_id)
    assert rep is not None
    evaluate(session, rt, rep, [meeting], now=now)
    return to_json(meeting)


def _schedule_plan(session: Session, rt: Runtime, mid: str, body: ScheduleIn) -> Any:
    meeting = _get(session, mid)
    rep = session.get(Rep, meeting.rep_id)
    assert rep is not None
    policy = policy_of(rt, rep)
    start = body.start
    end = body.end or start + policy.follow_up_duration
    if end <= start:
        raise InvalidRequest("end: must be after start")
    now = rt.clock.now()
    if start <= now:
        raise SlotConflict(f"start: {start.isoformat()} is in the past")
    if start < meeting.end:
        raise SlotConflict(
            f"start: the follow-up must start after the meeting ends ({iso(meeting.end)})"
        )
    if start > meeting.end + policy.horizon:
        raise SlotConflict(
            f"start: {start.isoformat()} is past the follow-up horizon "
            f"({iso(meeting.end + policy.horizon)})"
        )
    last = session.scalar(
        select(Nudge.payload)
        .where(Nudge.meeting_id == mid)
        .order_by(Nudge.created_at.desc())
        .limit(1)
    )
    draft = (last or {}).get("draft_invite") or {}
    subject = body.subject or draft.get("subject") or f"Next step: {meeting.title}".strip()
    text = body.body if body.body is not None else draft.get("body", "")
    new = NewEvent(
        title=subject,
        start=start,
        end=end,
        attendees=tuple(meeting.external_attendees),
        body=text,
        time_zone=rep.timezone,
        request_id=f"{mid}:{start.isoformat()}",
    )
    return rep.provider, calendar_ref(rep), new


def _store_created(session: Session, rt: Runtime, mid: str, event: Any) -> dict[str, Any]:
    meeting = _get(session, mid)
    rep = session.get(Rep, meeting.rep_id)
    cal = session.get(Calendar, meeting.rep_id)
    assert rep is not None and cal is not None
    apply_changes(session, rt, rep, [event], now=rt.clock.now(), generation=cal.generation)
    session.flush()
    session.refresh(meeting)
    return to_json(meeting)


async def schedule(rt: Runtime, mid: str, body: ScheduleIn) -> dict[str, Any]:
    """Create the follow-up on the rep's calendar; the provider invites the attendees."""
    provider_name, ref, new = await rt.db.run(_schedule_plan, rt, mid, body)
    provider = rt.provider(provider_name)
    try:
        busy = await provider.free_busy(ref, new.start, new.end)
    except ProviderError as err:
        raise ProviderFailure(f"could not read the rep's free/busy: {err}") from err
    clash = [b for b in busy if b.start < new.end and b.end > new.start]
    if clash:
        raise SlotConflict(
            f"start: {new.start.isoformat()}–{new.end.isoformat()} is busy on the rep's calendar "
            f"({clash[0].start.isoformat()}–{clash[0].end.isoformat()})"
        )
    try:
        created = await provider.create_event(ref, new)
    except AuthFailed as err:
        raise ProviderFailure(
            f"the provider refused access to the rep's calendar: {err}", status_code=502
        ) from err
    except ProviderError as err:
        raise ProviderFailure(f"the provider could not create the event: {err}") from err
    return await rt.db.run(_store_created, rt, mid, created)
