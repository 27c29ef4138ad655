"""The outbox: rows written in the decision's transaction, then sent by a worker.

``enqueue`` writes one outbox row per configured channel in the caller's transaction — the
one that stores the nudge — so a decision and what it sends live or die together. The
worker (``deliver_due``) claims due rows, sends them, records the outcome.

At least once: a delivery is marked delivered only after the channel said so; a process
killed between sending and recording sends again after its lease expires, with the same
nudge id (receivers dedupe on it). Failures back off exponentially with jitter, honour
the receiver's Retry-After, and give up (``failed``) after the configured attempts or
at once for a permanent refusal.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.crash import crash_point
from app.db.leases import work_in_lanes
from app.db.models import Delivery
from app.delivery import repository as repo
from app.delivery.channels.base import DeliveryResult, Outbound
from app.delivery.render import render_html, render_text
from app.delivery.repository import DueDelivery
from app.runtime import Runtime
from policies.vocabulary import DeliveryStatus

log = logging.getLogger(__name__)
BACKOFF_BASE = 5.0
BACKOFF_CAP = 900.0
LANES = 8  # deliveries sent at once by one process
failures: Counter[str] = Counter()  # failed attempts of this process, per channel (/metrics)


@dataclass(frozen=True, kw_only=True, slots=True)
class Attempts:
    """How one outbox row of a nudge is doing (``GET /v1/nudges`` shows it)."""

    channel: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    delivered_at: datetime | None


def enqueue(
    session: Session,
    rt: Runtime,
    nudge_id: str,
    recipient: str | None,
    now: datetime,
    *,
    not_before: datetime | None = None,
) -> None:
    """One outbox row per configured channel, in the caller's transaction.

    E-mail and the Slack bot (``per_recipient``) go to ``recipient``; the other channels
    have one target each (their name). ``not_before``: the rows may not go earlier (quiet
    hours: the rep's next working time).
    """
    due = max(now, not_before) if not_before is not None else now
    crm: _CrmContext = _CrmContext(session, nudge_id)
    for name, channel in rt.channels.items():
        if getattr(channel, "crm", False):
            target = crm.target(channel)
        elif getattr(channel, "per_recipient", getattr(channel, "name", "") == "email"):
            target = recipient
        else:
            target = name
        if target:
            repo.add(session, nudge_id, name, target, due)
    rt.wake.deliveries(due)


class _CrmContext:
    """What a CRM channel decides on (kind, payload, the account's crm_id), read once."""

    def __init__(self, session: Session, nudge_id: str) -> None:
        self._session, self._id = session, nudge_id
        self._read = False
        self._ctx: tuple[str, dict[str, Any], str | None] | None = None

    def target(self, channel: Any) -> str | None:
        """The account's ``crm_id`` when the CRM channel wants this row, else None."""
        if not self._read:
            self._ctx, self._read = repo.crm_context(self._session, self._id), True
        if self._ctx is None:
            return None
        kind, payload, crm_id = self._ctx
        if not crm_id or not channel.wants(kind, payload, crm_id):
            return None
        return crm_id


def enqueue_webhooks(session: Session, rt: Runtime, event_id: str, now: datetime) -> None:
    """Outbox rows on the webhook channels only (CRM events, not nudges for people)."""
    for name in webhook_channels(rt):
        repo.add(session, event_id, name, name, now)
    rt.wake.deliveries(now)


def enqueue_event(
    session: Session, rt: Runtime, event_id: str, event_type: str, now: datetime
) -> None:
    """Outbox rows for a CRM event: every webhook channel, and each channel whose
    ``events`` names the type (a CRM that closes its tasks on ``meeting.state_changed``)."""
    crm = _CrmContext(session, event_id)
    for name, channel in rt.channels.items():
        if getattr(channel, "crm", False):
            target = crm.target(channel)
            if target:
                repo.add(session, event_id, name, target, now)
        elif getattr(channel, "name", name) == "webhook" or event_type in getattr(
            channel, "events", ()
        ):
            repo.add(session, event_id, name, name, now)
    rt.wake.deliveries(now)


def webhook_channels(rt: Runtime) -> list[str]:
    """Names of the configured channels that POST signed JSON to the CRM."""
    return [name for name, ch in rt.channels.items() if getattr(ch, "name", name) == "webhook"]


def attempts_of(session: Session, nudge_ids: list[str]) -> dict[str, list[Attempts]]:
    """Each nudge's outbox rows, as they stand."""
    return {
        nudge_id: [
            Attempts(
                channel=d.channel,
                status=d.status,
                attempts=d.attempts,
                last_error=d.last_error,
                delivered_at=d.delivered_at,
            )
            for d in rows
        ]
        for nudge_id, rows in repo.of_nudges(session, nudge_ids).items()
    }


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: exponential with full jitter, capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


def _claim(session: Session, rt: Runtime, now: datetime, limit: int) -> list[DueDelivery]:
    return repo.claim_due(session, now=now, owner=rt.instance_id, lease=rt.lease, limit=limit)


def _record(
    session: Session, rt: Runtime, delivery_id: int, result: DeliveryResult, now: datetime
) -> None:
    row = repo.leased(session, delivery_id, rt.instance_id)
    if row is None:
        return  # our lease expired and someone else has it now
    row.attempts += 1
    row.lease_owner = None
    row.lease_until = None
    if result.ok:
        row.status = DeliveryStatus.DELIVERED
        row.delivered_at = now
        row.next_attempt_at = None
        row.last_error = None
        return
    row.last_error = result.detail[:2000]
    if not result.retryable or row.attempts >= rt.settings.delivery_max_attempts:
        row.status = DeliveryStatus.FAILED
        row.next_attempt_at = None
        log.error(
            "nudge.delivery_failed", extra={"delivery_id": delivery_id, "detail": result.detail}
        )
        return
    row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts, result.retry_after))


async def deliver_due(rt: Runtime, *, limit: int = 100) -> int:
    """Send what is due; returns how many attempts were made.

    Several lanes at once (``lanes``): each send waits on a receiver, the others go on
    meanwhile. Each row is still sent, then recorded, on its own.
    """
    now = rt.clock.now()
    batch = await rt.db.run(_claim, rt, now, limit)
    return await work_in_lanes(
        rt,
        Delivery,
        key=Delivery.id,
        items=batch,
        lanes=LANES,
        claimed_at=now,
        handle=lambda row: _deliver(rt, row),
        key_of=lambda row: row.id,
    )


async def _deliver(rt: Runtime, row: DueDelivery) -> None:
    """One attempt: send through the channel, then record the outcome."""
    channel_name, payload = row.channel, row.payload
    channel = rt.channels.get(channel_name)
    if channel is None:
        result = DeliveryResult(
            ok=False, retryable=True, detail=f"channel {channel_name!r} is not configured here"
        )
    else:
        subject, text = render_text(payload)
        out = Outbound(
            nudge_id=row.nudge_id,
            payload=payload,
            recipient=row.target,
            subject=subject,
            text=text,
            html=render_html(payload) if payload.get("actions") else "",
        )
        try:
            result = await channel.send(out)
        except Exception as err:  # a channel bug must not stop the outbox
            log.exception("nudge.channel_crashed", extra={"channel": channel_name})
            result = DeliveryResult(ok=False, retryable=True, detail=f"{type(err).__name__}: {err}")
        if result.ok:
            crash_point("event.sent" if "type" in payload else "delivery.sent")
    if not result.ok:
        failures[channel_name] += 1
    await rt.db.run(_record, rt, row.id, result, rt.clock.now())


async def next_attempt(rt: Runtime) -> datetime | None:
    """When the next outbox row becomes claimable (None: nothing pending)."""
    return await rt.db.run(repo.earliest_due, rt.clock.now())
