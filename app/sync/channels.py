"""Push channels (Google) and subscriptions (Graph): start, renew before expiry, stop.

Renewal keeps the calendar watched without a gap. ``provider.renew`` returns a channel
live past the old one's expiry, as the provider's declared ``renewal`` says: the same
channel extended (``"in_place"``, Graph PATCH), or a new one with the old one still live
(``"replace"``, Google). A channel with a new id is stored first and only then is the old
one stopped, so during the overlap notifications on either channel are accepted.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.crash import crash_point
from app.db.leases import claim_due, work_through
from app.db.models import Rep, WatchChannelRow
from app.nudges.events import set_rep_status
from app.runtime import Runtime
from app.sync import repository as repo
from connectors.base import (
    AuthFailed,
    CalendarProvider,
    CalendarRef,
    NotFound,
    ProviderError,
    WatchChannel,
)
from policies.vocabulary import RepStatus

log = logging.getLogger(__name__)


def callback_url(rt: Runtime, provider: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/webhooks/{provider}"


def _renew_before(rt: Runtime) -> timedelta:
    return timedelta(seconds=rt.settings.renew_before_seconds)


def unwatched(session: Session, rt: Runtime, now: datetime) -> list[str]:
    """Reps with no channel at all, registered longer than a lease ago: their registration
    died before the watch was stored, or the provider refused it then."""
    return repo.unwatched_reps(session, now - rt.lease, list(rt.providers))


def _as_channel(row: WatchChannelRow) -> WatchChannel:
    return WatchChannel(
        **{
            name: getattr(row, name)
            for name in ("channel_id", "token", "resource_id", "expires_at")
        }
    )


async def start_watch(rt: Runtime, rep_id: str) -> str | None:
    """Open a channel for the rep's calendar; returns an error text instead of raising."""
    rep = await rt.db.run(repo.rep, rep_id)
    if rep is None:
        return "rep deleted"
    provider = rt.provider(rep.provider)
    try:
        channel = await provider.watch(rep.calendar_ref(), callback_url(rt, rep.provider))
    except ProviderError as err:
        log.warning("watch.failed", extra={"rep_id": rep_id, "error": str(err)})
        return f"{type(err).__name__}: {err}"
    renew_at = await rt.db.run(
        repo.store_channel, rep_id, rep.provider, channel, rt.clock.now(), _renew_before(rt)
    )
    rt.wake.renewals(renew_at)  # the renewal ticker may be asleep for much longer
    return None


async def stop_all(rt: Runtime, rep: Rep, rows: list[WatchChannelRow]) -> None:
    """Stop every channel of a rep being deleted; failures are logged, not fatal."""
    if rep.provider not in rt.providers:
        return
    provider = rt.provider(rep.provider)
    for row in rows:
        try:
            await provider.unwatch(rep.calendar_ref(), _as_channel(row))
        except ProviderError as err:
            log.warning(
                "watch.stop_failed", extra={"channel_id": row.channel_id, "error": str(err)}
            )


async def renew_due(rt: Runtime, *, limit: int = 50) -> int:
    """Renew channels whose renewal time has come; returns how many were handled."""
    key = WatchChannelRow.channel_id
    now, ids = await claim_due(
        rt, WatchChannelRow, key=key, due=WatchChannelRow.renew_at, limit=limit
    )
    return await work_through(
        rt,
        WatchChannelRow,
        key=key,
        items=ids,
        claimed_at=now,
        handle=lambda channel_id: renew_one(rt, channel_id),
    )


async def _retire(
    rt: Runtime, provider: CalendarProvider, ref: CalendarRef, old: WatchChannel
) -> None:
    """Stop a replaced channel at the provider, then forget it."""
    try:
        await provider.unwatch(ref, old)
    except ProviderError as err:
        log.warning("watch.stop_failed", extra={"channel_id": old.channel_id, "error": str(err)})
    await rt.db.run(repo.forget_channel, old.channel_id)


async def renew_one(rt: Runtime, channel_id: str) -> None:
    loaded = await rt.db.run(repo.channel_for_renewal, channel_id)
    if loaded is None:
        return
    row, rep, superseded = loaded
    provider = rt.provider(rep.provider)
    ref: CalendarRef = rep.calendar_ref()
    old = _as_channel(row)
    if superseded:
        log.info("watch.retired", extra={"rep_id": rep.id, "channel_id": old.channel_id})
        await _retire(rt, provider, ref, old)
        return
    try:
        new = await provider.renew(ref, old, callback_url(rt, rep.provider))
    except (AuthFailed, NotFound, ProviderError) as err:
        log.warning("watch.renew_failed", extra={"channel_id": channel_id, "error": str(err)})
        retry = rt.clock.now() + timedelta(minutes=5)
        # Refused, or the channel dies before the next try: the calendar is not watched.
        lost = isinstance(err, AuthFailed) or retry >= old.expires_at
        await rt.db.run(_renewal_failed, rt, channel_id, rep.id, retry, err if lost else None)
        return
    now = rt.clock.now()
    await rt.db.run(repo.store_channel, rep.id, rep.provider, new, now, _renew_before(rt))
    if new.channel_id != old.channel_id:
        crash_point("renewal.stored")
        await _retire(rt, provider, ref, old)
    log.info("watch.renewed", extra={"rep_id": rep.id, "channel_id": new.channel_id})


def _renewal_failed(
    session: Session,
    rt: Runtime,
    channel_id: str,
    rep_id: str,
    retry: datetime,
    lost: ProviderError | None,
) -> None:
    """Try the renewal again later; a watch lost for good is the manager's to hear of."""
    repo.renew_later(session, channel_id, retry)
    rep = repo.rep(session, rep_id)
    if lost is None or rep is None:
        return
    refused = isinstance(lost, AuthFailed)
    status = RepStatus.AUTH_FAILED if refused else RepStatus.SYNC_ERROR
    if rep.status == RepStatus.AUTH_FAILED:
        status = RepStatus.AUTH_FAILED
    set_rep_status(
        session,
        rt,
        rep,
        status,
        f"the calendar watch could not be renewed: {type(lost).__name__}: {lost}",
        rt.clock.now(),
        connection_lost=True,
    )


async def next_renewal(rt: Runtime) -> datetime | None:
    now = rt.clock.now()
    return await rt.db.run(repo.next_renewal, now)
