"""All SQL about accounts, their calendar history, CRM signals and computed health."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from app.db.leases import claim, insert_ignore, next_time
from app.db.models import (
    Account,
    AccountHealthRow,
    AccountHistory,
    AccountSignal,
    Meeting,
    Rep,
)


def add_history(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    session.execute(insert(AccountHistory), list(rows))


def mark_due(session: Session, domains: Iterable[str], now: datetime) -> None:
    """Ask a recompute of these accounts' health now (a change happened)."""
    keys = sorted(set(domains))
    for key in keys:
        insert_ignore(
            session,
            AccountHealthRow,
            {
                "domain": key,
                "signals": [],
                "renewal_near": False,
                "worsened": 0,
                "due_at": now,
            },
        )
    if keys:
        session.execute(
            update(AccountHealthRow)
            .where(
                AccountHealthRow.domain.in_(keys),
                or_(AccountHealthRow.due_at.is_(None), AccountHealthRow.due_at > now),
            )
            .values(due_at=now)
            .execution_options(synchronize_session=False)
        )


def claim_due(session: Session, *, now: datetime, owner: str, lease: Any, limit: int) -> list[str]:
    return claim(
        session,
        AccountHealthRow,
        key=AccountHealthRow.domain,
        due=AccountHealthRow.due_at,
        now=now,
        owner=owner,
        lease=lease,
        limit=limit,
    )


def earliest_due(session: Session, now: datetime) -> datetime | None:
    return next_time(session, AccountHealthRow, AccountHealthRow.due_at, now)


def history_of(
    session: Session, domain: str, since: datetime | None = None
) -> list[AccountHistory]:
    stmt = select(AccountHistory).where(AccountHistory.account_domain == domain)
    if since is not None:
        stmt = stmt.where(AccountHistory.at >= since)
    return list(session.scalars(stmt.order_by(AccountHistory.at, AccountHistory.id)))


HISTORY_COLUMNS = (
    AccountHistory.event_id,
    AccountHistory.kind,
    AccountHistory.at,
    AccountHistory.start,
    AccountHistory.end,
    AccountHistory.title,
    AccountHistory.series_id,
    AccountHistory.old_start,
    AccountHistory.actor_side,
    AccountHistory.attendees,
    AccountHistory.cancelled,
)


def history_tuples(session: Session, domain: str) -> list[Any]:
    """The account's history as plain rows (columns of ``HISTORY_COLUMNS``), oldest first."""
    return list(
        session.execute(
            select(*HISTORY_COLUMNS)
            .where(AccountHistory.account_domain == domain)
            .order_by(AccountHistory.at, AccountHistory.id)
        )
    )


def history_tuples_many(session: Session, domains: Sequence[str]) -> dict[str, list[Any]]:
    """``history_tuples`` of several accounts in one query."""
    out: dict[str, list[Any]] = {d: [] for d in domains}
    rows = session.execute(
        select(AccountHistory.account_domain, *HISTORY_COLUMNS)
        .where(AccountHistory.account_domain.in_(list(domains)))
        .order_by(AccountHistory.account_domain, AccountHistory.at, AccountHistory.id)
    )
    for row in rows:
        out[row[0]].append(row[1:])
    return out


def signals_many(
    session: Session, domains: Sequence[str], since: datetime
) -> dict[str, list[AccountSignal]]:
    out: dict[str, list[AccountSignal]] = {d: [] for d in domains}
    for s in session.scalars(
        select(AccountSignal)
        .where(AccountSignal.account_domain.in_(list(domains)), AccountSignal.occurred_at >= since)
        .order_by(AccountSignal.occurred_at)
    ):
        out[s.account_domain].append(s)
    return out


def accounts_many(session: Session, domains: Sequence[str]) -> dict[str, Account]:
    return {
        a.domain: a
        for a in session.scalars(select(Account).where(Account.domain.in_(list(domains))))
    }


def health_many(session: Session, domains: Sequence[str]) -> dict[str, AccountHealthRow]:
    return {
        r.domain: r
        for r in session.scalars(
            select(AccountHealthRow).where(AccountHealthRow.domain.in_(list(domains)))
        )
    }


def signals_of(session: Session, domain: str, since: datetime) -> list[AccountSignal]:
    return list(
        session.scalars(
            select(AccountSignal)
            .where(AccountSignal.account_domain == domain, AccountSignal.occurred_at >= since)
            .order_by(AccountSignal.occurred_at)
        )
    )


def add_signal(
    session: Session, domain: str, kind: str, occurred_at: datetime, note: str | None, now: datetime
) -> AccountSignal:
    row = AccountSignal(
        account_domain=domain, kind=kind, occurred_at=occurred_at, note=note, created_at=now
    )
    session.add(row)
    session.flush()
    return row


def health_rows(
    session: Session, level: str | None, limit: int, offset: int
) -> list[AccountHealthRow]:
    stmt = select(AccountHealthRow).where(AccountHealthRow.computed_at.is_not(None))
    if level is not None:
        stmt = stmt.where(AccountHealthRow.level == level)
    return list(session.scalars(stmt.order_by(AccountHealthRow.domain).limit(limit).offset(offset)))


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


def rep_by_email(session: Session, email: str) -> Rep | None:
    return session.scalars(select(Rep).where(Rep.email == email.lower())).first()


def delete_account(session: Session, domain: str) -> bool:
    """The account, its history, CRM signals and health; True when anything existed."""
    found = False
    for model, column in (
        (AccountHistory, AccountHistory.account_domain),
        (AccountSignal, AccountSignal.account_domain),
        (AccountHealthRow, AccountHealthRow.domain),
        (Account, Account.domain),
    ):
        result = session.execute(
            delete(model).where(column == domain).execution_options(synchronize_session=False)
        )
        found |= bool(result.rowcount)  # type: ignore[attr-defined]
    return found


def prune_history(session: Session, before: datetime) -> int:
    """Forget history and CRM signals older than the retention."""
    n = session.execute(
        delete(AccountHistory)
        .where(AccountHistory.at < before)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.execute(
        delete(AccountSignal)
        .where(AccountSignal.occurred_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(n or 0)


def retry_later(session: Session, domain: str, owner: str, at: datetime) -> None:
    """A recompute failed: hand the account back, due again at ``at``."""
    session.execute(
        update(AccountHealthRow)
        .where(AccountHealthRow.domain == domain, AccountHealthRow.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, due_at=at)
        .execution_options(synchronize_session=False)
    )
