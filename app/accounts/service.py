"""Accounts: what the CRM tells us, the history the calendars show, and the health of each.

The CRM puts accounts (prospect companies, or free-mail persons) and posts signals. The
meetings stage hands down each page's account history (``record_history``: entries of
policies/history.py), and that marks the accounts' health due. Health is incremental:
``recompute_due`` claims due accounts with leases (replicas share the work) and recomputes
each from what the pipeline stored, in a transaction that also hands the change down to
the nudges stage — the ``account.risk_changed`` event, and the ``account_at_risk`` nudge
when the level worsened. Each recompute sets the next one ``recompute_every`` later: that
is the daily recompute (time alone moves signals: a silence grows).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.accounts import repository as repo
from app.accounts.schemas import AccountIn, AccountOut, ContactOut, HealthOut, SignalIn, SignalOut
from app.db.leases import keep_going, release
from app.db.models import Account, AccountHealthRow, AccountSignal
from app.errors import InvalidRequest, NotFoundError
from app.nudges import service as nudges
from app.nudges.compose import Recipient
from app.runtime import Runtime
from policies.business import account_zone, country_of_zone, parse_account_hours
from policies.classify import FREE_MAIL_DOMAINS
from policies.hours import WorkingHours, check_timezone
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
from policies.vocabulary import HealthLevel

log = logging.getLogger(__name__)
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
BATCH = 50
RETRY_AFTER = timedelta(minutes=5)


# --- what the CRM tells us -------------------------------------------------------------------


def normalize_key(raw: str) -> str:
    """An account key: a domain, or a whole address on a free-mail domain."""
    key = raw.strip().lower()
    if "@" in key:
        local, _, domain = key.rpartition("@")
        if not local or not DOMAIN.match(domain):
            raise InvalidRequest(f"domain: {raw!r} is not a domain or e-mail address")
        if domain not in FREE_MAIL_DOMAINS:
            return domain
        return key
    if not DOMAIN.match(key):
        raise InvalidRequest(f"domain: {raw!r} is not a domain (e.g. acme.com)")
    return key


def zone_of(session: Session, a: Account | None, rep_timezone: str | None = None) -> Zoned:
    """The account's zone and its source (crm | calendar | rep), country and hours."""
    if a is not None and not a.timezone and not a.calendar_timezone and rep_timezone is None:
        rep_timezone = repo.rep_timezone_of(session, a.domain, a.owner_email)
    zone, source = account_zone(
        a.timezone if a else None, a.calendar_timezone if a else None, rep_timezone
    )
    country = (a.country if a else None) or country_of_zone(zone)
    hours = parse_account_hours(a.working_hours if a else None)
    return Zoned(zone=zone, source=source, country=country, hours=hours)


@dataclass(frozen=True, kw_only=True, slots=True)
class Zoned:
    zone: str | None
    source: str | None
    country: str | None
    hours: WorkingHours


ACCOUNT_FIELDS = ("domain", "name", "crm_id", "stage", "owner_email", "language", "updated_at")


def to_out(a: Account, session: Session) -> AccountOut:
    zoned = zone_of(session, a)
    return AccountOut(
        **{name: getattr(a, name) for name in ACCOUNT_FIELDS},
        timezone=zoned.zone,
        timezone_source=zoned.source,
        country=zoned.country,
        working_hours=zoned.hours.to_dict(),
        renewal_date=date.fromisoformat(a.renewal_date) if a.renewal_date else None,
        contacts=[ContactOut.model_validate(c) for c in a.contacts or []],
    )


def upsert(session: Session, rt: Runtime, raw_domain: str, body: AccountIn) -> AccountOut:
    """Create or update; only the fields given are changed."""
    key = normalize_key(raw_domain)
    if body.timezone is not None:
        try:
            check_timezone(body.timezone, field="timezone")
        except ValueError as err:
            raise InvalidRequest(str(err)) from err
    if body.working_hours is not None:
        try:
            body.working_hours = parse_account_hours(body.working_hours).to_dict()
        except ValueError as err:
            raise InvalidRequest(str(err)) from err
    account = repo.account(session, key) or repo.add_account(session, key, rt.clock.now())
    given = body.model_dump(exclude_unset=True, mode="json")
    for field, value in given.items():
        setattr(account, field, value if value is not None or field != "contacts" else [])
    account.updated_at = rt.clock.now()
    repo.flush(session)
    repo.mark_due(session, [key], rt.clock.now())  # stage, contacts, renewal move the health
    return to_out(account, session)


def read(session: Session, raw_domain: str) -> AccountOut:
    """What the CRM said of the account, with the zone in force. An account the CRM never
    named but the calendars met is shown too (its zone then is its rep's); a GET writes
    nothing."""
    key = normalize_key(raw_domain)
    account = repo.account(session, key)
    if account is None:
        met = repo.latest_meeting_update(session, key)
        if met is None:
            raise NotFoundError(f"no account {key!r}")
        account = Account(domain=key, contacts=[], updated_at=met)  # transient, never added
    return to_out(account, session)


def add_signal(session: Session, rt: Runtime, raw_domain: str, body: SignalIn) -> SignalOut:
    """Store a CRM signal; the account's health is recomputed with it."""
    key = normalize_key(raw_domain)
    now = rt.clock.now()
    row = repo.add_signal(session, key, body.kind, body.occurred_at, body.note, now)
    repo.mark_due(session, [key], now)
    return SignalOut(
        id=row.id, domain=key, kind=row.kind, occurred_at=row.occurred_at, note=row.note
    )


def delete(session: Session, raw_domain: str) -> None:
    """The account and everything known about it: history, CRM signals, health."""
    key = normalize_key(raw_domain)
    if not repo.delete_account(session, key):
        raise NotFoundError(f"no account {key!r}")


# --- what the calendars show ---------------------------------------------------------------


def learn_calendar_timezone(session: Session, domain: str, zone: str, now: datetime) -> None:
    """The zone the account's own people put on the invites they organise."""
    repo.learn_calendar_timezone(session, domain, zone, now)


def record_history(
    session: Session, rep_id: str, entries: Sequence[HistoryEntry], now: datetime
) -> None:
    """Store a page's history entries (in the page's transaction); their accounts are due."""
    if entries:
        repo.add_history(session, rep_id, entries)
        repo.mark_due(session, {e.account for e in entries}, now)


def prune(session: Session, rt: Runtime) -> int:
    """Forget history older than the retention: ``account_signals.retention`` of the policy
    file, or NEXTSTEP_RETENTION_DAYS when that is shorter."""
    keep = min(rt.policies.account_signals.retention, rt.settings.retention)
    return repo.prune_history(session, rt.clock.now() - keep)


# --- health ------------------------------------------------------------------------------------


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
    history: list[HistoryEntry]
    crm: list[AccountSignal]
    locale: str = "en"  # the owner's, when the owner is a registered rep


def load(session: Session, rt: Runtime, domain: str, now: datetime) -> Loaded:
    since = now - rt.policies.account_signals.lookback
    account = repo.account(session, domain)
    owner = (account.owner_email or "").lower() if account else ""
    return Loaded(
        account=account,
        history=repo.history_of(session, domain),
        crm=repo.signals_of(session, domain, since),
        locale=repo.locales_of(session, [owner]).get(owner, "en"),
    )


def load_many(
    session: Session, rt: Runtime, domains: list[str], now: datetime
) -> dict[str, Loaded]:
    """Three queries for a whole batch of accounts."""
    since = now - rt.policies.account_signals.lookback
    accounts = repo.accounts_many(session, domains)
    history = repo.history_many(session, domains)
    crm = repo.signals_many(session, domains, since)
    owners = {d: (a.owner_email or "").lower() for d, a in accounts.items()}
    locales = repo.locales_of(session, owners.values())
    return {
        d: Loaded(
            account=accounts.get(d),
            history=history[d],
            crm=crm[d],
            locale=locales.get(owners.get(d, ""), "en"),
        )
        for d in domains
    }


def compute(
    session: Session, rt: Runtime, domain: str, now: datetime, loaded: Loaded | None = None
) -> tuple[Health, Account | None]:
    """The account's health at ``now`` from what is stored (no writes)."""
    data = loaded or load(session, rt, domain, now)
    crm = [CrmSignal(kind=s.kind, occurred_at=s.occurred_at, note=s.note) for s in data.crm]
    health = assess(
        data.history,
        contacts=contacts_of(data.account),
        renewal=renewal_of(data.account),
        crm=crm,
        policy=rt.policies.account_signals,
        now=now,
        locale=data.locale,
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
    """The health document: what the API answers, the nudge carries and the CRM receives."""
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


def row_out(session: Session, row: AccountHealthRow) -> HealthOut:
    """The stored health, with what the CRM says of the account now."""
    account = repo.account(session, row.domain)
    assert row.computed_at is not None
    return HealthOut.model_validate(
        {
            "domain": row.domain,
            "score": row.score,
            "level": row.level,
            "signals": row.signals,
            "computed_at": row.computed_at,
            "name": account.name if account else None,
            "stage": account.stage if account else None,
            "owner_email": account.owner_email if account else None,
            "renewal_date": account.renewal_date if account else None,
            "renewal_near": row.renewal_near,
            "previous_level": row.previous_level,
        }
    )


def recipients_of(account: Account | None) -> list[Recipient]:
    """The decision makers (champions when none is on record) the candid note goes to."""
    contacts = contacts_of(account)
    spoken = {
        str(c["email"]).lower(): c.get("language") for c in (account.contacts if account else [])
    }
    for roles in (("decision_maker",), DECIDING_ROLES):
        chosen = [
            Recipient(email=c.email, name=c.name, language=spoken.get(c.email))
            for c in contacts
            if c.role in roles
        ]
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
    row = row or repo.health_row(session, domain) or repo.add_health_row(session, domain)
    health, account = compute(session, rt, domain, now, loaded)
    previous = row.level
    doc = health_json(domain, health, account, now, previous=previous)
    changed = (
        previous is not None
        and previous != health.level
        or (previous is None and health.level != HealthLevel.HEALTHY)
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
        nudges.emit_risk_changed(session, rt, health=doc, previous=previous, now=now)
    if worse(health.level, previous):
        row.worsened += 1
        owner_email = account.owner_email if account else None
        if owner_email:
            nudges.produce_account_at_risk(
                session,
                rt,
                health=doc,
                previous=previous,
                seq=row.worsened,
                owner_email=owner_email,
                account_name=account.name if account else None,
                recipients=recipients_of(account),
                now=now,
            )
    repo.flush(session)
    return doc


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
    """When the next account's health is due (None: none is)."""
    return await rt.db.run(repo.earliest_due, rt.clock.now())


def read_health(session: Session, rt: Runtime, domain: str) -> HealthOut:
    """The stored health; computed afresh (nothing written) when a change is pending."""
    now = rt.clock.now()
    row = repo.health_row(session, domain)
    if row is not None and row.computed_at is not None and (row.due_at is None or row.due_at > now):
        return row_out(session, row)
    account = repo.account(session, domain)
    if row is None and account is None:
        raise NotFoundError(f"no account {domain!r}: neither put by the CRM nor met on a calendar")
    health, account = compute(session, rt, domain, now)
    return HealthOut.model_validate(
        health_json(domain, health, account, now, previous=row.level if row else None)
    )


def list_by_level(
    session: Session, level: HealthLevel | None, limit: int, offset: int
) -> list[HealthOut]:
    return [row_out(session, r) for r in repo.health_rows(session, level, limit, offset)]
