"""Meetings: calendar changes in, classification, states and due times out.

Event-driven: ``apply_changes`` stores a page of calendar changes and re-evaluates only
the meetings it touches — the changed events' own meetings, and the meetings of the same
accounts whose follow-up window covers the changed events' old or new start. The page's
account history (policies/history.py) goes down to the accounts stage in the same
transaction.

Time-driven: every open meeting stores ``due_at``, its next time trigger. The scheduler
claims due meetings (``process_due``); a decision with due nudges hands them down to the
nudges stage (``app.nudges.service.produce``) and is re-evaluated here with what came
back, in the same transaction.

Requests: ``/v1/meetings`` reads, waives, snoozes and schedules the follow-up.
"""

from __future__ import annotations

import bisect
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.crash import crash_point
from app.db.leases import claim_due, work_in_lanes
from app.db.models import Meeting, Rep
from app.errors import InvalidRequest, NotFoundError
from app.meetings import invite
from app.meetings import repository as repo
from app.meetings.repository import facts_of
from app.meetings.schemas import FollowUpOut, MeetingOut, ScheduleIn
from app.nudges import events as nudge_events
from app.nudges import holds
from app.nudges import service as nudges
from app.runtime import Runtime
from connectors.base import CalendarEvent
from policies import history
from policies.classify import (
    EventFacts,
    account_key,
    accounts_of,
    busy_only,
    classify_accounts,
    follow_up_proposals,
    follow_up_responses,
    is_internal,
)
from policies.state import Candidate, Decision, MeetingFacts, WindowClock, decide
from policies.vocabulary import MeetingState, NudgeKind
from policies.zones import check_zone

log = logging.getLogger(__name__)
MEETING_NS = uuid.UUID("5b0f3c1e-6d0a-4a53-9d4b-2f8f7b7f0e11")


def meeting_id(rep_id: str, event_id: str, account: str | None = None) -> str:
    """Stable id: the same event always is the same meeting (nudges stay once per kind).

    An event with several external accounts is a meeting for each: the first account
    tracked keeps the plain id (so a single-account meeting's id never changes), each
    other one has its own (``account`` given).
    """
    key = f"{rep_id}/{event_id}" if account is None else f"{rep_id}/{event_id}#{account}"
    return str(uuid.uuid5(MEETING_NS, key))


@dataclass
class _Touched:
    accounts: set[str]
    lo: datetime | None = None
    hi: datetime | None = None

    def add(self, facts: EventFacts, internal: Sequence[str], rep_email: str) -> None:
        self.accounts |= accounts_of(facts, internal, rep_email)
        self.lo = facts.start if self.lo is None else min(self.lo, facts.start)
        self.hi = facts.start if self.hi is None else max(self.hi, facts.start)


def record_history(
    session: Session,
    rt: Runtime,
    rep: Rep,
    *,
    old: Mapping[str, EventFacts],
    changed: Sequence[CalendarEvent],
    gone: Sequence[EventFacts],
    now: datetime,
    initial: bool,
) -> None:
    """The page's account history (a pure diff), stored by the accounts stage."""
    entries = history.diff(
        old=old,
        changed=[EventFacts.of_event(ev, now) for ev in changed],
        gone=gone,
        internal=rt.settings.internal_domains,
        rep_email=rep.email,
        now=now,
        initial=initial,
    )
    accounts.record_history(session, rep.id, entries, now)


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
    # A private event is kept as busy time only, before anything stores or reads it.
    latest = {ev.event_id: busy_only(ev) for ev in changed}
    old = repo.events_by_id(session, rep.id, [*latest, *removed_ids])
    old_facts = {eid: facts_of(row) for eid, row in old.items()}
    touched = _Touched(accounts=set())
    for facts in old_facts.values():
        touched.add(facts, internal, rep.email)
    gone = [old[eid] for eid in removed_ids if eid in old and eid not in latest]
    if prune:
        stale = [
            r for r in repo.stale_events(session, rep.id, generation) if r.event_id not in latest
        ]
        gone += stale
        for row in stale:
            touched.add(facts_of(row), internal, rep.email)
    # History first, while ``old`` and ``gone`` still hold the state before this change.
    record_history(
        session,
        rt,
        rep,
        old=old_facts,
        changed=list(latest.values()),
        gone=[old_facts.get(r.event_id) or facts_of(r) for r in gone],
        now=now,
        initial=baseline,
    )
    repo.delete_events(session, gone)
    repo.delete_meetings_of_events(session, rep.id, [r.event_id for r in gone])

    policy = rt.policies.for_name(rep.policy)
    existing: dict[str, list[Meeting]] = {}
    for m in repo.meetings_of_events(session, rep.id, list(latest)):
        existing.setdefault(m.event_id, []).append(m)
    own: dict[str, Meeting] = {}
    oldest_tracked = rep.created_at - policy.horizon
    dropped: list[str] = []
    fresh: set[str] = set()
    for ev in latest.values():
        row = repo.upsert_event(
            session, old.get(ev.event_id), rep.id, ev, now=now, generation=generation
        )
        facts = EventFacts.of_event(ev, row.first_seen_at)
        touched.add(facts, internal, rep.email)
        rows = {m.account_domain: m for m in existing.get(ev.event_id, [])}
        prospects = [] if ev.end < oldest_tracked else classify_accounts(facts, internal, rep.email)
        wanted = {p.account for p in prospects}
        dropped += [m.id for account, m in rows.items() if account not in wanted]
        taken = {m.id for m in rows.values()}  # a dropped account's id stays its own
        for prospect in prospects:  # one meeting per external account
            meeting = rows.get(prospect.account)
            if meeting is None:
                mid = meeting_id(rep.id, ev.event_id)
                if mid in taken:
                    mid = meeting_id(rep.id, ev.event_id, prospect.account)
                taken.add(mid)
                fresh.add(mid)
                meeting = repo.add_meeting(
                    session,
                    meeting_id=mid,
                    rep_id=rep.id,
                    event_id=ev.event_id,
                    policy=policy.name,
                    tracked_from=rep.created_at,
                    now=now,
                )
            own[meeting.id] = meeting
            meeting.title = ev.title
            meeting.start = ev.start
            meeting.end = ev.end
            meeting.account_domain = prospect.account
            meeting.external_attendees = list(prospect.external_attendees)
            meeting.ical_uid = ev.ical_uid
            learn_account_zone(session, ev, prospect.account, internal, now)
    repo.delete_meetings(session, dropped)
    repo.flush(session)

    affected = dict(own)
    if touched.accounts and touched.lo is not None and touched.hi is not None:
        for m in repo.meetings_of_accounts_ending_between(
            session, rep.id, touched.accounts, touched.lo - rt.policies.max_horizon, touched.hi
        ):
            affected.setdefault(m.id, m)
    evaluate(session, rt, rep, list(affected.values()), now=now, baseline=baseline, fresh=fresh)
    return len(affected)


def learn_account_zone(
    session: Session, ev: CalendarEvent, account: str, internal: Sequence[str], now: datetime
) -> None:
    """An invite the account's own people organised tells the zone they live in."""
    organizer = ev.organizer_email
    if not ev.time_zone or not organizer or is_internal(organizer, internal):
        return
    if account_key(organizer) != account:
        return
    try:
        zone = check_zone(ev.time_zone)
    except ValueError:
        return  # a legacy or unknown zone name teaches nothing
    accounts.learn_calendar_timezone(session, account, zone, now)


def evaluate(
    session: Session,
    rt: Runtime,
    rep: Rep,
    meetings: Sequence[Meeting],
    *,
    now: datetime,
    baseline: bool = False,
    fresh: frozenset[str] | set[str] = frozenset(),
    was: Mapping[str, MeetingState] | None = None,
) -> dict[str, Decision]:
    """Decide state and due time of ``meetings`` (one rep's) from the stored calendars.

    Each change of state is told to the CRM (``meeting.state_changed``); a meeting first
    seen (``fresh``) tells its first state unless it is ``upcoming``, with no previous one.
    A meeting that is on several registered reps' calendars (same iCalUID, same account)
    is decided once for all of them (``_evaluate_shared``).
    """
    if not meetings:
        return {}
    shared = repo.meetings_sharing(
        session, {(m.ical_uid, m.account_domain) for m in meetings if m.ical_uid}
    )
    groups: dict[tuple[str, str], list[Meeting]] = {}
    for row in shared:
        assert row.ical_uid is not None
        groups.setdefault((row.ical_uid, row.account_domain), []).append(row)
    groups = {k: rows for k, rows in groups.items() if len({r.rep_id for r in rows}) > 1}
    solo = [m for m in meetings if (m.ical_uid, m.account_domain) not in groups]
    touched = [*solo, *(r for rows in groups.values() for r in rows)]
    stages = repo.stages_of(session, {m.account_domain for m in touched})
    out: dict[str, Decision] = {}
    if solo:
        candidates = _candidates(session, rt, rep, solo, rt.policies.max_horizon)
        produced = nudges.produced_keys(session, [m.id for m in solo])
        clocks: dict[str, WindowClock] = {}  # per policy: the rep's week is read once
        for m in solo:
            # Policies per stage: the rep's when it covers the account's stage, else the
            # first that does; none: the meeting is tracked (state, account health), never
            # nudged.
            chosen = rt.policies.for_stage(rep.policy, stages.get(m.account_domain))
            policy = chosen or rt.policies.for_name(rep.policy)
            m.policy = policy.name
            decision = decide(
                meeting_facts(m, produced.get(m.id, set())),
                candidates[m.id],
                policy,
                now,
                can_escalate=bool(rep.manager_email),
                baseline=baseline,
                last_nudge_kind=m.last_nudge_kind,
                window_clock=clocks.get(policy.name)
                or clocks.setdefault(policy.name, nudges.window_clock(policy, rep)),
            )
            if chosen is None:
                decision = _quiet(decision, m.end)
            _record(session, rt, m, decision, now, fresh=fresh, was=was)
            out[m.id] = decision
    for rows in groups.values():
        out.update(
            _evaluate_shared(
                session, rt, rows, stages, now=now, baseline=baseline, fresh=fresh, was=was
            )
        )
    holds.release(session, rt, [m.id for m in touched if m.state in holds.DONE_STATES], now)
    if any(m.due_at is not None and m.due_at <= now for m in touched):
        rt.wake.due(now)
    else:
        soonest = min((m.due_at for m in touched if m.due_at is not None), default=None)
        if soonest is not None:
            rt.wake.due(soonest)
    return out


def _quiet(decision: Decision, end: datetime) -> Decision:
    """The decision without its nudges: the state shows, nothing is due but the end."""
    return replace(
        decision,
        nudges=(),
        pending=(),
        due_at=end if decision.state == MeetingState.UPCOMING else None,
    )


def _record(
    session: Session,
    rt: Runtime,
    m: Meeting,
    decision: Decision,
    now: datetime,
    *,
    fresh: frozenset[str] | set[str],
    was: Mapping[str, MeetingState] | None,
) -> None:
    """Write the decision; tell the CRM when the state changed."""
    previous = (was or {}).get(m.id, m.state)
    write_decision(m, decision, now)
    if m.id in fresh:
        if m.state != MeetingState.UPCOMING:
            state_changed(session, rt, m, None, now)
    elif previous != m.state:
        state_changed(session, rt, m, previous, now)


def _candidates(
    session: Session, rt: Runtime, rep: Rep, meetings: Sequence[Meeting], horizon: timedelta
) -> dict[str, list[Candidate]]:
    """Each meeting's candidate follow-ups on ``rep``'s calendar, within ``horizon``."""
    internal = rt.settings.internal_domains
    lo = min(m.end for m in meetings)
    hi = max(m.end for m in meetings) + horizon
    facts = [facts_of(r) for r in repo.events_starting_between(session, rep.id, lo, hi)]
    starts = [f.start for f in facts]
    # Each event's accounts once, not once per meeting: the pairs are quadratic.
    accounts_by_event = [accounts_of(f, internal, rep.email) for f in facts]
    out: dict[str, list[Candidate]] = {}
    for m in meetings:
        first = bisect.bisect_left(starts, m.end)
        last = bisect.bisect_right(starts, m.end + horizon)
        found: list[Candidate] = []
        out[m.id] = found
        for f, f_accounts in zip(facts[first:last], accounts_by_event[first:last], strict=True):
            if f.event_id == m.event_id or m.account_domain not in f_accounts:
                continue
            if m.ical_uid and f.ical_uid == m.ical_uid:
                continue  # another copy of the meeting itself
            responses = follow_up_responses(f, m.account_domain, internal, rep.email)
            if responses:
                found.append(
                    Candidate(
                        event_id=f.event_id,
                        title=f.title,
                        start=f.start,
                        end=f.end,
                        responses=responses,
                        seen_at=f.seen_at,
                        proposals=follow_up_proposals(f, m.account_domain, internal, rep.email),
                        uid=f.ical_uid,
                        organised=f.organizer_email == rep.email.lower(),
                    )
                )
    return out


def _merge_copies(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One candidate per meeting: copies of one follow-up on several reps' calendars (same
    iCalUID) merge — the organiser's copy, which carries every answer, wins; else each
    attendee's most informative answer."""
    by_uid: dict[str, list[Candidate]] = {}
    out: list[Candidate] = []
    for c in candidates:
        if c.uid is None:
            out.append(c)
        else:
            by_uid.setdefault(c.uid, []).append(c)
    for copies in by_uid.values():
        organiser = next((c for c in copies if c.organised), None)
        if organiser is not None:
            out.append(organiser)
            continue
        responses: dict[str, str] = {}
        for c in copies:
            for email, answer in c.responses.items():
                if responses.get(email, "needs_action") == "needs_action":
                    responses[email] = answer
        first = min(copies, key=lambda c: (c.seen_at, c.event_id))
        proposals = {k: v for c in copies for k, v in c.proposals.items()}
        out.append(replace(first, responses=responses, proposals=proposals))
    return out


def _evaluate_shared(
    session: Session,
    rt: Runtime,
    rows: Sequence[Meeting],
    stages: Mapping[str, str | None],
    *,
    now: datetime,
    baseline: bool,
    fresh: frozenset[str] | set[str],
    was: Mapping[str, MeetingState] | None,
) -> dict[str, Decision]:
    """One meeting on several reps' calendars: one decision for all their rows.

    A follow-up on any of their calendars counts for all; the nudges go to one of them —
    the organiser when registered, else the rep registered first — so only that rep's
    row carries a due time. Every row shows the same state.
    """
    reps = repo.reps_by_id(session, {r.rep_id for r in rows})
    organisers = repo.organizers_of(session, [(r.rep_id, r.event_id) for r in rows])
    lead = min(
        rows,
        key=lambda r: (
            reps[r.rep_id].email != (organisers.get((r.rep_id, r.event_id)) or ""),
            reps[r.rep_id].created_at,
            reps[r.rep_id].id,
        ),
    )
    lead_rep = reps[lead.rep_id]
    chosen = rt.policies.for_stage(lead_rep.policy, stages.get(lead.account_domain))
    policy = chosen or rt.policies.for_name(lead_rep.policy)
    candidates: list[Candidate] = []
    for row in rows:
        candidates += _candidates(session, rt, reps[row.rep_id], [row], policy.horizon)[row.id]
    produced: set[tuple[str, int, int]] = set()
    for keys in nudges.produced_keys(session, [r.id for r in rows]).values():
        produced |= keys
    # The cycle state as far as any copy got (the lead may have just registered).
    source = max(rows, key=lambda r: (r.cycle or 0, r.invite_round or 0, r is lead))
    facts = replace(
        meeting_facts(source, produced),
        tracked_from=lead.tracked_from,
        waived=any(r.state == MeetingState.WAIVED for r in rows),
        snoozed_until=max((r.snoozed_until for r in rows if r.snoozed_until), default=None),
    )
    decision = decide(
        facts,
        _merge_copies(candidates),
        policy,
        now,
        can_escalate=bool(lead_rep.manager_email),
        baseline=baseline,
        last_nudge_kind=source.last_nudge_kind,
        window_clock=nudges.window_clock(policy, lead_rep),
    )
    if chosen is None:
        decision = _quiet(decision, lead.end)
    out: dict[str, Decision] = {}
    for row in rows:
        row.policy = policy.name
        if row is not source:
            row.last_nudge_at = source.last_nudge_at
            row.last_nudge_kind = source.last_nudge_kind
            row.last_nudge_state = source.last_nudge_state
        # The lead's row nudges for all: the others show the state, nothing is due.
        mine = decision if row is lead else replace(decision, nudges=(), pending=(), due_at=None)
        _record(session, rt, row, mine, now, fresh=fresh, was=was)
        out[row.id] = mine
    return out


def state_changed(
    session: Session, rt: Runtime, m: Meeting, previous: str | None, now: datetime
) -> None:
    """Tell the CRM (app/nudges/events.py), in this transaction."""
    nudge_events.meeting_state_changed(
        session,
        rt,
        meeting=to_out(m).model_dump(mode="json"),
        rep_id=m.rep_id,
        previous_state=previous,
        now=now,
    )


FACT_FIELDS = (
    "start",
    "end",
    "tracked_from",
    "snoozed_until",
    "baseline_declined_id",
    "last_nudge_at",
    "last_nudge_state",
    "cycle_started_at",
    "follow_up_key",
    "accept_from",
)
"""What the rules read of a stored meeting under the same name."""


def meeting_facts(m: Meeting, produced: set[tuple[str, int, int]]) -> MeetingFacts:
    return MeetingFacts(
        **{name: getattr(m, name) for name in FACT_FIELDS},
        waived=m.state == MeetingState.WAIVED,
        produced=frozenset(produced),
        previous_state=m.state,
        cycle=m.cycle or 0,
        invite_round=m.invite_round or 0,
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
        "proposals": {
            email: {"start": start.isoformat(), "end": end.isoformat()}
            for email, (start, end) in sorted(c.proposals.items())
        },
    }


def write_decision(m: Meeting, d: Decision, now: datetime) -> None:
    if m.state != d.state:
        log.info(
            "meeting.state_changed", extra={"meeting_id": m.id, "from": m.state, "to": d.state}
        )
    m.state = d.state
    m.follow_up = follow_up_json(d.follow_up)
    m.baseline_declined_id = d.baseline_declined_id
    m.cycle = d.cycle
    m.cycle_started_at = d.cycle_started_at
    m.invite_round = d.invite_round
    m.follow_up_key = d.follow_up_key
    m.accept_from = d.accept_from
    if d.restarted:
        # A new cycle or round: the nudges before it were answered, nothing to escalate.
        m.last_nudge_at = None
        m.last_nudge_kind = None
        m.last_nudge_state = None
    # Nudges due now are produced by the due-meeting job, never inline: one code path.
    m.due_at = now if d.nudges else d.due_at
    m.updated_at = now


# --- time-driven: claim due meetings, hand their due nudges to the nudges stage ---------------


async def process_due(rt: Runtime, *, limit: int = 200) -> int:
    """Claim due meetings and process them; returns how many were processed.

    Meetings are independent (each its own transactions, nudge and outbox rows), so the
    claimed ones go through ``lanes(rt)`` lanes at once: one meeting's free/busy call and
    database round trips overlap the others' instead of adding up.
    """
    now, ids = await claim_due(rt, Meeting, key=Meeting.id, due=Meeting.due_at, limit=limit)
    if ids:
        crash_point("meeting.claimed")
    memo = nudges.BusyMemo()  # one free/busy call per calendar for the batch, mostly
    return await work_in_lanes(
        rt,
        Meeting,
        key=Meeting.id,
        items=ids,
        lanes=lanes(rt),
        claimed_at=now,
        handle=lambda mid: process_meeting(rt, mid, memo),
    )


def lanes(rt: Runtime) -> int:
    """Claimed work handled at once: SQLite has one writer (the lanes overlap the provider
    calls with it); PostgreSQL one lane per database thread."""
    return 4 if rt.db.is_sqlite else rt.db.workers


async def next_due(rt: Runtime) -> datetime | None:
    """When the next meeting is due (None: none is)."""
    return await rt.db.run(repo.earliest_due, rt.clock.now())


async def process_meeting(rt: Runtime, mid: str, memo: nudges.BusyMemo | None = None) -> None:
    """Re-decide a claimed meeting; its nudges and their outbox rows are written in one go."""
    try:
        plan = await rt.db.run(_plan, rt, mid)
        if plan is None:
            return
        context = await nudges.gather_context(rt, plan, memo)
        await rt.db.run(_commit, rt, mid, context)
        crash_point("meeting.decided")
    except Exception:
        log.exception("meeting.process_failed", extra={"meeting_id": mid})
        retry_at = rt.clock.now() + timedelta(seconds=30)
        await rt.db.run(_retry_later, rt, mid, retry_at)


def _plan(session: Session, rt: Runtime, mid: str) -> nudges.Plan | None:
    """First pass: decide; if nothing is due, store the outcome and release the lease."""
    now = rt.clock.now()
    meeting = repo.meeting(session, mid)
    if meeting is None or meeting.lease_owner != rt.instance_id:
        return None
    rep = repo.rep(session, meeting.rep_id)
    assert rep is not None
    decision = evaluate(session, rt, rep, [meeting], now=now)[mid]
    if not decision.nudges:
        repo.release(session, mid, rt.instance_id)
        return None
    return nudges.plan_for(session, rt, rep, meeting, now)


def _commit(session: Session, rt: Runtime, mid: str, context: nudges.Context) -> None:
    """Second pass, one transaction: decide again, hand the due nudges down, next due time."""
    now = rt.clock.now()
    meeting = repo.meeting(session, mid)
    if meeting is None:
        return
    rep = repo.rep(session, meeting.rep_id)
    assert rep is not None
    decision = evaluate(session, rt, rep, [meeting], now=now)[mid]
    for due in decision.nudges:
        nudges.produce(session, rt, rep, meeting, due, context, now)
        if due.kind != NudgeKind.ESCALATION:
            meeting.last_nudge_at = now
            meeting.last_nudge_kind = due.kind
            meeting.last_nudge_state = decision.state
    repo.flush(session)
    evaluate(session, rt, rep, [meeting], now=now)
    repo.release(session, mid, rt.instance_id)


def _retry_later(session: Session, rt: Runtime, mid: str, at: datetime) -> None:
    meeting = repo.meeting(session, mid)
    if meeting is not None:
        meeting.due_at = at
        repo.release(session, mid, rt.instance_id)


# --- /v1/meetings ------------------------------------------------------------------------------


MEETING_FIELDS = (
    "id",
    "rep_id",
    "event_id",
    "title",
    "start",
    "end",
    "account_domain",
    "state",
    "policy",
    "due_at",
    "snoozed_until",
    "waived_reason",
)


def to_out(m: Meeting) -> MeetingOut:
    fu = m.follow_up
    return MeetingOut(
        **{name: getattr(m, name) for name in MEETING_FIELDS},
        external_attendees=list(m.external_attendees),
        follow_up=None
        if fu is None
        else FollowUpOut.model_validate(
            {k: fu[k] for k in ("event_id", "start", "end", "responses")}
        ),
    )


def _get(session: Session, mid: str) -> Meeting:
    meeting = repo.meeting(session, mid)
    if meeting is None:
        raise NotFoundError(f"no meeting with id {mid!r}")
    return meeting


def _rep_of(session: Session, meeting: Meeting) -> Rep:
    rep = repo.rep(session, meeting.rep_id)
    assert rep is not None  # a meeting goes with its rep (cascade)
    return rep


def list_meetings(
    session: Session, *, rep_id: str | None, state: str | None, limit: int, offset: int
) -> list[MeetingOut]:
    if state is not None and state not in tuple(MeetingState):
        raise InvalidRequest(f"state: {state!r} is not one of {', '.join(MeetingState)}")
    if rep_id is not None and repo.rep(session, rep_id) is None:
        raise NotFoundError(f"no rep with id {rep_id!r}")
    return [
        to_out(m)
        for m in repo.list_meetings(
            session,
            rep_id=rep_id,
            state=None if state is None else MeetingState(state),
            limit=limit,
            offset=offset,
        )
    ]


def read(session: Session, mid: str) -> MeetingOut:
    return to_out(_get(session, mid))


def waive(session: Session, rt: Runtime, mid: str, reason: str) -> MeetingOut:
    """No follow-up is wanted: the meeting is ``waived`` and never nudges again."""
    meeting = _get(session, mid)
    now = rt.clock.now()
    previous = meeting.state
    meeting.state = MeetingState.WAIVED
    meeting.waived_reason = reason
    meeting.waived_at = now
    meeting.due_at = None
    meeting.updated_at = now
    holds.release(session, rt, [meeting.id], now)
    if previous != MeetingState.WAIVED:
        state_changed(session, rt, meeting, previous, now)
    # One meeting on several reps' calendars is waived for all of them.
    evaluate(session, rt, _rep_of(session, meeting), [meeting], now=now)
    return to_out(meeting)


def unwaive(session: Session, rt: Runtime, mid: str) -> MeetingOut:
    """Undo a waive: decide the meeting again from its calendar (nothing when not waived)."""
    meeting = _get(session, mid)
    if meeting.state != MeetingState.WAIVED:
        return to_out(meeting)
    now = rt.clock.now()
    # Decided again as an open meeting; the change from ``waived`` is told to the CRM.
    # One meeting on several reps' calendars is unwaived for all of them.
    copies = [meeting]
    if meeting.ical_uid:
        copies += [
            m
            for m in repo.meetings_sharing(session, {(meeting.ical_uid, meeting.account_domain)})
            if m.id != meeting.id and m.state == MeetingState.WAIVED
        ]
    for m in copies:
        m.state = MeetingState.NEEDS_NEXT_STEP if m.end <= now else MeetingState.UPCOMING
        m.waived_reason = None
        m.waived_at = None
    rep = _rep_of(session, meeting)
    evaluate(session, rt, rep, [meeting], now=now, was={m.id: MeetingState.WAIVED for m in copies})
    return to_out(meeting)


def unsnooze(session: Session, rt: Runtime, mid: str) -> MeetingOut:
    """End the snooze now (nothing when not snoozed)."""
    meeting = _get(session, mid)
    if meeting.snoozed_until is not None:
        meeting.snoozed_until = None
        evaluate(session, rt, _rep_of(session, meeting), [meeting], now=rt.clock.now())
    return to_out(meeting)


def snooze(session: Session, rt: Runtime, mid: str, until: datetime) -> MeetingOut:
    """No nudge for this meeting before ``until``."""
    meeting = _get(session, mid)
    now = rt.clock.now()
    if until <= now:
        raise InvalidRequest(f"until: {until.isoformat()} is not in the future")
    meeting.snoozed_until = until
    evaluate(session, rt, _rep_of(session, meeting), [meeting], now=now)
    return to_out(meeting)


def store_sent(
    session: Session,
    rt: Runtime,
    req: invite.SendRequest,
    changed: Sequence[CalendarEvent],
    result: dict[str, Any],
    hold_id: str | None,
    hold_left: bool,
) -> None:
    """The provider's answer onto the synced calendar, the hold settled, ``once_key`` recorded."""
    meeting = _get(session, req.meeting_id)
    rep = _rep_of(session, meeting)
    now = rt.clock.now()
    generation = repo.calendar_generation(session, meeting.rep_id)
    assert generation is not None
    apply_changes(session, rt, rep, list(changed), now=now, generation=generation)
    hold = repo.hold_of(session, meeting.id)
    if hold is not None and hold.status != "gone":
        hold.status = "removing" if hold_left else "gone"
        hold.due_at = now if hold_left else None
        hold.updated_at = now
    if req.once_key is not None:
        repo.record_action(
            session,
            req.once_key,
            meeting_id=meeting.id,
            fingerprint=req.fingerprint,
            result=result,
            now=now,
        )


async def send_follow_up(rt: Runtime, req: invite.SendRequest) -> invite.Sent:
    """Send (or move) the follow-up invitation: the guards, then the provider, then the store."""
    return await invite.send(rt, req, evaluate, store_sent)


async def schedule(
    rt: Runtime, mid: str, body: ScheduleIn, idempotency_key: str | None = None
) -> MeetingOut:
    """Create (or move) the follow-up on the rep's calendar; the provider invites the attendees.

    Without ``body`` the invitation is the one ``send_invite`` sends (agenda, co-attendees,
    video link). The same ``Idempotency-Key`` twice creates one invite and answers the same.
    """
    key = None if idempotency_key is None else f"idem:{idempotency_key}"
    req = invite.SendRequest(
        meeting_id=mid,
        start=body.start,
        end=body.end,
        subject=body.subject,
        body=body.body,
        once_key=key,
        fingerprint=invite.fingerprint(
            mid, body.start.isoformat(), body.end, body.subject, body.body
        ),
        creation_key=key or f"api:{body.start.astimezone(UTC).isoformat()}",
    )
    await send_follow_up(rt, req)
    return await rt.db.run(read, mid)


def prune(session: Session, rt: Runtime) -> int:
    """Forget calendar events and finished meetings older than NEXTSTEP_RETENTION_DAYS."""
    return repo.prune(session, rt.clock.now() - rt.settings.retention)
