"""All SQL about the outbox: one ``deliveries`` row per nudge and channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.leases import claim, insert_ignore, next_time
from app.db.models import Account, Delivery, Nudge
from policies.vocabulary import DeliveryStatus


@dataclass(frozen=True, kw_only=True, slots=True)
class DueDelivery:
    """A claimed outbox row and the payload it carries, for sending outside the transaction."""

    id: int
    channel: str
    target: str
    attempts: int
    nudge_id: str
    payload: dict[str, Any]


_PENDING = (Delivery.status == DeliveryStatus.PENDING,)


def add(session: Session, nudge_id: str, channel: str, target: str, now: datetime) -> None:
    """One outbox row, due now; nothing when the same (nudge, channel, target) is queued."""
    insert_ignore(
        session,
        Delivery,
        {
            "nudge_id": nudge_id,
            "channel": channel,
            "target": target,
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
        },
    )


def claim_due(
    session: Session, *, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[DueDelivery]:
    """Lease up to ``limit`` pending rows whose attempt is due, with their payloads."""
    ids = claim(
        session,
        Delivery,
        key=Delivery.id,
        due=Delivery.next_attempt_at,
        now=now,
        owner=owner,
        lease=lease,
        limit=limit,
        where=_PENDING,
    )
    if not ids:
        return []
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.channel,
            Delivery.target,
            Delivery.attempts,
            Nudge.id,
            Nudge.payload,
        )
        .join(Nudge, Nudge.id == Delivery.nudge_id)
        .where(Delivery.id.in_(ids))
    )
    return [
        DueDelivery(
            id=d_id, channel=channel, target=target, attempts=attempts, nudge_id=n_id, payload=p
        )
        for d_id, channel, target, attempts, n_id, p in rows
    ]


def leased(session: Session, delivery_id: int, owner: str) -> Delivery | None:
    """The row, when ``owner`` still holds its lease (else someone else took it over)."""
    row = session.get(Delivery, delivery_id)
    return row if row is not None and row.lease_owner == owner else None


def earliest_due(session: Session, now: datetime) -> datetime | None:
    return next_time(session, Delivery, Delivery.next_attempt_at, now, _PENDING)


def of_nudges(session: Session, nudge_ids: list[str]) -> dict[str, list[Delivery]]:
    """The outbox rows of these nudges, by nudge id."""
    out: dict[str, list[Delivery]] = {i: [] for i in nudge_ids}
    for i in range(0, len(nudge_ids), 500):
        for d in session.scalars(
            select(Delivery).where(Delivery.nudge_id.in_(nudge_ids[i : i + 500]))
        ):
            out[d.nudge_id].append(d)
    return out


def crm_context(session: Session, nudge_id: str) -> tuple[str, dict[str, Any], str | None] | None:
    """A nudge's (or event's) kind, payload and its account's ``crm_id``."""
    row = session.execute(
        select(Nudge.kind, Nudge.payload, Account.crm_id)
        .outerjoin(Account, Account.domain == Nudge.account_domain)
        .where(Nudge.id == nudge_id)
    ).first()
    return None if row is None else (row[0], row[1], row[2])
