"""All SQL of the webhook intake: the stored channels it checks, the notifications it keeps."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.db.leases import insert_ignore
from app.db.models import Notification, WatchChannelRow
from connectors.base import WatchChannel


class StoredChannel(NamedTuple):
    """A channel as stored for a rep, in the provider-neutral form notifications check."""

    channel: WatchChannel
    rep_id: str


def stored_channel(session: Session, provider: str, channel_id: str) -> StoredChannel | None:
    """The stored channel ``channel_id`` of ``provider``, or None."""
    row = session.get(WatchChannelRow, channel_id)
    if row is None or row.provider != provider:
        return None
    channel = WatchChannel(
        channel_id=row.channel_id,
        token=row.token,
        resource_id=row.resource_id,
        expires_at=row.expires_at,
    )
    return StoredChannel(channel, row.rep_id)


def record(
    session: Session, *, provider: str, dedupe_key: str, rep_id: str, kind: str, now: datetime
) -> bool:
    """Keep one notification under its unique key; False when it was already kept."""
    return insert_ignore(
        session,
        Notification,
        {
            "dedupe_key": f"{provider}:{dedupe_key}",
            "provider": provider,
            "rep_id": rep_id,
            "kind": kind,
            "received_at": now,
        },
    )


def renew_now(session: Session, channel_id: str, now: datetime) -> None:
    """Make the channel due for renewal now, whoever held its renewal lease."""
    row = session.get(WatchChannelRow, channel_id)
    if row is not None:
        row.renew_at = now
        row.lease_owner = row.lease_until = None


def prune(session: Session, before: datetime) -> int:
    """Forget notifications received before ``before``; returns how many."""
    result = session.execute(delete(Notification).where(Notification.received_at < before))
    return result.rowcount  # type: ignore[attr-defined,no-any-return]
