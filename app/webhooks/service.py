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
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.errors import Forbidden
from app.runtime import Runtime
from app.sync.service import want_sync, want_sync_many
from app.webhooks import repository as repo
from connectors.base import Inbound, LifecycleEvent, Notification

log = logging.getLogger(__name__)
CACHE_MAX = 200_000  # channels held in memory (two a calendar while one is renewed)


@dataclass(frozen=True, slots=True)
class _Arrived:
    """One notification waiting for the intake's group commit."""

    rt: Runtime
    provider: str
    note: Notification
    now: datetime


def _refusal(
    stored: repo.StoredChannel | None, provider: str, note: Notification, now: datetime
) -> Forbidden | None:
    if stored is None or stored.provider != provider:
        return Forbidden(f"unknown channel {note.channel_id[:80]!r}")
    if not note.matches(stored.channel):
        return Forbidden("channel token or resource id does not match")
    if stored.channel.expires_at < now:
        return Forbidden("channel expired")
    return None


def _accept_many(session: Session, batch: list[_Arrived]) -> list[datetime | None | Exception]:
    """Verify and store a batch of notifications in one transaction (the group commit).

    Per notification: when the sync it asked for is wanted (now, or a moment after the
    calendar's last sync: the burst debounce), None (a duplicate, or Google's ``sync``
    handshake), or the ``Forbidden`` refusing it — a refused one writes nothing.
    The channels are read in one query, whatever the memory said: a channel stopped or
    deleted since (by any replica) is refused.
    """
    stored = repo.stored_channels(session, {a.note.channel_id for a in batch})
    results: list[datetime | None | Exception] = []
    first: dict[str, int] = {}  # dedupe key → the batch's first notification of it
    rows = []
    for i, a in enumerate(batch):
        channel = stored.get(a.note.channel_id)
        refused = _refusal(channel, a.provider, a.note, a.now)
        cache = a.rt.channel_cache
        if refused is not None or channel is None:
            cache.pop(a.note.channel_id, None)
            results.append(refused)
            continue
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[a.note.channel_id] = channel
        results.append(None)
        key = f"{a.provider}:{a.note.dedupe_key}"
        if key in first:
            continue  # the same delivery twice in one batch: the second is a duplicate
        first[key] = i
        rows.append(
            {
                "dedupe_key": key,
                "provider": a.provider,
                "rep_id": channel.rep_id,
                "kind": a.note.kind,
                "received_at": a.now,
            }
        )
    wanted: dict[timedelta, list[int]] = {}
    for key in repo.record_many(session, rows):
        i = first[key]
        a = batch[i]
        if a.note.kind != "sync":
            interval = a.rt.settings.sync_interval
            wanted.setdefault(interval, []).append(i)
    latest = max(a.now for a in batch)
    for interval, asking in wanted.items():
        rep_ids = {stored[batch[i].note.channel_id].rep_id for i in asking}
        at = want_sync_many(session, rep_ids, latest, interval) or latest
        for i in asking:
            results[i] = at  # a few ms of precision: the batch's syncs share one wake time
    return results


async def receive(rt: Runtime, provider: str, note: Notification) -> bool:
    """Accept one notification; True when it asked for a sync. Raises ``Forbidden``.

    Returns once the notification is durable: it is written in the intake's group commit
    (``Database.grouped``), with whatever else arrived meanwhile. A notification that does
    not prove the channel held in memory is refused before it reaches the database.
    """
    now = rt.clock.now()
    known = rt.channel_cache.get(note.channel_id)
    if known is not None and known.channel.expires_at >= now:
        refused = _refusal(known, provider, note, now)
        if refused is not None:
            raise refused
    wanted_at = await rt.db.grouped(_accept_many, _Arrived(rt, provider, note, now))
    if wanted_at is None:
        return False
    # Woken for when the sync is wanted, not now: under a flood most calendars were synced
    # a moment ago, and waking the sync job for each notification only spins it.
    rt.wake.sync(wanted_at if wanted_at > now else None)
    return True


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
