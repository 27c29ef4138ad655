"""Nudges: compose the payload, write it with its outbox rows in the decision's transaction.

The stage before hands its decisions down: the meetings stage gives a meeting's due nudges
(``plan_for`` → ``gather_context`` outside any transaction → ``produce``), the accounts
stage a worsened health (``produce_account_at_risk``, ``emit_risk_changed``). Each nudge
is inserted under a unique key (insert-or-ignore) — ``<meeting id>:<kind>`` for a
meeting — so however often a decision is replayed (two replicas, a crash and a retry),
it is produced once. Its deliveries (one outbox row per channel) are written in the same
transaction by app/delivery/ and sent later.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Account, Meeting, Rep
from app.delivery import service as delivery
from app.errors import InvalidRequest, NotFoundError
from app.nudges import actions, events, holds
from app.nudges import repository as repo
from app.nudges.compose import NudgeContext, Recipient, compose, compose_account_at_risk
from app.nudges.schemas import DeliveryOut, NudgeOut
from app.runtime import Runtime
from connectors.base import BusyInterval, CalendarRef, ProviderError
from policies.business import (
    WorkWeek,
    account_zone,
    add_business,
    country_of_zone,
    next_working,
    parse_account_hours,
    work_week,
)
from policies.hours import WorkingHours
from policies.model import Policy
from policies.slots import Slot, find_slots, without_own
from policies.state import DueNudge, WindowClock, calendar_clock
from policies.vocabulary import (
    RISK_CHANGED,
    HealthLevel,
    NudgeKind,
    WindowName,
)

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


def local_busy(
    session: Session, rep: Rep, lo: datetime, hi: datetime, *, skip: frozenset[str] = frozenset()
) -> list[tuple[datetime, datetime]]:
    """Busy times from the synced calendar: the fallback when free/busy fails."""
    return [
        (r.start, r.end)
        for r in repo.busy_events(session, rep.id, lo, hi)
        if not (r.all_day and r.event_type == "default") and r.event_id not in skip
    ]


def policy_of(rt: Runtime, meeting: Meeting) -> Policy:
    """The policy the meeting follows (its account's stage chose it; see meetings)."""
    return rt.policies.for_name(meeting.policy)


def rep_week(rep: Rep) -> WorkWeek:
    """The rep's working time: hours, zone and the holidays of its country."""
    return work_week(rep.timezone, WorkingHours.parse(rep.working_hours), rep.country)


def window_clock(policy: Policy, rep: Rep) -> WindowClock:
    """How the policy's windows are counted for this rep: wall clock or working time."""
    if not policy.business:
        return calendar_clock
    week = rep_week(rep)
    return lambda start, window: add_business(start, window, week)


def not_before(policy: Policy, rep: Rep, now: datetime) -> datetime:
    """When a nudge decided ``now`` may reach the rep (or, sharing the week, the manager)."""
    return next_working(now, rep_week(rep)) if policy.business else now


def own_intervals(meeting: Meeting) -> tuple[set[str], list[tuple[datetime, datetime]]]:
    """The meeting's own follow-up: never busy time for its own slot search."""
    fu = meeting.follow_up or {}
    if not fu.get("event_id"):
        return set(), []
    return {fu["event_id"]}, [
        (datetime.fromisoformat(fu["start"]), datetime.fromisoformat(fu["end"]))
    ]


def plan_for(session: Session, rt: Runtime, rep: Rep, meeting: Meeting, now: datetime) -> Plan:
    """What to ask the provider before producing ``meeting``'s due nudges."""
    policy = policy_of(rt, meeting)
    lo, hi = max(now, meeting.end), meeting.end + policy.horizon + policy.follow_up_duration
    return Plan(
        provider=rep.provider,
        calendar=rep.calendar_ref(),
        busy_from=lo,
        busy_until=max(hi, lo + timedelta(minutes=1)),
        local_busy=tuple(local_busy(session, rep, lo, hi)),
    )


class BusyMemo:
    """Free/busy answers shared by the meetings of one claimed batch.

    Meetings due together are mostly one rep's, their windows alike: the first asks the
    provider for its window and ``MEMO_REACH`` more, the others of that calendar whose
    window lies inside are answered from it (busy intervals outside a window change
    nothing in ``find_slots``). A batch lives a few seconds, as long as a plan waited for
    its commit before.
    """

    def __init__(self) -> None:
        self._asked: dict[tuple[str, str], tuple[datetime, datetime, asyncio.Future[Context]]] = {}

    def get(self, plan: Plan) -> asyncio.Future[Context] | None:
        hit = self._asked.get((plan.provider, plan.calendar.rep_id))
        if hit is None or not (hit[0] <= plan.busy_from and plan.busy_until <= hit[1]):
            return None
        return hit[2]

    def put(self, plan: Plan, lo: datetime, hi: datetime) -> asyncio.Future[Context]:
        future: asyncio.Future[Context] = asyncio.get_running_loop().create_future()
        self._asked[(plan.provider, plan.calendar.rep_id)] = (lo, hi, future)
        return future


MEMO_REACH = timedelta(days=1)


async def _free_busy(rt: Runtime, plan: Plan, lo: datetime, hi: datetime) -> Context:
    try:
        provider = rt.provider(plan.provider)
        busy: list[BusyInterval] = await provider.free_busy(plan.calendar, lo, hi)
        return Context(busy=tuple((b.start, b.end) for b in busy), busy_source="provider")
    except (ProviderError, Exception) as err:  # noqa: BLE001 - any failure: fall back
        log.warning(
            "nudge.free_busy_failed", extra={"rep_id": plan.calendar.rep_id, "error": str(err)}
        )
        return Context(busy=plan.local_busy, busy_source="local")


async def gather_context(rt: Runtime, plan: Plan, memo: BusyMemo | None = None) -> Context:
    """Free/busy from the provider (outside any transaction); the synced calendar if it fails.

    With a ``memo``, a calendar asked already for a window covering this one is not asked
    again.
    """
    if memo is None:
        return await _free_busy(rt, plan, plan.busy_from, plan.busy_until)
    asked = memo.get(plan)
    if asked is not None:
        try:
            got = await asyncio.shield(asked)
        except asyncio.CancelledError:
            if not asked.cancelled():
                raise  # this task is cancelled, not the one that asked
            return await _free_busy(rt, plan, plan.busy_from, plan.busy_until)
        # The provider failed for that one: this meeting falls back to its own window.
        if got.busy_source != "provider":
            return Context(busy=plan.local_busy, busy_source="local")
        return got
    hi = plan.busy_until + MEMO_REACH
    future = memo.put(plan, plan.busy_from, hi)
    try:
        got = await _free_busy(rt, plan, plan.busy_from, hi)
    except BaseException:
        future.cancel()  # whoever waits on it asks on its own
        raise
    future.set_result(got)
    return got


def suggest_slots(
    rt: Runtime,
    rep: Rep,
    meeting: Meeting,
    account: Account | None,
    busy: Any,
    now: datetime,
    *,
    others: Sequence[tuple[datetime, datetime]] = (),
) -> list[Slot]:
    """Slots by policies/slots.py: both sides' working days (holidays), hours and lunch,
    ``slot_buffer`` around busy time; the meeting's own follow-up is not busy for them.

    ``others``: the rep's synced events besides the meeting's own, put back where cutting
    the own follow-up out of a merged free/busy answer would free them.
    """
    policy = policy_of(rt, meeting)
    _, own = own_intervals(meeting)
    if own:
        busy = without_own(busy, own, others)
    zone = prospect_timezone(rep, account)
    # Leave the rep time to read the nudge (under quiet hours: once it arrives) and act on it.
    read_at = not_before(policy, rep, now) + SLOT_LEAD
    return find_slots(
        meeting_end=meeting.end,
        now=read_at,
        horizon=policy.horizon,
        duration=policy.follow_up_duration,
        busy=busy,
        rep_tz=rep.timezone,
        rep_hours=WorkingHours.parse(rep.working_hours),
        prospect_tz=zone,
        prospect_hours=parse_account_hours(account.working_hours if account else None),
        min_gap=min(timedelta(hours=12), policy.horizon / 4),
        rep_country=rep.country or country_of_zone(rep.timezone),
        prospect_country=(account.country if account else None) or country_of_zone(zone),
        lunch=policy.lunch,
        buffer=policy.slot_buffer,
    )


def prospect_timezone(rep: Rep, account: Account | None) -> str:
    """The account's zone: the CRM's, else its people's own (calendar), else the rep's."""
    zone, _ = account_zone(
        account.timezone if account else None,
        account.calendar_timezone if account else None,
        rep.timezone,
    )
    return zone or rep.timezone


def meeting_json(m: Meeting) -> dict[str, Any]:
    """The contract's ``meeting`` of a nudge payload."""
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
    policy = policy_of(rt, meeting)
    account = repo.account(session, meeting.account_domain)
    skip, own = own_intervals(meeting)
    others = (
        local_busy(
            session, rep, min(a for a, _ in own), max(b for _, b in own), skip=frozenset(skip)
        )
        if own
        else []
    )
    lo, hi = max(now, meeting.end), meeting.end + policy.horizon + policy.follow_up_duration
    local = [(r.event_id, (r.start, r.end)) for r in repo.busy_events(session, rep.id, lo, hi)]
    busy = holds.without_own_hold(session, meeting, list(context.busy), local)
    slots = suggest_slots(rt, rep, meeting, account, busy, now, others=others)
    clock = window_clock(policy, rep)
    follow_up = meeting.follow_up or {}
    escalated = due.kind == NudgeKind.ESCALATION
    window_name, window, closed_at = due.window_name, due.window, due.window_closed_at
    if escalated:
        # The manager reads about the window that passed for the unanswered nudge.
        if due.escalated_kind == NudgeKind.NO_NEXT_STEP:
            window_name, window = WindowName.INVITE_WITHIN, policy.invite_within
            closed_at = clock(meeting.end, policy.invite_within)
        elif due.escalated_kind == NudgeKind.NOT_ACCEPTED:
            window_name, window, closed_at = WindowName.ACCEPT_WITHIN, policy.accept_within, None
        else:
            window_name, window, closed_at = None, None, None
    composed = compose(
        NudgeContext(
            kind=due.kind,
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
            window_name=window_name,
            window=window,
            window_closed_at=closed_at,
            follow_up_title=follow_up.get("title"),
            follow_up_start=datetime.fromisoformat(follow_up["start"]) if follow_up else None,
            escalated_kind=due.escalated_kind,
            nudged_at=meeting.last_nudge_at if escalated else None,
        )
    )
    nudge_id = str(uuid.uuid4())
    recipient = rep.manager_email if escalated else rep.email
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
        "recipient": recipient,
        "busy_source": context.busy_source,
        "prospect_timezone": prospect_timezone(rep, account),
        "locale": "fr" if rep.locale == "fr" else "en",
    }
    if slots:
        locale = "fr" if rep.locale == "fr" else "en"
        payload["actions"] = actions.actions_for(
            rt.keys,
            rt.settings.public_url,
            nudge_id=nudge_id,
            slots=slots,
            expires_at=meeting.end + policy.horizon,
            locale=locale,
            rep_timezone=rep.timezone,
        )
    created = repo.insert(
        session,
        nudge_id=nudge_id,
        dedupe_key=f"{meeting.id}:{due.kind}",
        kind=due.kind,
        rep_id=rep.id,
        meeting_id=meeting.id,
        account_domain=meeting.account_domain,
        recipient_email=recipient,
        payload=payload,
        now=now,
    )
    if not created:
        return None
    delivery.enqueue(session, rt, nudge_id, recipient, now, not_before=not_before(policy, rep, now))
    if policy.hold and slots and not escalated:
        holds.want(session, rep, meeting, slots[0], nudge_id, meeting.end + policy.horizon, now)
        rt.wake.due(now)
    log.info(
        "nudge.produced", extra={"nudge_id": nudge_id, "kind": due.kind, "meeting_id": meeting.id}
    )
    return nudge_id


def produced_kinds(session: Session, meeting_ids: Iterable[str]) -> dict[str, set[str]]:
    """The kinds each of these meetings was nudged with already."""
    return repo.produced_kinds(session, meeting_ids)


def latest_draft(session: Session, meeting_id: str) -> dict[str, Any]:
    """The draft invite of the meeting's latest nudge (empty when it had none)."""
    return (repo.latest_payload(session, meeting_id) or {}).get("draft_invite") or {}


# --- account health: the owner's nudge and the CRM's event -----------------------------------


def produce_account_at_risk(
    session: Session,
    rt: Runtime,
    *,
    health: dict[str, Any],
    previous: str | None,
    seq: int,
    owner_email: str,
    account_name: str | None,
    recipients: Sequence[Recipient],
    now: datetime,
) -> str | None:
    """Write the owner's nudge and its outbox rows; None when this worsening was sent.

    ``meeting`` of the payload is the account's latest meeting (or null); the owner is
    addressed in their locale when they are a registered rep.
    """
    owner = repo.rep_by_email(session, owner_email)
    meeting = repo.latest_meeting(session, health["domain"], now)
    account = repo.account(session, health["domain"])
    zone = candid_timezone(owner, account)
    duration, slots = candid_slots(session, rt, owner, account, zone, now)
    message, draft = compose_account_at_risk(
        health=health,
        previous=previous,
        account_name=account_name,
        locale=owner.locale if owner is not None else "en",
        owner_email=owner_email,
        recipients=list(recipients),
        language=draft_language(recipients, account),
        slots=tuple(slots),
        timezone=zone,
        duration=duration,
        calendar_checked=owner is not None,
    )
    nudge_id = str(uuid.uuid4())
    payload: dict[str, Any] = {
        "id": nudge_id,
        "kind": NudgeKind.ACCOUNT_AT_RISK,
        "created_at": now.isoformat(),
        "rep": {
            "id": owner.id if owner else None,
            "email": owner_email,
            "timezone": owner.timezone if owner else None,
        },
        "meeting": meeting_json(meeting) if meeting is not None else None,
        "suggested_slots": [
            {"start": slot.start.isoformat(), "end": slot.end.isoformat()} for slot in slots
        ],
        "draft_invite": draft,
        "message": message,
        "account": health,
        # Extensions beyond the contract's payload.
        "previous_level": previous or HealthLevel.HEALTHY,
        "recipient": owner_email,
    }
    created = repo.insert(
        session,
        nudge_id=nudge_id,
        dedupe_key=f"account:{health['domain']}:{health['level']}:{seq}",
        kind=NudgeKind.ACCOUNT_AT_RISK,
        rep_id=owner.id if owner else None,
        meeting_id=meeting.id if meeting is not None else None,
        account_domain=health["domain"],
        recipient_email=owner_email,
        payload=payload,
        now=now,
    )
    if not created:
        return None
    # A registered owner under clock: business hears of it in working time, like any nudge.
    later = not_before(rt.policies.for_name(owner.policy), owner, now) if owner else None
    delivery.enqueue(session, rt, nudge_id, owner_email, now, not_before=later)
    log.info(
        "nudge.produced",
        extra={
            "nudge_id": nudge_id,
            "kind": NudgeKind.ACCOUNT_AT_RISK,
            "account": health["domain"],
        },
    )
    return nudge_id


CANDID_CALL = timedelta(minutes=20)  # the candid conversation: at least this long


def candid_timezone(owner: Rep | None, account: Account | None) -> str:
    """Where the candid note's slot is written: the account's zone (the CRM's, else its
    people's own), else the owner's."""
    zone, _ = account_zone(
        account.timezone if account else None,
        account.calendar_timezone if account else None,
        owner.timezone if owner is not None else None,
    )
    return zone or (owner.timezone if owner is not None else "UTC")


def candid_slots(
    session: Session,
    rt: Runtime,
    owner: Rep | None,
    account: Account | None,
    zone: str,
    now: datetime,
) -> tuple[timedelta, list[Slot]]:
    """Slots for the candid conversation, like every draft's: free on the owner's synced
    calendar (when the owner is a registered rep), inside both sides' working hours, within
    the owner's policy horizon, by the same rules as every slot (holidays, lunch, buffer);
    the account's people on their own working hours in ``zone``."""
    policy = rt.policies.for_name(owner.policy if owner is not None else None)
    duration = max(policy.follow_up_duration, CANDID_CALL)
    start = now + SLOT_LEAD
    busy = local_busy(session, owner, start, start + policy.horizon) if owner is not None else []
    slots = find_slots(
        meeting_end=now,
        now=start,
        horizon=policy.horizon,
        duration=duration,
        busy=busy,
        rep_tz=owner.timezone if owner is not None else zone,
        rep_hours=WorkingHours.parse(owner.working_hours if owner is not None else None),
        prospect_tz=zone,
        prospect_hours=parse_account_hours(account.working_hours if account else None),
        min_gap=min(timedelta(hours=12), policy.horizon / 4),
        rep_country=(owner.country or country_of_zone(owner.timezone)) if owner else None,
        prospect_country=(account.country if account else None) or country_of_zone(zone),
        lunch=policy.lunch,
        buffer=policy.slot_buffer,
    )
    return duration, slots


def draft_language(recipients: Sequence[Recipient], account: Account | None) -> str:
    """The candid note's language: the recipients' when the CRM gave one they share, else
    the account's, else US English."""
    spoken = {r.language for r in recipients if r.language}
    if len(spoken) == 1:
        return spoken.pop()
    if account is not None and account.language in ("en", "fr"):
        return account.language
    return "en"


def emit_risk_changed(
    session: Session,
    rt: Runtime,
    *,
    health: dict[str, Any],
    previous: str | None,
    now: datetime,
) -> str | None:
    """The CRM's signed ``account.risk_changed`` event (app/nudges/events.py)."""
    return events.record(
        session,
        rt,
        type=RISK_CHANGED,
        fields={
            "kind": RISK_CHANGED,  # as before: receivers of the first version read it
            "account": health,
            "previous_level": previous,
        },
        dedupe_key=f"account:{health['domain']}:changed:{now.isoformat()}:{health['level']}",
        rep_id=None,
        account_domain=health["domain"],
        now=now,
    )


# --- GET /v1/nudges ------------------------------------------------------------------------------


def list_nudges(
    session: Session,
    *,
    rep_id: str | None,
    meeting_id: str | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> list[NudgeOut]:
    """Nudges oldest first, each with how its deliveries went."""
    if kind is not None and kind not in tuple(NudgeKind):
        raise InvalidRequest(f"kind: {kind!r} is not a nudge kind ({', '.join(NudgeKind)})")
    if rep_id is not None and not repo.rep_exists(session, rep_id):
        raise NotFoundError(f"no rep with id {rep_id!r}")
    nudges = repo.listed(
        session, rep_id=rep_id, meeting_id=meeting_id, kind=kind, limit=limit, offset=offset
    )
    attempts = delivery.attempts_of(session, [n.id for n in nudges])
    return [
        NudgeOut.of(
            n.payload, [DeliveryOut.model_validate(a, from_attributes=True) for a in attempts[n.id]]
        )
        for n in nudges
    ]


def prune(session: Session, rt: Runtime) -> int:
    """Forget nudges older than NEXTSTEP_RETENTION_DAYS."""
    return repo.prune(session, rt.clock.now() - rt.settings.retention)
