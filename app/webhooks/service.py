"""Provider notifications: verify → store → acknowledge; the sync runs afterwards.

Whichever provider sent it and however it arrived (a webhook request read by the
provider's ``webhooks``, or an in-process push), a notification is one provider-neutral
``connectors.base.Notification`` naming a channel. It is accepted only when that channel
is stored and live and the notification proves it (``Notification.matches``: the secret
it echoes, Google channel token or Graph clientState, and the resource id, compared in
constant time). Each accepted notification is stored under a unique key with
insert-or-ignore, and only a new row asks for a sync, so duplicates change nothing.
A lifecycle event (Graph) that proves its channel makes the channel due for renewal now
and/or asks for a sync. A refusal is a 403 (``Forbidden``) and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from app.errors import Forbidden
from app.runtime import Runtime
from app.sync.service import want_sync
from app.webhooks import repository as repo
from connectors.base import Inbound, LifecycleEvent, Notification

log = logging.getLogger(__name__)


def _accept(session: Session, rt: Runtime, provider: str, note: Notification) -> str | None:
    stored = repo.stored_channel(session, provider, note.channel_id)
    if stored is None:
        raise Forbidden(f"unknown channel {note.channel_id[:80]!r}")
    if not note.matches(stored.channel):
        raise Forbidden("channel token or resource id does not match")
    now = rt.clock.now()
    if stored.channel.expires_at < now:
        raise Forbidden("channel expired")
    new = repo.record(
        session,
        provider=provider,
        dedupe_key=note.dedupe_key,
        rep_id=stored.rep_id,
        kind=note.kind,
        now=now,
    )
    if new and note.kind != "sync":
        want_sync(session, stored.rep_id, now, rt.settings.sync_interval)
        return stored.rep_id
    return None


async def receive(rt: Runtime, provider: str, note: Notification) -> bool:
    """Accept one notification; True when it asked for a sync. Raises ``Forbidden``."""
    rep_id = await rt.db.intake(_accept, rt, provider, note)
    if rep_id is not None:
        rt.wake.sync(None)
        return True
    return False


def _lifecycle(session: Session, rt: Runtime, provider: str, event: LifecycleEvent) -> None:
    stored = repo.stored_channel(session, provider, event.channel_id)
    if stored is None or not event.matches(stored.channel):
        raise Forbidden(
            f"unknown subscription or clientState mismatch for {event.channel_id[:80]!r}"
        )
    now = rt.clock.now()
    if event.renew:  # an in-place renewal; a channel the provider lost is created anew
        repo.renew_now(session, event.channel_id, now)
    if event.resync:
        want_sync(session, stored.rep_id, now)


async def take(rt: Runtime, provider: str, inbound: Inbound) -> None:
    """Accept what one webhook request carries, item by item.

    ``Forbidden`` (joining the reasons) when it carried items and not one was accepted;
    a request with some genuine items is acknowledged, its forged ones changed nothing.
    """
    accepted, refused = 0, []
    for note in inbound.notifications:
        try:
            await receive(rt, provider, note)
        except Forbidden as err:
            refused.append(err.detail)
        else:
            accepted += 1
    for event in inbound.lifecycle:
        try:
            await rt.db.intake(_lifecycle, rt, provider, event)
        except Forbidden as err:
            refused.append(err.detail)
        else:
            accepted += 1
            log.info(
                "webhook.lifecycle",
                extra={"provider": provider, "event": event.event, "channel_id": event.channel_id},
            )
    if refused and not accepted:
        raise Forbidden("; ".join(refused))
    if accepted and inbound.lifecycle:
        rt.wake.renewals(None)
        rt.wake.sync(None)


async def pushed(rt: Runtime, provider: str, note: Notification) -> None:
    """An in-process provider's push (the sandbox), taken like a webhook's notification."""
    try:
        await receive(rt, provider, note)
    except Forbidden as err:
        log.warning("webhook.push_refused", extra={"provider": provider, "detail": err.detail})


def prune(session: Session, rt: Runtime, keep: timedelta = timedelta(days=2)) -> int:
    """Forget notifications old enough that a duplicate can no longer arrive."""
    return repo.prune(session, rt.clock.now() - keep)
