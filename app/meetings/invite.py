"""The follow-up invitation, and sending it: ``POST /v1/meetings/{id}/schedule`` and the
one-click ``send_invite`` action both come here, so both send the same invitation and
both are refused the same way.

- **What it says** (``invitation_for``): a subject and a short agenda that name the first
  meeting and what the follow-up is for, in US English, from ``templates/invitation_*.txt``
  (Jinja2). It invites the meeting's external attendees and the rep's colleagues who
  attended the first meeting, and asks for a video link unless the policy says
  ``video: false``.
- **When it may go** (``check_slot``): not for a waived or secured meeting, not in the past,
  inside the horizon, inside both sides' working hours, and not on busy time — the
  meeting's own follow-up and hold are never busy for it.
- **How** (``send``): one sender per meeting at a time across replicas (the
  ``send:<meeting id>`` row); an existing follow-up — declined or not accepted — is
  *moved* (the provider updates the event and tells its attendees), never doubled; the
  hold at that slot becomes the follow-up; a new event is created under a deterministic
  request id, so a retry after a lost answer finds the same event. A provider refusal
  leaves nothing half-written: the lock is released and the same call can be retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session

from app.db.models import Account, Hold, Meeting, Rep
from app.errors import InvalidRequest, NotFoundError, ProviderFailure, SlotConflict
from app.meetings import repository as repo
from app.nudges import repository as nudges_repo
from app.nudges.compose import call_length, format_slot, format_time
from app.nudges.service import policy_of, prospect_timezone
from app.runtime import Runtime
from connectors.base import (
    AuthFailed,
    CalendarEvent,
    CalendarRef,
    NewEvent,
    NotFound,
    ProviderError,
)
from policies.business import country_of_zone, parse_account_hours
from policies.classify import is_internal, is_resource
from policies.hours import WorkingHours
from policies.invite import Interval, overlapping, subtract, within_hours
from policies.model import Policy
from policies.vocabulary import MeetingState

log = logging.getLogger(__name__)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=False,  # plain text: the provider renders the description
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
LOCK_STALE = timedelta(minutes=2)  # a sender that held the lock this long has died
LOCK_WAIT = 15.0  # seconds a second sender waits for the first to finish
LOCK_POLL = 0.05


@dataclass(frozen=True, kw_only=True, slots=True)
class Invitation:
    """The follow-up invitation as the prospect receives it."""

    subject: str
    body: str
    attendees: tuple[str, ...]
    video: bool


def colleagues_of(session: Session, rt: Runtime, rep: Rep, meeting: Meeting) -> list[str]:
    """The rep's colleagues who attended the first meeting (internal, not declined)."""
    row = repo.events_by_id(session, rep.id, [meeting.event_id]).get(meeting.event_id)
    if row is None:
        return []
    facts = repo.facts_of(row)
    out: list[str] = []
    for person in facts.attendees:
        if (
            person.email != rep.email.lower()
            and is_internal(person.email, rt.settings.internal_domains)
            and not is_resource(person)
            and person.response != "declined"
            and person.email not in out
        ):
            out.append(person.email)
    return out


def invitation_for(session: Session, rt: Runtime, rep: Rep, meeting: Meeting) -> Invitation:
    """The invitation for ``meeting``'s follow-up (US English: it goes to the prospect)."""
    policy = policy_of(rt, meeting)
    account = repo.account(session, meeting.account_domain)
    title = " ".join(meeting.title.split()) or "our last meeting"
    fields = {
        "meeting": title,
        "meeting_date": format_slot(meeting.start, prospect_timezone(rep, account), "en"),
        "account": (account.name if account and account.name else meeting.account_domain),
        "length": call_length(policy.follow_up_duration),
        "video": policy.video,
    }
    subject = TEMPLATES.get_template("invitation_subject.txt").render(fields).strip()
    body = TEMPLATES.get_template("invitation_body.txt").render(fields).strip()
    external = [e.lower() for e in meeting.external_attendees]
    attendees = tuple(dict.fromkeys([*external, *colleagues_of(session, rt, rep, meeting)]))
    return Invitation(subject=subject, body=body, attendees=attendees, video=policy.video)


LONGEST_FOLLOW_UP = timedelta(days=1)
"""A follow-up is a meeting, not a sabbatical: a longer one is a typing mistake."""


def check_slot(
    rep: Rep,
    meeting: Meeting,
    policy: Policy,
    account: Account | None,
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    """``SlotConflict`` (409) naming why the follow-up cannot go at ``start``–``end``."""
    if meeting.state == MeetingState.WAIVED:
        reason = f" ({meeting.waived_reason})" if meeting.waived_reason else ""
        raise SlotConflict(f"the meeting was waived{reason}: no follow-up is wanted")
    if meeting.state == MeetingState.SECURED:
        raise SlotConflict("the meeting is secured: its follow-up was accepted already")
    if start <= now:
        raise SlotConflict(f"start: {start.isoformat()} is in the past")
    if start < meeting.end:
        raise SlotConflict(
            f"start: the follow-up must start after the meeting ends ({meeting.end.isoformat()})"
        )
    if start > meeting.end + policy.horizon:
        raise SlotConflict(
            f"start: {start.isoformat()} is past the follow-up horizon "
            f"({(meeting.end + policy.horizon).isoformat()})"
        )
    if end - start > LONGEST_FOLLOW_UP:
        raise InvalidRequest("end: a follow-up lasts at most one day")
    zone = prospect_timezone(rep, account)
    sides = (
        ("rep", rep.timezone, WorkingHours.parse(rep.working_hours), rep.country),
        (
            "prospect",
            zone,
            parse_account_hours(account.working_hours if account else None),
            account.country if account else None,
        ),
    )
    for side, tz, hours, country in sides:
        slot = f"{format_slot(start, tz)}–{format_time(end, tz)}"
        if not within_hours(start, end, tz, hours):
            raise SlotConflict(
                f"start: {slot} is outside the {side}'s working hours "
                f"({hours.start:%H:%M}–{hours.end:%H:%M} {tz})"
            )
        country = country or country_of_zone(tz)
        if not within_hours(start, end, tz, hours, country):
            raise SlotConflict(f"start: {slot} falls on a public holiday of the {side} ({country})")


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class SendRequest:
    """One request to send (or move) the follow-up.

    ``once_key`` names what must happen once (an ``Idempotency-Key``, an action token's
    action); ``fingerprint`` is what that key was used for; ``creation_key`` seeds the
    provider's idempotent creation id.
    """

    meeting_id: str
    start: datetime
    end: datetime | None = None
    subject: str | None = None
    body: str | None = None
    once_key: str | None = None
    fingerprint: str = ""
    creation_key: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Sent:
    """What sending did: ``already`` when ``once_key`` had done it and nothing changed now."""

    meeting_id: str
    event_id: str
    start: datetime
    moved: bool
    already: bool
    attendees: tuple[str, ...] = ()
    video_link: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class _Plan:
    provider: str
    calendar: CalendarRef
    event: NewEvent
    target_id: str | None  # the event to move: the follow-up, or the hold at this slot
    moving: bool  # target is the follow-up (not the hold)
    hold_id: str | None  # a hold to remove once the follow-up is in place
    own: tuple[Interval, ...]  # the meeting's own follow-up and hold: never busy for it
    local: tuple[Interval, ...]  # the synced calendar's other busy events at that time


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def _meeting(session: Session, mid: str) -> tuple[Meeting, Rep]:
    meeting = repo.meeting(session, mid)
    if meeting is None:
        raise NotFoundError(f"no meeting with id {mid!r}")
    rep = repo.rep(session, meeting.rep_id)
    assert rep is not None
    return meeting, rep


def _done(session: Session, req: SendRequest) -> Sent | None:
    if req.once_key is None:
        return None
    row = repo.action_result(session, req.once_key)
    if row is None or row.status != "done" or row.result is None:
        return None
    if row.fingerprint and req.fingerprint and row.fingerprint != req.fingerprint:
        raise InvalidRequest(
            "Idempotency-Key: this key was used for another request; use a new key"
        )
    r = row.result
    return Sent(
        meeting_id=req.meeting_id,
        event_id=r["event_id"],
        start=datetime.fromisoformat(r["start"]),
        moved=bool(r.get("moved")),
        already=True,
        attendees=tuple(r.get("attendees") or ()),
        video_link=r.get("video_link"),
    )


def _plan(session: Session, rt: Runtime, req: SendRequest, evaluate: Any) -> _Plan | Sent:
    done = _done(session, req)
    if done is not None:
        return done
    meeting, rep = _meeting(session, req.meeting_id)
    policy = policy_of(rt, meeting)
    now = rt.clock.now()
    start = req.start.astimezone(UTC)
    end = (req.end or start + policy.follow_up_duration).astimezone(UTC)
    if end <= start:
        raise InvalidRequest("end: must be after start")
    account = repo.account(session, meeting.account_domain)
    check_slot(rep, meeting, policy, account, start, end, now)
    decision = evaluate(session, rt, rep, [meeting], now=now)[meeting.id]
    existing = decision.follow_up or decision.declined
    hold: Hold | None = repo.hold_of(session, meeting.id)
    hold_id = hold.event_id if hold is not None and hold.status == "placed" else None
    invitation = invitation_for(session, rt, rep, meeting)
    target = existing.event_id if existing is not None else None
    moving = target is not None
    if target is None and hold is not None and hold_id and hold.start == start:
        target, hold_id = hold_id, None  # the hold at this slot becomes the follow-up
    own: list[Interval] = []
    own_ids = {i for i in (target, hold_id) if i}
    if existing is not None:
        own.append((existing.start, existing.end))
    if hold is not None:
        own.append((hold.start, hold.end))
    local = tuple(
        (r.start, r.end)
        for r in nudges_repo.busy_events(session, rep.id, start, end)
        if r.event_id not in own_ids and not (r.all_day and r.event_type == "default")
    )
    new = NewEvent(
        title=req.subject or invitation.subject,
        start=start,
        end=end,
        attendees=invitation.attendees,
        body=req.body if req.body is not None else invitation.body,
        time_zone=rep.timezone,
        request_id=f"{meeting.id}:{req.creation_key}",
        video=invitation.video,
    )
    return _Plan(
        provider=rep.provider,
        calendar=rep.calendar_ref(),
        event=new,
        target_id=target,
        moving=moving,
        hold_id=hold_id,
        own=tuple(own),
        local=local,
    )


async def _lock(rt: Runtime, mid: str) -> None:
    """Be the one sender of ``mid``'s follow-up; wait a little for another one to finish."""
    key = f"send:{mid}"
    waited = 0.0
    while True:
        wall = datetime.now(UTC)
        if await rt.db.run(
            repo.claim_action,
            key,
            meeting_id=mid,
            owner=rt.instance_id,
            now=wall,
            stale=wall - LOCK_STALE,
        ):
            return
        if waited >= LOCK_WAIT:
            raise SlotConflict(
                "another invite for this meeting is being sent right now; try again in a moment"
            )
        await asyncio.sleep(LOCK_POLL)
        waited += LOCK_POLL


async def _unlock(rt: Runtime, mid: str) -> None:
    await rt.db.run(repo.release_action, f"send:{mid}", rt.instance_id)


def _refused(err: ProviderError, what: str) -> ProviderFailure:
    if isinstance(err, AuthFailed):
        return ProviderFailure(
            f"the provider refused access to the rep's calendar: {err}", status_code=502
        )
    return ProviderFailure(f"the provider could not {what}: {err}; nothing was sent, try again")


async def send(rt: Runtime, req: SendRequest, evaluate: Any, store: Any) -> Sent:
    """Send or move the follow-up as ``req`` says (see the module docstring).

    ``evaluate`` and ``store`` are the meetings service's: re-decide a meeting, and apply
    a provider's answer to the synced calendar.
    """
    await _lock(rt, req.meeting_id)
    try:
        plan = await rt.db.run(_plan, rt, req, evaluate)
        if isinstance(plan, Sent):
            return plan
        provider = rt.provider(plan.provider)
        new = plan.event
        try:
            busy = await provider.free_busy(plan.calendar, new.start, new.end)
        except ProviderError as err:
            raise _refused(err, "read the rep's free/busy") from err
        taken = subtract(((b.start, b.end) for b in busy), plan.own)
        clash = overlapping([*taken, *plan.local], new.start, new.end)
        if clash:
            raise SlotConflict(
                f"start: {new.start.isoformat()}–{new.end.isoformat()} is busy on the rep's "
                f"calendar ({clash[0][0].isoformat()}–{clash[0][1].isoformat()})"
            )
        changed: list[CalendarEvent] = []
        try:
            event: CalendarEvent | None = None
            if plan.target_id is not None:
                try:
                    event = await provider.update_event(plan.calendar, plan.target_id, new)
                except NotFound:
                    event = None  # gone meanwhile: create it instead
            if event is None:
                event = await provider.create_event(plan.calendar, new)
        except ProviderError as err:
            raise _refused(err, "send the invitation") from err
        changed.append(event)
        hold_left = False
        if plan.hold_id is not None:
            try:
                await provider.delete_event(plan.calendar, plan.hold_id)
            except ProviderError as err:  # the hold job removes it later
                log.warning(
                    "hold.remove_failed", extra={"event_id": plan.hold_id, "error": str(err)}
                )
                hold_left = True
        attendees = [a.email for a in event.attendees]
        result: dict[str, Any] = {
            "event_id": event.event_id,
            "start": event.start.isoformat(),
            "moved": plan.moving,
            "attendees": attendees,
            "video_link": event.video_link,
        }
        await rt.db.run(store, rt, req, changed, result, plan.hold_id, hold_left)
        return Sent(
            meeting_id=req.meeting_id,
            event_id=event.event_id,
            start=event.start,
            moved=plan.moving,
            already=False,
            attendees=tuple(attendees),
            video_link=event.video_link,
        )
    finally:
        await _unlock(rt, req.meeting_id)
