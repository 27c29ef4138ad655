"""All SQL about nudges (and the CRM events that share their table and outbox)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.leases import insert_ignore
from app.db.models import Account, Event, Meeting, Nudge, Rep
from policies.vocabulary import RISK_CHANGED


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
    cycle: int | None = None,
    round: int | None = None,
) -> bool:
    """Insert-or-ignore under ``dedupe_key`` (and, for a meeting's nudge, its meeting, kind,
    cycle and round); True when the nudge is new."""
    return insert_ignore(
        session,
        Nudge,
        {
            "id": nudge_id,
            "dedupe_key": dedupe_key,
            "cycle": cycle,
            "round": round,
            "kind": kind,
            "rep_id": rep_id,
            "meeting_id": meeting_id,
            "account_domain": account_domain,
            "recipient_email": recipient_email,
            "payload": payload,
            "created_at": now,
        },
    )


def produced_keys(
    session: Session, meeting_ids: Iterable[str]
) -> dict[str, set[tuple[str, int, int]]]:
    """The (kind, cycle, round) each meeting was nudged with already."""
    ids = list(meeting_ids)
    out: dict[str, set[tuple[str, int, int]]] = {i: set() for i in ids}
    for i in range(0, len(ids), 500):
        rows = session.execute(
            select(Nudge.meeting_id, Nudge.kind, Nudge.cycle, Nudge.round).where(
                Nudge.meeting_id.in_(ids[i : i + 500]), Nudge.cycle.is_not(None)
            )
        )
        for meeting_id, kind, cycle, round_ in rows:
            if meeting_id is not None:
                out[meeting_id].add((kind, cycle or 0, round_ or 0))
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
    stmt = select(Nudge).where(Nudge.kind != RISK_CHANGED)
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
