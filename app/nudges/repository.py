"""All SQL about nudges (and the CRM events that share their table and outbox)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session

from app.db.leases import insert_ignore, next_time
from app.db.models import Account, CrmEvent, Event, Hold, Meeting, Nudge, Rep
from policies.vocabulary import EVENT_TYPES


def insert(
    session: Session,
    *,
    nudge_id: str,
    dedupe_key: str,
    kind: str,
    rep_id: str | None,
    meeting_id: str | None,
    account_domain: str | None,
    recipient_email: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> bool:
    """Insert-or-ignore under ``dedupe_key``; True when the nudge is new."""
    return insert_ignore(
        session,
        Nudge,
        {
            "id": nudge_id,
            "dedupe_key": dedupe_key,
            "kind": kind,
            "rep_id": rep_id,
            "meeting_id": meeting_id,
            "account_domain": account_domain,
            "recipient_email": recipient_email,
            "payload": payload,
            "created_at": now,
        },
    )


def produced_kinds(session: Session, meeting_ids: Iterable[str]) -> dict[str, set[str]]:
    """The kinds each meeting was nudged with already."""
    ids = list(meeting_ids)
    out: dict[str, set[str]] = {i: set() for i in ids}
    for i in range(0, len(ids), 500):
        rows = session.execute(
            select(Nudge.meeting_id, Nudge.kind).where(Nudge.meeting_id.in_(ids[i : i + 500]))
        )
        for meeting_id, kind in rows:
            if meeting_id is not None:
                out[meeting_id].add(kind)
    return out


def latest_payload(session: Session, meeting_id: str) -> dict[str, Any] | None:
    """The payload of the meeting's most recent nudge."""
    return session.scalar(
        select(Nudge.payload)
        .where(Nudge.meeting_id == meeting_id)
        .order_by(Nudge.created_at.desc())
        .limit(1)
    )


def listed(
    session: Session,
    *,
    rep_id: str | None,
    meeting_id: str | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> list[Nudge]:
    """Nudges, oldest first (CRM events excluded: they are not nudges)."""
    stmt = select(Nudge).where(Nudge.kind.not_in(EVENT_TYPES))
    if rep_id:
        stmt = stmt.where(Nudge.rep_id == rep_id)
    if meeting_id:
        stmt = stmt.where(Nudge.meeting_id == meeting_id)
    if kind:
        stmt = stmt.where(Nudge.kind == kind)
    return list(
        session.scalars(stmt.order_by(Nudge.created_at, Nudge.id).limit(limit).offset(offset))
    )


def rep_exists(session: Session, rep_id: str) -> bool:
    return session.get(Rep, rep_id) is not None


def rep_by_email(session: Session, email: str) -> Rep | None:
    return session.scalars(select(Rep).where(Rep.email == email.lower())).first()


def account(session: Session, domain: str) -> Account | None:
    return session.get(Account, domain)


def busy_events(session: Session, rep_id: str, lo: datetime, hi: datetime) -> list[Event]:
    """The rep's synced events overlapping ``lo``–``hi``, not cancelled, not declined."""
    return list(
        session.scalars(
            select(Event).where(
                Event.rep_id == rep_id,
                Event.start < hi,
                Event.end > lo,
                Event.status != "cancelled",
                Event.rep_response != "declined",
            )
        )
    )


def latest_meeting(session: Session, domain: str, now: datetime) -> Meeting | None:
    """The account's latest meeting that has started (else its next one)."""
    past = session.scalars(
        select(Meeting)
        .where(Meeting.account_domain == domain, Meeting.start <= now)
        .order_by(Meeting.start.desc())
        .limit(1)
    ).first()
    if past is not None:
        return past
    return session.scalars(
        select(Meeting).where(Meeting.account_domain == domain).order_by(Meeting.start).limit(1)
    ).first()


# --- the CRM's event log ------------------------------------------------------------------------


_PENDING_EVENTS = "nextstep.crm_events"
# One lock for the whole log: held from the log rows' insert to the commit, so on
# PostgreSQL the log's order is the order in which its rows become visible.
_LOG_LOCK = 0x4E5345  # "NSE"


def log_event(session: Session, *, event_id: str, type: str, now: datetime) -> None:
    """The event's place in the log (its body is the nudge row of the same id).

    The row is written at the very end of the transaction (``before_commit``), after a
    transaction-scoped lock on PostgreSQL: a reader paging with ``after=`` never sees a
    later ``seq`` commit before an earlier one (which it would then skip for good). The
    lock is held only while committing, never while waiting for anything else.
    """
    session.info.setdefault(_PENDING_EVENTS, []).append((event_id, type, now))


@event.listens_for(Session, "before_commit")
def _write_event_log(session: Session) -> None:
    pending = session.info.pop(_PENDING_EVENTS, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_LOG_LOCK)))
    session.add_all(CrmEvent(event_id=e, type=t, occurred_at=at) for e, t, at in pending)
    session.flush()


@event.listens_for(Session, "after_rollback")
def _forget_event_log(session: Session) -> None:
    session.info.pop(_PENDING_EVENTS, None)


def event_seq(session: Session, event_id: str) -> int | None:
    return session.scalar(select(CrmEvent.seq).where(CrmEvent.event_id == event_id))


def events_after(
    session: Session, *, after_seq: int, type: str | None, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    """Up to ``limit`` events logged after ``after_seq``, in log order, with their bodies."""
    stmt = (
        select(CrmEvent.seq, Nudge.payload)
        .join(Nudge, Nudge.id == CrmEvent.event_id)
        .where(CrmEvent.seq > after_seq)
    )
    if type:
        stmt = stmt.where(CrmEvent.type == type)
    return [
        (seq, payload) for seq, payload in session.execute(stmt.order_by(CrmEvent.seq).limit(limit))
    ]


# --- tentative holds -------------------------------------------------------------------------

OPEN_HOLD = ("wanted", "placed")


def hold(session: Session, meeting_id: str) -> Hold | None:
    return session.get(Hold, meeting_id)


def add_hold(session: Session, row: Hold) -> None:
    session.add(row)


def release_holds(session: Session, meeting_ids: Iterable[str], now: datetime) -> int:
    """Holds of these meetings are to go (their follow-up exists, or they are waived)."""
    ids = list(meeting_ids)
    if not ids:
        return 0
    done = session.execute(
        update(Hold)
        .where(Hold.meeting_id.in_(ids), Hold.status.in_(OPEN_HOLD))
        .values(status="removing", due_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


def earliest_hold(session: Session, now: datetime) -> datetime | None:
    return next_time(session, Hold, Hold.due_at, now)


def meeting_row(session: Session, meeting_id: str) -> Meeting | None:
    return session.get(Meeting, meeting_id)


def rep_row(session: Session, rep_id: str) -> Rep | None:
    return session.get(Rep, rep_id)


def prune(session: Session, before: datetime) -> int:
    """Forget nudges produced before ``before`` (their deliveries go with them)."""
    result = session.execute(
        delete(Nudge).where(Nudge.created_at < before).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
