"""What the CRM tells us about accounts (prospect companies, or free-mail persons)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from app.accounts import repository as repo
from app.accounts.schemas import AccountIn, SignalIn
from app.db.models import Account
from app.errors import InvalidRequest, NotFoundError
from app.runtime import Runtime
from policies.classify import FREE_MAIL_DOMAINS
from policies.hours import check_timezone

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


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


def to_json(a: Account) -> dict[str, Any]:
    return {
        "domain": a.domain,
        "name": a.name,
        "timezone": a.timezone,
        "crm_id": a.crm_id,
        "stage": a.stage,
        "renewal_date": a.renewal_date,
        "owner_email": a.owner_email,
        "contacts": a.contacts or [],
        "updated_at": a.updated_at,
    }


def upsert(session: Session, rt: Runtime, raw_domain: str, body: AccountIn) -> dict[str, Any]:
    """Create or update; only the fields given are changed."""
    key = normalize_key(raw_domain)
    if body.timezone is not None:
        try:
            check_timezone(body.timezone, field="timezone")
        except ValueError as err:
            raise InvalidRequest(str(err)) from err
    account = session.get(Account, key)
    if account is None:
        account = Account(domain=key, contacts=[], updated_at=rt.clock.now())
        session.add(account)
    given = body.model_dump(exclude_unset=True, mode="json")
    for field, value in given.items():
        setattr(account, field, value if value is not None or field != "contacts" else [])
    account.updated_at = rt.clock.now()
    session.flush()
    repo.mark_due(session, [key], rt.clock.now())  # stage, contacts, renewal move the health
    return to_json(account)


def read(session: Session, raw_domain: str) -> dict[str, Any]:
    key = normalize_key(raw_domain)
    account = session.get(Account, key)
    if account is None:
        raise NotFoundError(f"no account {key!r}")
    return to_json(account)


def add_signal(session: Session, rt: Runtime, raw_domain: str, body: SignalIn) -> dict[str, Any]:
    """Store a CRM signal; the account's health is recomputed with it."""
    key = normalize_key(raw_domain)
    now = rt.clock.now()
    row = repo.add_signal(session, key, body.kind, body.occurred_at, body.note, now)
    repo.mark_due(session, [key], now)
    return {
        "id": row.id,
        "domain": key,
        "kind": row.kind,
        "occurred_at": row.occurred_at.isoformat(),
        "note": row.note,
    }


def delete(session: Session, raw_domain: str) -> None:
    """The account and everything known about it: history, CRM signals, health."""
    key = normalize_key(raw_domain)
    if not repo.delete_account(session, key):
        raise NotFoundError(f"no account {key!r}")
