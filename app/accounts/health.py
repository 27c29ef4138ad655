"""Account health: compute it from the account's history, store it, nudge when it worsens.

Incremental: ``history.record`` marks an account due (``account_health.due_at``) whenever a
meeting with it changes, and so do CRM updates and signals; ``recompute_due`` claims due
accounts with leases (replicas share the work) and recomputes each in its own
transaction, which also writes the ``account_at_risk`` nudge and the ``account.risk_changed``
event when the level changed. Each recompute sets the next one ``recompute_every`` later:
that is the daily recompute (time alone moves signals: a silence grows).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.accounts import repository as repo
from app.db.leases import keep_going, release
from app.db.models import Account, AccountHealthRow, AccountHistory, AccountSignal
from app.errors import NotFoundError
from app.runtime import Runtime
from policies.signals import (
    DECIDING_ROLES,
    Contact,
    CrmSignal,
    Health,
    HistoryEntry,
    assess,
    severity_label,
    worse,
)

log = logging.getLogger(__name__)


def entry_of(row: AccountHistory) -> HistoryEntry:
    return HistoryEntry(
        event_id=row.event_id,
        kind=row.kind,
        at=row.at,
        start=row.start,
        end=row.end,
        title=row.title,
        series_id=row.series_id,
        old_start=row.old_start,
        actor_side=row.actor_side,
        attendees=row.attendees or {},
        cancelled=row.cancelled,
    )


def contacts_of(account: Account | None) -> list[Contact]:
    if account is None:
        return []
    return [
        Contact(email=str(c["email"]).lower(), role=c.get("role") or "user", name=c.get("name"))
        for c in account.contacts or []
    ]


def renewal_of(account: Account | None) -> date | None:
    if account is None or not account.renewal_date:
        return None
    return date.fromisoformat(account.renewal_date)


@dataclass(frozen=True, kw_only=True, slots=True)
class Loaded:
    """What computing one account's health reads: loaded one by one or a batch at a time."""

    account: Account | None
    history: list[Any]  # rows of repo.HISTORY_COLUMNS
    crm: list[AccountSignal]


def load(session: Session, rt: Runtime, domain: str, now: datetime) -> Loaded:
    since = now - rt.policies.account_signals.lookback
    return Loaded(
        account=session.get(Account, domain),
        history=repo.history_tuples(session, domain),
        crm=repo.signals_of(session, domain, since),
    )


def load_many(
    session: Session, rt: Runtime, domains: list[str], now: datetime
) -> dict[str, Loaded]:
    """Three queries for a whole batch of accounts."""
    since = now - rt.policies.account_signals.lookback
    accounts = repo.accounts_many(session, domains)
    history = repo.history_tuples_many(session, domains)
    crm = repo.signals_many(session, domains, since)
    return {d: Loaded(account=accounts.get(d), history=history[d], crm=crm[d]) for d in domains}


def compute(
    session: Session, rt: Runtime, domain: str, now: datetime, loaded: Loaded | None = None
) -> tuple[Health, Account | None]:
    """The account's health at ``now`` from what is stored (no writes)."""
    data = loaded or load(session, rt, domain, now)
    entries = [
        HistoryEntry(
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
        )
        for eid, kind, at, start, end, title, series, old_start, side, people, cancelled in data.history
    ]
    crm = [CrmSignal(kind=s.kind, occurred_at=s.occurred_at, note=s.note) for s in data.crm]
    health = assess(
        entries,
        contacts=contacts_of(data.account),
        renewal=renewal_of(data.account),
        crm=crm,
        policy=rt.policies.account_signals,
        now=now,
    )
    return health, data.account


def _iso(value: datetime | date) -> str:
    return value.isoformat()


def signals_json(health: Health) -> list[dict[str, Any]]:
    return [
        {
            "kind": s.kind,
            "severity": severity_label(s.severity),
            "since": _iso(s.since),
            "evidence": list(s.evidence),
            "explanation": s.explanation,
            # Extensions: the weight of the evidence, and what it took off the score.
            "severity_value": round(s.severity, 2),
            "points": points,
            "details": dict(s.details),
        }
        for s, points in health.signals
    ]


def health_json(
    domain: str,
    health: Health,
    account: Account | None,
    computed_at: datetime,
    previous: str | None = None,
) -> dict[str, Any]:
    return {
        "domain": domain,
        "score": health.score,
        "level": health.level,
        "signals": signals_json(health),
        "computed_at": computed_at.isoformat(),
        # Extensions.
        "name": account.name if account else None,
        "stage": account.stage if account else None,
        "owner_email": account.owner_email if account else None,
        "renewal_date": account.renewal_date if account else None,
        "renewal_near": health.renewal_near,
        "previous_level": previous,
    }


def row_json(session: Session, row: AccountHealthRow) -> dict[str, Any]:
    account = session.get(Account, row.domain)
    assert row.computed_at is not None
    return {
        "domain": row.domain,
        "score": row.score,
        "level": row.level,
        "signals": row.signals,
        "computed_at": row.computed_at.isoformat(),
        "name": account.name if account else None,
        "stage": account.stage if account else None,
        "owner_email": account.owner_email if account else None,
        "renewal_date": account.renewal_date if account else None,
        "renewal_near": row.renewal_near,
        "previous_level": row.previous_level,
    }


def recipients_of(account: Account | None, health: Health) -> list[Any]:
    """The decision makers (champions when none is on record) the candid note goes to."""
    from app.nudges.account_risk import Recipient

    contacts = contacts_of(account)
    for roles in (("decision_maker",), DECIDING_ROLES):
        chosen = [Recipient(email=c.email, name=c.name) for c in contacts if c.role in roles]
        if chosen:
            return chosen
    return []


def recompute(
    session: Session,
    rt: Runtime,
    domain: str,
    now: datetime,
    *,
    row: AccountHealthRow | None = None,
    loaded: Loaded | None = None,
) -> dict[str, Any]:
    """Compute, store; when the level changed, the event (and the nudge when it worsened)."""
    from app.nudges.account_risk import emit_risk_changed, produce_account_at_risk

    row = row or session.get(AccountHealthRow, domain)
    if row is None:
        row = AccountHealthRow(domain=domain, signals=[], renewal_near=False, worsened=0)
        session.add(row)
    health, account = compute(session, rt, domain, now, loaded)
    previous = row.level
    doc = health_json(domain, health, account, now, previous=previous)
    changed = (
        previous is not None
        and previous != health.level
        or (previous is None and health.level != "healthy")
    )
    if changed:
        row.previous_level = previous
        doc["previous_level"] = previous
    row.score, row.level, row.signals = health.score, health.level, doc["signals"]
    row.renewal_near, row.computed_at = health.renewal_near, now
    row.due_at = now + rt.policies.account_signals.recompute_every
    if changed:
        log.info(
            "account.level_changed",
            extra={"account": domain, "from": previous, "to": health.level, "score": health.score},
        )
        emit_risk_changed(session, rt, health=doc, previous=previous, now=now)
    if worse(health.level, previous):
        row.worsened += 1
        owner_email = account.owner_email if account else None
        if owner_email:
            produce_account_at_risk(
                session,
                rt,
                health=doc,
                previous=previous,
                seq=row.worsened,
                owner_email=owner_email,
                owner=repo.rep_by_email(session, owner_email),
                account_name=account.name if account else None,
                recipients=recipients_of(account, health),
                meeting=repo.latest_meeting(session, domain, now),
                now=now,
            )
    session.flush()
    return doc


BATCH = 50
RETRY_AFTER = timedelta(minutes=5)


def _recompute_claimed(session: Session, rt: Runtime, domains: list[str]) -> None:
    """Recompute claimed accounts in one transaction, their data read a batch at a time."""
    now = rt.clock.now()
    rows = {
        d: r
        for d, r in repo.health_many(session, domains).items()
        if r.lease_owner == rt.instance_id
    }
    mine = sorted(rows)
    loaded = load_many(session, rt, mine, now)
    for domain in mine:
        recompute(session, rt, domain, now, row=rows[domain], loaded=loaded[domain])
        rows[domain].lease_owner, rows[domain].lease_until = None, None


async def recompute_due(rt: Runtime, *, limit: int = 200) -> int:
    """Claim accounts whose health is due and recompute them; returns how many.

    A batch of accounts shares one transaction; when it fails, its accounts are redone one
    by one, so one bad account does not hold the others back.
    """
    now = rt.clock.now()
    domains = await rt.db.run(
        lambda s: repo.claim_due(s, now=now, owner=rt.instance_id, lease=rt.lease, limit=limit)
    )
    for i in range(0, len(domains), BATCH):
        if not keep_going(rt, now):  # shutting down, or the lease is half gone: hand back
            await rt.db.run(
                release,
                AccountHealthRow,
                key=AccountHealthRow.domain,
                keys=domains[i:],
                owner=rt.instance_id,
            )
            return i
        batch = domains[i : i + BATCH]
        try:
            await rt.db.run(_recompute_claimed, rt, batch)
            continue
        except Exception:
            log.warning("account.health_batch_failed", extra={"accounts": len(batch)})
        for domain in batch:
            try:
                await rt.db.run(_recompute_claimed, rt, [domain])
            except Exception:
                log.exception("account.health_failed", extra={"account": domain})
                await rt.db.run(repo.retry_later, domain, rt.instance_id, now + RETRY_AFTER)
    return len(domains)


async def next_due(rt: Runtime) -> datetime | None:
    return await rt.db.run(repo.earliest_due, rt.clock.now())


def read(session: Session, rt: Runtime, domain: str) -> dict[str, Any]:
    """The stored health; computed afresh (nothing written) when a change is pending."""
    now = rt.clock.now()
    row = session.get(AccountHealthRow, domain)
    if row is not None and row.computed_at is not None and (row.due_at is None or row.due_at > now):
        return row_json(session, row)
    account = session.get(Account, domain)
    if row is None and account is None:
        raise NotFoundError(f"no account {domain!r}: neither put by the CRM nor met on a calendar")
    health, account = compute(session, rt, domain, now)
    return health_json(domain, health, account, now, previous=row.level if row else None)


def list_by_level(
    session: Session, level: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    return [row_json(session, r) for r in repo.health_rows(session, level, limit, offset)]


def prune(session: Session, rt: Runtime) -> int:
    """Forget history older than the retention (``account_signals.retention``)."""
    return repo.prune_history(session, rt.clock.now() - rt.policies.account_signals.retention)
