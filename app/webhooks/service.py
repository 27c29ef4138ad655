"""Provider notifications: verify → store → acknowledge; the sync runs afterwards.

A notification names a channel; it is accepted only when the channel is live and the
secret it carries (Google channel token, Graph clientState) matches, compared in
constant time. Each accepted notification is stored under a unique key with
insert-or-ignore, and only a new row asks for a sync, so duplicates change nothing.
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.db.leases import insert_ignore
from app.db.models import Notification, WatchChannelRow
from app.errors import RequestError
from app.runtime import Runtime
from app.sync.service import want_sync

log = logging.getLogger(__name__)


class Refused(RequestError):
    """A notification that does not match a live channel: 403, nothing changes."""

    status_code = 403


def _accept(
    session: Session,
    rt: Runtime,
    provider: str,
    channel_id: str,
    token: str,
    resource_id: str | None,
    dedupe_key: str,
    kind: str,
) -> str | None:
    row = session.get(WatchChannelRow, channel_id)
    if row is None or row.provider != provider:
        raise Refused(f"unknown channel {channel_id[:80]!r}")
    ok = hmac.compare_digest(row.token.encode(), token.encode())
    if resource_id is not None and row.resource_id is not None:
        ok &= hmac.compare_digest(row.resource_id.encode(), resource_id.encode())
    if not ok:
        raise Refused("channel token or resource id does not match")
    now = rt.clock.now()
    if row.expires_at < now:
        raise Refused("channel expired")
    new = insert_ignore(
        session,
        Notification,
        {
            "dedupe_key": f"{provider}:{dedupe_key}",
            "provider": provider,
            "rep_id": row.rep_id,
            "kind": kind,
            "received_at": now,
        },
    )
    if new and kind != "sync":
        want_sync(
            session, row.rep_id, now, timedelta(seconds=rt.settings.sync_min_interval_seconds)
        )
        return row.rep_id
    return None


async def receive(
    rt: Runtime,
    provider: str,
    *,
    channel_id: str,
    token: str,
    resource_id: str | None,
    dedupe_key: str,
    kind: str = "change",
) -> bool:
    """Accept one notification; True when it asked for a sync. Raises Refused."""
    rep_id = await rt.db.intake(
        _accept, rt, provider, channel_id, token, resource_id, dedupe_key, kind
    )
    if rep_id is not None:
        rt.wake.sync(None)
        return True
    return False


def prune(session: Session, rt: Runtime, keep: timedelta = timedelta(days=2)) -> int:
    """Forget notifications old enough that a duplicate can no longer arrive."""
    result = session.execute(
        delete(Notification).where(Notification.received_at < rt.clock.now() - keep)
    )
    return result.rowcount  # type: ignore[attr-defined,no-any-return]


async def sandbox_notify(rt: Runtime, channel_id: str, token: str, message_number: int) -> None:
    """The sandbox provider's push, handled like a Google webhook."""
    try:
        await receive(
            rt,
            "sandbox",
            channel_id=channel_id,
            token=token,
            resource_id=None,
            dedupe_key=f"{channel_id}:{message_number}",
        )
    except Refused as err:
        log.warning("webhook.sandbox_refused", extra={"detail": err.detail})
