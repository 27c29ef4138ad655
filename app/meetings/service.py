"""Meetings: calendar changes in, states and due times out.

Event-driven: ``apply_changes`` stores a page of calendar changes and re-evaluates only
the meetings it touches — the changed events' own meetings, and the meetings of the same
accounts whose follow-up window covers the changed events' old or new start.

Time-driven: every open meeting stores ``due_at``, its next time trigger. The scheduler
claims due meetings (``process_due``), and nudges come out of ``process_meeting`` only.
"""

from __future__ import annotations

import bisect
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.accounts import history
from app.crash import crash_point
from app.db.leases import claim_due, work_through
from app.db.models import Event, Meeting, Rep
from app.meetings import repository as repo
from app.runtime import Runtime
from connectors.base import Attendee, CalendarEvent
from policies.classify import (
    EventFacts,
    accounts_of,
    classify,
    follow_up_responses,
)
from policies.model import Policy
from policies.state import Candidate, Decision, MeetingFacts, decide

log = logging.getLogger(__name__)
MEETING_NS = uuid.UUID("5b0f3c1e-6d0a-4a53-9d4b-2f8f7b7f0e11")


def meeting_id(rep_id: str, event_id: str) -> str:
    """Stable id: the same event always is the same meeting (nudges stay once per kind)."""
    return str(uuid.uuid5(MEETING_NS, f"{rep_id}/{event_id}"))


def facts_of(row: Event) -> EventFacts:
    return EventFacts(
        event_id=row.event_id,
        title=row.title,
        start=row.start,
        end=row.end,
        all_day=row.all_day,
        status=row.status,
        event_type=row.event_type,
        rep_response=row.rep_response,
        attendees=tuple(
            Attendee(
                email=a["email"],
                response=a.get("response", "needs_action"),
                is_resource=a.get("is_resource", False),
                is_organizer=a.get("is_organizer", False),
            )
            for a in row.attendees
        ),
        seen_at=row.created or row.first_seen_at,
    )


def facts_of_event(ev: CalendarEvent, seen_at: datetime) -> EventFacts:
    return EventFacts(
        event_id=ev.event_id,
        title=ev.title,
        start=ev.start,
        end=ev.end,
        all_day=ev.all_day,
        status=ev.status,
        event_type=ev.event_type,
        rep_response=ev.rep_response,
        attendees=ev.attendees,
        seen_at=ev.created or seen_at,
    )


def policy_of(rt: Runtime, rep: Rep) -> Policy:
    try:
        return rt.policies.get(rep.policy)
    except KeyError:
        return rt.policies.default  # the policy was removed from the file since


@dataclass
class _Touched:
    accounts: set[str]
    lo: datetime | None = None
    hi: datetime | None = None

    def add(self, facts: EventFacts, internal: Sequence[str], rep_email: str) -> None:
        self.accounts |= accounts_of(facts, internal, rep_email)
        self.lo = facts.start if self.lo is None else min(self.lo, facts.start)
        self.hi = facts.start if self.hi is None else max(self.hi, facts.start)


def apply_changes(
    session: Session,
    rt: Runtime,
    rep: Rep,
    changed: Sequence[CalendarEvent],
    removed_ids: Sequence[str] = (),
    *,
    now: datetime,
    generation: int,
    baseline: bool = False,
    prune: bool = False,
) -> int:
    """Store calendar changes and re-evaluate what they touch; returns meetings evaluated."""
    internal = rt.settings.internal_domains
    # A page may name one event twice (an update then a cancellation): the last wins.
    latest = {ev.event_id: ev for ev in changed}
    old = repo.events_by_id(session, rep.id, [*latest, *removed_ids])
    touched = _Touched(accounts=set())
    for row in old.values():
        touched.add(facts_of(row), internal, rep.email)
    gone = [old[eid] for eid in removed_ids if eid in old and eid not in latest]
    if prune:
        gone += [
            r for r in repo.stale_events(session, rep.id, generation) if r.event_id not in latest
        ]
        for row in gone:
            touched.add(facts_of(row), internal, rep.email)
    # History first, while ``old`` and ``gone`` still hold the state before this change.
    history.record(
        session,
        rt,
        rep,
        old=old,
        changed=list(latest.values()),
        gone=gone,
        now=now,
        initial=baseline,
    )
    repo.delete_events(session, gone)
    repo.delete_meetings_of_events(session, rep.id, [r.event_id for r in gone])

    policy = policy_of(rt, rep)
    own: dict[str, Meeting] = repo.meetings_by_id(
        session, [meeting_id(rep.id, eid) for eid in latest]
    )
    oldest_tracked = rep.created_at - policy.horizon
    dropped: list[str] = []
    for ev in latest.values():
        row = repo.upsert_event(
            session, old.get(ev.event_id), rep.id, ev, now=now, generation=generation
        )
        facts = facts_of_event(ev, row.first_seen_at)
        touched.add(facts, internal, rep.email)
        mid = meeting_id(rep.id, ev.event_id)
        prospect = classify(facts, internal, rep.email)
        if prospect is None or ev.end < oldest_tracked:
            if mid in own:
                dropped.append(ev.event_id)
                del own[mid]
            continue
        meeting = own.get(mid)
        if meeting is None:
            meeting = Meeting(
                id=mid,
                rep_id=rep.id,
                event_id=ev.event_id,
                state="upcoming",
                policy=policy.name,
                tracked_from=rep.created_at,
                updated_at=now,
            )
            session.add(meeting)
            own[mid] = meeting
        meeting.title = ev.title
        meeting.start = ev.start
        meeting.end = ev.end
        meeting.account_domain = prospect.account
        meeting.external_attendees = list(prospect.external_attendees)
    repo.delete_meetings_of_events(session, rep.id, dropped)
    session.flush()

    affected = dict(own)
    if touched.accounts and touched.lo is not None and touched.hi is not None:
        for m in repo.meetings_of_accounts_ending_between(
            session, rep.id, touched.accounts, touched.lo - rt.policies.max_horizon, touched.hi
        ):
            affected.setdefault(m.id, m)
    evaluate(session, rt, rep, list(affected.values()), now=now, baseline=baseline)
    return len(affected)


def evaluate(
    session: Session,
    rt: Runtime,
    rep: Rep,
    meetings: Sequence[Meeting],
    *,
    now: datetime,
    baseline: bool = False,
) -> dict[str, Decision]:
    """Decide state and due time of ``meetings`` (one rep's) from the stored calendar."""
    if not meetings:
        return {}
    policy = policy_of(rt, rep)
    internal = rt.settings.internal_domains
    lo = min(m.end for m in meetings)
    hi = max(m.end for m in meetings) + policy.horizon
    facts = [facts_of(r) for r in repo.events_starting_between(session, rep.id, lo, hi)]
    starts = [f.start for f in facts]
    # Each event's accounts once, not once per meeting: the pairs are quadratic.
    accounts = [accounts_of(f, internal, rep.email) for f in facts]
    produced = repo.produced_kinds(session, [m.id for m in meetings])
    out: dict[str, Decision] = {}
    for m in meetings:
        first = bisect.bisect_left(starts, m.end)
        last = bisect.bisect_right(starts, m.end + policy.horizon)
        candidates = []
        for f, f_accounts in zip(facts[first:last], accounts[first:last], strict=True):
            if f.event_id == m.event_id or m.account_domain not in f_accounts:
                continue
            responses = follow_up_responses(f, m.account_domain, internal, rep.email)
            if responses:
                candidates.append(
                    Candidate(
                        event_id=f.event_id,
                        title=f.title,
                        start=f.start,
                        end=f.end,
                        responses=responses,
                        seen_at=f.seen_at,
                    )
                )
        decision = decide(
            meeting_facts(m, produced.get(m.id, set())),
            candidates,
            policy,
            now,
            can_escalate=bool(rep.manager_email),
            baseline=baseline,
            last_nudge_kind=m.last_nudge_kind,
        )
        write_decision(m, decision, now)
        out[m.id] = decision
    if any(m.due_at is not None and m.due_at <= now for m in meetings):
        rt.wake.due(now)
    else:
        soonest = min((m.due_at for m in meetings if m.due_at is not None), default=None)
        if soonest is not None:
            rt.wake.due(soonest)
    return out


def meeting_facts(m: Meeting, produced: set[str]) -> MeetingFacts:
    return MeetingFacts(
        start=m.start,
        end=m.end,
        tracked_from=m.tracked_from,
        waived=m.state == "waived",
        snoozed_until=m.snoozed_until,
        baseline_declined_id=m.baseline_declined_id,
        last_nudge_at=m.last_nudge_at,
        last_nudge_state=m.last_nudge_state,
        produced=frozenset(produced),
    )


def follow_up_json(c: Candidate | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "event_id": c.event_id,
        "title": c.title,
        "start": c.start.isoformat(),
        "end": c.end.isoformat(),
        "responses": dict(c.responses),
        "seen_at": c.seen_at.isoformat(),
    }


def write_decision(m: Meeting, d: Decision, now: datetime) -> None:
    if m.state != d.state:
        log.info(
            "meeting.state_changed", extra={"meeting_id": m.id, "from": m.state, "to": d.state}
        )
    m.state = d.state
    m.follow_up = follow_up_json(d.follow_up)
    m.baseline_declined_id = d.baseline_declined_id
    # Nudges due now are produced by the due-meeting job, never inline: one code path.
    m.due_at = now if d.nudges else d.due_at
    m.updated_at = now


# --- time-driven: claim due meetings and produce their nudges ------------------------------


async def process_due(rt: Runtime, *, limit: int = 200) -> int:
    """Claim due meetings and process them; returns how many were processed."""
    now, ids = await claim_due(rt, Meeting, key=Meeting.id, due=Meeting.due_at, limit=limit)
    return await work_through(
        rt,
        Meeting,
        key=Meeting.id,
        items=ids,
        claimed_at=now,
        handle=lambda mid: process_meeting(rt, mid),
    )


async def next_due(rt: Runtime) -> datetime | None:
    return await rt.db.run(repo.earliest_due, rt.clock.now())


async def process_meeting(rt: Runtime, mid: str) -> None:
    """Re-decide a claimed meeting; write its nudges and their outbox rows in one go."""
    from app.nudges import service as nudges  # nudges build on meetings

    try:
        plan = await rt.db.run(_plan, rt, mid)
        if plan is None:
            return
        context = await nudges.gather_context(rt, plan)
        await rt.db.run(_commit, rt, mid, context)
        crash_point("meeting.decided")
    except Exception:
        log.exception("meeting.process_failed", extra={"meeting_id": mid})
        retry_at = rt.clock.now() + timedelta(seconds=30)
        await rt.db.run(_retry_later, rt, mid, retry_at)


def _plan(session: Session, rt: Runtime, mid: str) -> Any:
    """First pass: decide; if nothing is due, store the outcome and release the lease."""
    from app.nudges import service as nudges

    now = rt.clock.now()
    meeting = session.get(Meeting, mid)
    if meeting is None or meeting.lease_owner != rt.instance_id:
        return None
    rep = session.get(Rep, meeting.rep_id)
    assert rep is not None
    decision = evaluate(session, rt, rep, [meeting], now=now)[mid]
    if not decision.nudges:
        repo.release(session, mid, rt.instance_id)
        return None
    return nudges.plan_for(session, rt, rep, meeting, decision, now)


def _commit(session: Session, rt: Runtime, mid: str, context: Any) -> None:
    """Second pass, one transaction: decide again, write nudges + outbox, next due time."""
    from app.nudges import service as nudges

    now = rt.clock.now()
    meeting = session.get(Meeting, mid)
    if meeting is None:
        return
    rep = session.get(Rep, meeting.rep_id)
    assert rep is not None
    decision = evaluate(session, rt, rep, [meeting], now=now)[mid]
    for due in decision.nudges:
        nudges.produce(session, rt, rep, meeting, due, context, now)
        if due.kind != "escalation":
            meeting.last_nudge_at = now
            meeting.last_nudge_kind = due.kind
            meeting.last_nudge_state = decision.state
    session.flush()
    evaluate(session, rt, rep, [meeting], now=now)
    repo.release(session, mid, rt.instance_id)


def _retry_later(session: Session, rt: Runtime, mid: str, at: datetime) -> None:
    meeting = session.get(Meeting, mid)
    if meeting is not None:
        meeting.due_at = at
        repo.release(session, mid, rt.instance_id)
