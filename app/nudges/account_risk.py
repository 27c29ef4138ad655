"""The ``account_at_risk`` nudge and the ``account.risk_changed`` webhook event.

``compose_account_at_risk`` is pure: the owner's message in the owner's locale, and a
candid draft ("we may be falling short — tell us where") addressed to the account's
decision makers, in US business English; the wording lives in
``templates/account_at_risk.yaml``. ``produce_account_at_risk`` and ``emit_risk_changed``
write a nudge row and its outbox rows in the caller's transaction — the transaction that
stored the health decision — so the decision and what it sends live or die together.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy.orm import Session

from app.db.leases import insert_ignore
from app.db.models import Delivery, Meeting, Nudge, Rep
from app.nudges.compose import first_name
from app.nudges.service import enqueue, meeting_json
from app.runtime import Runtime

log = logging.getLogger(__name__)
RISK_CHANGED = "account.risk_changed"


@dataclass(frozen=True, kw_only=True, slots=True)
class Recipient:
    email: str
    name: str | None = None

    @property
    def first(self) -> str | None:
        if self.name and self.name.strip():
            return self.name.split()[0]
        return first_name(self.email)


@cache
def _texts() -> dict[str, Any]:
    folder = resources.files("app.nudges").joinpath("templates")
    doc: dict[str, Any] = yaml.safe_load(
        folder.joinpath("account_at_risk.yaml").read_text(encoding="utf-8")
    )
    return doc


def _format_date(value: str, locale: str) -> str:
    d = date.fromisoformat(value)
    if locale == "fr":
        months = (
            "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
        ).split()
        return f"{'1er' if d.day == 1 else d.day} {months[d.month - 1]} {d.year}"
    return d.strftime("%B ") + f"{d.day}, {d.year}"


def compose_account_at_risk(
    *,
    health: dict[str, Any],
    previous: str | None,
    account_name: str | None,
    locale: str,
    owner_email: str,
    recipients: list[Recipient],
    topic: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """(message for the owner, draft invite for the decision makers)."""
    t = _texts()["messages"].get(locale) or _texts()["messages"]["en"]
    account = f"{account_name} ({health['domain']})" if account_name else health["domain"]
    paragraphs = [
        t["intro"].format(
            account=account,
            level=t["levels"][health["level"]],
            score=health["score"],
            previous=t["levels"][previous or "healthy"],
        )
    ]
    if health.get("renewal_near") and health.get("renewal_date"):
        paragraphs.append(t["renewal"].format(renewal=_format_date(health["renewal_date"], locale)))
    lines = [t["signals_header"]]
    for s in health["signals"]:
        label = t["labels"].get(s["kind"]) or f"{t['labels']['crm']} ({s['kind']})"
        lines.append(t["signal_line"].format(label=label, explanation=s["explanation"]))
    paragraphs.append("\n".join(lines))
    if recipients:
        names = ", ".join(r.name or r.email for r in recipients)
        paragraphs.append(t["draft_ready"].format(recipients=names))
    else:
        paragraphs.append(t["no_recipients"].format(domain=health["domain"]))

    d = _texts()["draft"]
    firsts = [r.first for r in recipients]
    if len(firsts) > 2:
        greeting = d["greeting"]["many"]
    elif firsts and all(firsts):
        greeting = (
            d["greeting"]["one"].format(name=firsts[0])
            if len(firsts) == 1
            else d["greeting"]["two"].format(first=firsts[0], second=firsts[1])
        )
    else:
        greeting = d["greeting"]["unknown"]
    body = d["body"].format(topic=d["topic"].format(topic=topic) if topic else "")
    owner = first_name(owner_email)
    signature = d["signature"]["named"].format(name=owner) if owner else d["signature"]["anonymous"]
    draft = {
        "subject": d["subject"],
        "body": "\n\n".join([f"{greeting} {body}", d["ask"], signature]),
        "attendees": [r.email for r in recipients],
    }
    return "\n\n".join(paragraphs), draft


def produce_account_at_risk(
    session: Session,
    rt: Runtime,
    *,
    health: dict[str, Any],
    previous: str | None,
    seq: int,
    owner_email: str,
    owner: Rep | None,
    account_name: str | None,
    recipients: list[Recipient],
    meeting: Meeting | None,
    now: datetime,
) -> str | None:
    """Write the owner's nudge and its outbox rows; None when this worsening was sent."""
    message, draft = compose_account_at_risk(
        health=health,
        previous=previous,
        account_name=account_name,
        locale=owner.locale if owner is not None else "en",
        owner_email=owner_email,
        recipients=recipients,
    )
    nudge_id = str(uuid.uuid4())
    payload: dict[str, Any] = {
        "id": nudge_id,
        "kind": "account_at_risk",
        "created_at": now.isoformat(),
        "rep": {
            "id": owner.id if owner else None,
            "email": owner_email,
            "timezone": owner.timezone if owner else None,
        },
        "meeting": meeting_json(meeting) if meeting is not None else None,
        "suggested_slots": [],
        "draft_invite": draft,
        "message": message,
        "account": health,
        # Extensions beyond the contract's payload.
        "previous_level": previous or "healthy",
        "recipient": owner_email,
    }
    created = insert_ignore(
        session,
        Nudge,
        {
            "id": nudge_id,
            "dedupe_key": f"account:{health['domain']}:{health['level']}:{seq}",
            "kind": "account_at_risk",
            "rep_id": owner.id if owner else None,
            "meeting_id": meeting.id if meeting is not None else None,
            "account_domain": health["domain"],
            "recipient_email": owner_email,
            "payload": payload,
            "created_at": now,
        },
    )
    if not created:
        return None
    enqueue(session, rt, nudge_id, owner_email, now)
    log.info(
        "nudge.produced",
        extra={"nudge_id": nudge_id, "kind": "account_at_risk", "account": health["domain"]},
    )
    return nudge_id


def emit_risk_changed(
    session: Session,
    rt: Runtime,
    *,
    health: dict[str, Any],
    previous: str | None,
    now: datetime,
) -> str | None:
    """The CRM's signed ``account.risk_changed`` event, through the webhook channel's outbox.

    Stored as a nudge row of its own kind (listed by nobody, delivered like a nudge: same
    signature, same id on every retry) with deliveries on webhook channels only.
    """
    webhooks = [name for name, ch in rt.channels.items() if getattr(ch, "name", name) == "webhook"]
    if not webhooks:
        return None
    event_id = str(uuid.uuid4())
    body = {
        "type": RISK_CHANGED,
        "kind": RISK_CHANGED,  # the outbox renders every row by its kind
        "id": event_id,
        "occurred_at": now.isoformat(),
        "account": health,
        "previous_level": previous,
    }
    created = insert_ignore(
        session,
        Nudge,
        {
            "id": event_id,
            "dedupe_key": f"account:{health['domain']}:changed:{now.isoformat()}:{health['level']}",
            "kind": RISK_CHANGED,
            "rep_id": None,
            "meeting_id": None,
            "account_domain": health["domain"],
            "recipient_email": None,
            "payload": body,
            "created_at": now,
        },
    )
    if not created:
        return None
    for name in webhooks:
        insert_ignore(
            session,
            Delivery,
            {
                "nudge_id": event_id,
                "channel": name,
                "target": name,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            },
        )
    rt.wake.deliveries(now)
    return event_id
