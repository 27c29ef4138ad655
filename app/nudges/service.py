"""Nudges: compose the payload, write it with its outbox rows in the decision's transaction.

The payload is the contract's nudge JSON. ``produce`` inserts the nudge under the unique
key ``<meeting id>:<kind>`` (insert-or-ignore), so however often a decision is replayed —
two replicas, a crash and a retry — a meeting gets each kind once. Its deliveries (one row
per channel) are written in the same transaction and sent later by app/nudges/delivery.py.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.leases import insert_ignore
from app.db.models import Account, Delivery, Event, Meeting, Nudge, Rep
from app.meetings.service import policy_of
from app.nudges.compose import NudgeContext, compose
from app.runtime import Runtime
from connectors.base import BusyInterval, CalendarRef, ProviderError
from policies.hours import PROSPECT_DEFAULT, WorkingHours
from policies.slots import Slot, find_slots
from policies.state import Decision, DueNudge

log = logging.getLogger(__name__)
SLOT_LEAD = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """What producing a meeting's due nudges needs from outside the transaction."""

    provider: str
    calendar: CalendarRef
    busy_from: datetime
    busy_until: datetime
    local_busy: tuple[tuple[datetime, datetime], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Context:
    busy: tuple[tuple[datetime, datetime], ...]
    busy_source: str  # "provider" or "local" (the provider failed; synced calendar used)


def calendar_ref(rep: Rep) -> CalendarRef:
    return CalendarRef(rep_id=rep.id, email=rep.email, timezone=rep.timezone)


def local_busy(
    session: Session, rep: Rep, lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime]]:
    """Busy times from the synced calendar: the fallback when free/busy fails."""
    rows = session.scalars(
        select(Event).where(
            Event.rep_id == rep.id,
            Event.start < hi,
            Event.end > lo,
            Event.status != "cancelled",
            Event.rep_response != "declined",
        )
    )
    return [(r.start, r.end) for r in rows if not (r.all_day and r.event_type == "default")]


def plan_for(
    session: Session, rt: Runtime, rep: Rep, meeting: Meeting, decision: Decision, now: datetime
) -> Plan:
    policy = policy_of(rt, rep)
    lo, hi = max(now, meeting.end), meeting.end + policy.horizon + policy.follow_up_duration
    return Plan(
        provider=rep.provider,
        calendar=calendar_ref(rep),
        busy_from=lo,
        busy_until=max(hi, lo + timedelta(minutes=1)),
        local_busy=tuple(local_busy(session, rep, lo, hi)),
    )


async def gather_context(rt: Runtime, plan: Plan) -> Context:
    """Free/busy from the provider (outside any transaction); the synced calendar if it fails."""
    try:
        provider = rt.provider(plan.provider)
        busy: list[BusyInterval] = await provider.free_busy(
            plan.calendar, plan.busy_from, plan.busy_until
        )
        return Context(busy=tuple((b.start, b.end) for b in busy), busy_source="provider")
    except (ProviderError, Exception) as err:  # noqa: BLE001 - any failure: fall back
        log.warning(
            "nudge.free_busy_failed", extra={"rep_id": plan.calendar.rep_id, "error": str(err)}
        )
        return Context(busy=plan.local_busy, busy_source="local")


def suggest_slots(
    rt: Runtime, rep: Rep, meeting: Meeting, account: Account | None, busy: Any, now: datetime
) -> list[Slot]:
    policy = policy_of(rt, rep)
    return find_slots(
        meeting_end=meeting.end,
        now=now + SLOT_LEAD,  # leave the rep time to read the nudge and send the invite
        horizon=policy.horizon,
        duration=policy.follow_up_duration,
        busy=busy,
        rep_tz=rep.timezone,
        rep_hours=WorkingHours.parse(rep.working_hours),
        prospect_tz=prospect_timezone(rep, account),
        prospect_hours=PROSPECT_DEFAULT,
        min_gap=min(timedelta(hours=12), policy.horizon / 4),
    )


def prospect_timezone(rep: Rep, account: Account | None) -> str:
    """The account's zone as the CRM set it; the rep's own zone until it does."""
    return account.timezone if account is not None and account.timezone else rep.timezone


def meeting_json(m: Meeting) -> dict[str, Any]:
    return {
        "id": m.id,
        "title": m.title,
        "start": m.start.isoformat(),
        "end": m.end.isoformat(),
        "account_domain": m.account_domain,
        "external_attendees": list(m.external_attendees),
    }


def produce(
    session: Session,
    rt: Runtime,
    rep: Rep,
    meeting: Meeting,
    due: DueNudge,
    context: Context,
    now: datetime,
) -> str | None:
    """Write one nudge and its outbox rows; None when this meeting already had this kind."""
    policy = policy_of(rt, rep)
    account = session.get(Account, meeting.account_domain)
    slots = suggest_slots(rt, rep, meeting, account, context.busy, now)
    follow_up = meeting.follow_up or {}
    escalated = due.kind == "escalation"
    window_name, window, closed_at = due.window_name, due.window, due.window_closed_at
    if escalated:
        # The manager reads about the window that passed for the unanswered nudge.
        window_name, window, closed_at = {
            "no_next_step": (
                "invite_within",
                policy.invite_within,
                meeting.end + policy.invite_within,
            ),
            "not_accepted": ("accept_within", policy.accept_within, None),
        }.get(due.escalated_kind or "", (None, None, None))
    composed = compose(
        NudgeContext(
            kind=due.kind,  # type: ignore[arg-type]  # a policies.state kind
            locale="fr" if rep.locale == "fr" else "en",
            rep_email=rep.email,
            rep_timezone=rep.timezone,
            manager_email=rep.manager_email,
            meeting_title=meeting.title,
            meeting_start=meeting.start,
            meeting_end=meeting.end,
            account_domain=meeting.account_domain,
            account_name=account.name if account else None,
            prospect_timezone=prospect_timezone(rep, account),
            external_attendees=tuple(meeting.external_attendees),
            slots=tuple(slots),
            follow_up_duration=policy.follow_up_duration,
            window_name=window_name,  # type: ignore[arg-type]
            window=window,
            window_closed_at=closed_at,
            follow_up_title=follow_up.get("title"),
            follow_up_start=datetime.fromisoformat(follow_up["start"]) if follow_up else None,
            escalated_kind=due.escalated_kind,  # type: ignore[arg-type]
            nudged_at=meeting.last_nudge_at if escalated else None,
        )
    )
    nudge_id = str(uuid.uuid4())
    payload: dict[str, Any] = {
        "id": nudge_id,
        "kind": due.kind,
        "created_at": now.isoformat(),
        "rep": {"id": rep.id, "email": rep.email, "timezone": rep.timezone},
        "meeting": meeting_json(meeting),
        "suggested_slots": [
            {"start": s.start.isoformat(), "end": s.end.isoformat()} for s in slots
        ],
        "draft_invite": composed.draft_invite,
        "message": composed.message,
        # Extensions beyond the contract's payload.
        "state": meeting.state,
        "policy": policy.name,
        "window": None
        if due.window_name is None or due.window is None or due.window_closed_at is None
        else {"name": due.window_name, "closed_at": due.window_closed_at.isoformat()},
        "recipient": rep.manager_email if escalated else rep.email,
        "busy_source": context.busy_source,
        "prospect_timezone": prospect_timezone(rep, account),
    }
    recipient = rep.manager_email if escalated else rep.email
    created = insert_ignore(
        session,
        Nudge,
        {
            "id": nudge_id,
            "dedupe_key": f"{meeting.id}:{due.kind}",
            "kind": due.kind,
            "rep_id": rep.id,
            "meeting_id": meeting.id,
            "account_domain": meeting.account_domain,
            "recipient_email": recipient,
            "payload": payload,
            "created_at": now,
        },
    )
    if not created:
        return None
    enqueue(session, rt, nudge_id, recipient, now)
    log.info(
        "nudge.produced", extra={"nudge_id": nudge_id, "kind": due.kind, "meeting_id": meeting.id}
    )
    return nudge_id


def enqueue(
    session: Session, rt: Runtime, nudge_id: str, recipient: str | None, now: datetime
) -> None:
    """One outbox row per configured channel, in the caller's transaction."""
    for name, channel in rt.channels.items():
        target = recipient if channel.name == "email" else name
        if not target:
            continue
        insert_ignore(
            session,
            Delivery,
            {
                "nudge_id": nudge_id,
                "channel": name,
                "target": target,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            },
        )
    rt.wake.deliveries(now)
