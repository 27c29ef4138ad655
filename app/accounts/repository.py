"""All SQL about accounts, their calendar history, CRM signals and computed health."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from app.db.leases import claim, insert_ignore, next_time
from app.db.models import Account, AccountHealthRow, AccountHistory, AccountSignal, Meeting, Rep
from policies.signals import HistoryEntry


def add_history(session: Session, rep_id: str, entries: Sequence[HistoryEntry]) -> None:
    """Append history entries the rep's calendar showed (one row each)."""
    if not entries:
        return
    session.execute(
        insert(AccountHistory),
        [
            {
                "account_domain": e.account,
                "rep_id": rep_id,
                "event_id": e.event_id,
                "series_id": e.series_id,
                "kind": e.kind,
                "at": e.at,
                "start": e.start,
                "end": e.end,
                "old_start": e.old_start,
                "title": e.title,
                "actor": e.actor,
                "actor_side": e.actor_side,
                "attendees": dict(e.attendees),
                "cancelled": e.cancelled,
                "detail": None if e.detail is None else dict(e.detail),
            }
            for e in entries
        ],
    )


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


_HISTORY_COLUMNS = (
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
    AccountHistory.actor,
)


def _entry(row: Any) -> HistoryEntry:
    eid, kind, at, start, end, title, series, old_start, side, people, cancelled, actor = row
    return HistoryEntry(
        event_id=eid,
        kind=kind,
        at=at,
        start=start,
        end=end,
        title=title or "",
        series_id=series,
        old_start=old_start,
        actor_side=side,
        attendees=people or {},
        cancelled=bool(cancelled),
        actor=actor,
    )


def history_of(session: Session, domain: str) -> list[HistoryEntry]:
    """The account's history, oldest first (plain columns: no ORM objects to build)."""
    return [
        _entry(row)
        for row in session.execute(
            select(*_HISTORY_COLUMNS)
            .where(AccountHistory.account_domain == domain)
            .order_by(AccountHistory.at, AccountHistory.id)
        )
    ]


def history_many(session: Session, domains: Sequence[str]) -> dict[str, list[HistoryEntry]]:
    """``history_of`` several accounts in one query."""
    out: dict[str, list[HistoryEntry]] = {d: [] for d in domains}
    rows = session.execute(
        select(AccountHistory.account_domain, *_HISTORY_COLUMNS)
        .where(AccountHistory.account_domain.in_(list(domains)))
        .order_by(AccountHistory.account_domain, AccountHistory.at, AccountHistory.id)
    )
    for row in rows:
        out[row[0]].append(_entry(row[1:]))
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


def locales_of(session: Session, emails: Iterable[str]) -> dict[str, str]:
    """The locale of each of these e-mails that is a registered rep (lower-cased keys)."""
    wanted = sorted({e.lower() for e in emails if e})
    if not wanted:
        return {}
    rows = session.execute(select(Rep.email, Rep.locale).where(Rep.email.in_(wanted)))
    return {str(email).lower(): locale for email, locale in rows}


def account(session: Session, domain: str) -> Account | None:
    return session.get(Account, domain)


def rep_timezone_of(session: Session, domain: str, owner_email: str | None) -> str | None:
    """The zone of the account's owner when a rep, else of the rep of its latest meeting."""
    if owner_email:
        zone = session.scalar(select(Rep.timezone).where(Rep.email == owner_email.lower()))
        if zone:
            return zone
    return session.scalar(
        select(Rep.timezone)
        .join(Meeting, Meeting.rep_id == Rep.id)
        .where(Meeting.account_domain == domain)
        .order_by(Meeting.end.desc())
        .limit(1)
    )


def latest_meeting_update(session: Session, domain: str) -> datetime | None:
    """When a meeting of the account last changed (None: the calendars never met it)."""
    return session.scalar(
        select(Meeting.updated_at)
        .where(Meeting.account_domain == domain)
        .order_by(Meeting.updated_at.desc())
        .limit(1)
    )


def learn_calendar_timezone(session: Session, domain: str, zone: str, now: datetime) -> None:
    """Remember the zone the account's own people use (the CRM's ``timezone`` still wins)."""
    row = session.get(Account, domain)
    if row is None:
        row = add_account(session, domain, now)
    if row.calendar_timezone != zone:
        row.calendar_timezone = zone


def add_account(session: Session, domain: str, now: datetime) -> Account:
    row = Account(domain=domain, contacts=[], updated_at=now)
    session.add(row)
    return row


def health_row(session: Session, domain: str) -> AccountHealthRow | None:
    return session.get(AccountHealthRow, domain)


def add_health_row(session: Session, domain: str) -> AccountHealthRow:
    row = AccountHealthRow(domain=domain, signals=[], renewal_near=False, worsened=0)
    session.add(row)
    return row


def flush(session: Session) -> None:
    """Send pending changes, so the queries that follow see them."""
    session.flush()


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
