"""The outbox worker: claim due deliveries, send them, record the outcome.

At least once: a delivery is marked delivered only after the channel said so; a process
killed between sending and recording sends again after its lease expires, with the same
nudge id (receivers dedupe on it). Failures back off exponentially with jitter, honour
the receiver's Retry-After, and give up (``failed``) after the configured attempts or
at once for a permanent refusal.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crash import crash_point
from app.db.leases import claim, next_time, work_through
from app.db.models import Delivery, Nudge
from app.nudges.channels.base import DeliveryResult, Outbound
from app.ops import metrics
from app.runtime import Runtime

log = logging.getLogger(__name__)
BACKOFF_BASE = 5.0
BACKOFF_CAP = 900.0


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: exponential with full jitter, capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


def render_text(payload: dict[str, Any]) -> tuple[str, str]:
    """Subject and plain text of a nudge for people (e-mail, console)."""
    meeting = payload.get("meeting") or {}
    account = payload.get("account") or {}  # account_at_risk: about the account, not a meeting
    about = account.get("name") or account.get("domain") if account else meeting.get("title", "")
    subject = f"[NextStep] {payload['kind'].replace('_', ' ')}: {about or ''}".strip()
    lines = [payload.get("message", ""), ""]
    draft = payload.get("draft_invite") or {}
    if draft:
        lines += [
            "Draft invite",
            f"Subject: {draft.get('subject', '')}",
            f"To: {', '.join(draft.get('attendees', []))}",
            "",
            draft.get("body", ""),
        ]
    return subject, "\n".join(lines).strip() + "\n"


def _claim(session: Session, rt: Runtime, now: datetime, limit: int) -> list[tuple[Any, ...]]:
    ids = claim(
        session,
        Delivery,
        key=Delivery.id,
        due=Delivery.next_attempt_at,
        now=now,
        owner=rt.instance_id,
        lease=rt.lease,
        limit=limit,
        where=(Delivery.status == "pending",),
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
    return [tuple(r) for r in rows]


def _record(
    session: Session, rt: Runtime, delivery_id: int, result: DeliveryResult, now: datetime
) -> None:
    row = session.get(Delivery, delivery_id)
    if row is None or row.lease_owner != rt.instance_id:
        return  # our lease expired and someone else has it now
    row.attempts += 1
    row.lease_owner = None
    row.lease_until = None
    if result.ok:
        row.status = "delivered"
        row.delivered_at = now
        row.next_attempt_at = None
        row.last_error = None
        return
    row.last_error = result.detail[:2000]
    if not result.retryable or row.attempts >= rt.settings.delivery_max_attempts:
        row.status = "failed"
        row.next_attempt_at = None
        log.error(
            "nudge.delivery_failed", extra={"delivery_id": delivery_id, "detail": result.detail}
        )
        return
    row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts, result.retry_after))


async def deliver_due(rt: Runtime, *, limit: int = 100) -> int:
    """Send what is due; returns how many attempts were made."""
    now = rt.clock.now()
    batch = await rt.db.run(_claim, rt, now, limit)
    return await work_through(
        rt,
        Delivery,
        key=Delivery.id,
        items=batch,
        claimed_at=now,
        handle=lambda row: _deliver(rt, row),
        key_of=lambda row: row[0],
    )


async def _deliver(rt: Runtime, row: tuple[Any, ...]) -> None:
    """One attempt: send through the channel, then record the outcome."""
    delivery_id, channel_name, target, _attempts, nudge_id, payload = row
    channel = rt.channels.get(channel_name)
    if channel is None:
        result = DeliveryResult(
            ok=False, retryable=True, detail=f"channel {channel_name!r} is not configured here"
        )
    else:
        subject, text = render_text(payload)
        out = Outbound(
            nudge_id=nudge_id, payload=payload, recipient=target, subject=subject, text=text
        )
        try:
            result = await channel.send(out)
        except Exception as err:  # a channel bug must not stop the outbox
            log.exception("nudge.channel_crashed", extra={"channel": channel_name})
            result = DeliveryResult(ok=False, retryable=True, detail=f"{type(err).__name__}: {err}")
        if result.ok:
            crash_point("delivery.sent")
    if not result.ok:
        metrics.delivery_failures[channel_name] += 1
    await rt.db.run(_record, rt, delivery_id, result, rt.clock.now())


async def next_attempt(rt: Runtime) -> datetime | None:
    now = rt.clock.now()
    return await rt.db.run(
        lambda s: next_time(
            s, Delivery, Delivery.next_attempt_at, now, (Delivery.status == "pending",)
        )
    )
