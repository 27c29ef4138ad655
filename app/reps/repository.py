"""All SQL about reps and their calendars."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Calendar, Meeting, Rep, WatchChannelRow
from policies.vocabulary import RepStatus


def get(session: Session, rep_id: str) -> Rep | None:
    return session.get(Rep, rep_id)


def by_email(session: Session, email: str) -> Rep | None:
    return session.scalar(select(Rep).where(Rep.email == email.lower()))


def all_reps(session: Session, *, limit: int | None = None, offset: int = 0) -> list[Rep]:
    stmt = select(Rep).order_by(Rep.created_at, Rep.id).offset(offset)
    return list(session.scalars(stmt if limit is None else stmt.limit(limit)))


def channels_of(session: Session, rep_id: str) -> list[WatchChannelRow]:
    return list(
        session.scalars(
            select(WatchChannelRow)
            .where(WatchChannelRow.rep_id == rep_id)
            .order_by(WatchChannelRow.expires_at)
        )
    )


def calendar_of(session: Session, rep_id: str) -> Calendar | None:
    return session.get(Calendar, rep_id)


def add(
    session: Session,
    *,
    rep_id: str,
    fields: dict[str, Any],
    now: datetime,
    owner: str,
    lease: timedelta,
    pending: bool = False,
) -> Rep:
    """The rep, and its calendar wanting the initial sync, leased to ``owner``.

    Should the registering process die before the sync completes, another replica resumes
    it once the lease expires. ``pending``: the rep connects the calendar first; nothing
    is synced until then.
    """
    status = RepStatus.PENDING_CONNECTION if pending else RepStatus.SYNCING
    rep = Rep(id=rep_id, status=status, created_at=now, **fields)
    session.add(rep)
    session.flush()  # the rep row first: the calendar row refers to it
    session.add(
        Calendar(
            rep_id=rep_id,
            provider=rep.provider,
            generation=0,
            attempts=0,
            sync_seq=0,
            sync_wanted_at=None if pending else now,
            lease_owner=None if pending else owner,
            lease_until=None if pending else now + lease,
        )
    )
    return rep


def connected(
    session: Session, rep_id: str, grant: str, *, now: datetime, owner: str, lease: timedelta
) -> Rep | None:
    """The rep's new grant stored; its calendar wants a sync, leased to ``owner``."""
    rep = session.get(Rep, rep_id)
    cal = session.get(Calendar, rep_id)
    if rep is None or cal is None:
        return None
    rep.oauth_grant = grant
    rep.status, rep.status_detail = RepStatus.SYNCING, None
    cal.sync_wanted_at = now
    cal.attempts = 0
    cal.last_error = None
    cal.lease_owner, cal.lease_until = owner, now + lease
    return rep


def set_grant(session: Session, rep_id: str, grant: str) -> None:
    """A grant the provider changed during a call (rotated refresh token)."""
    rep = session.get(Rep, rep_id)
    if rep is not None and rep.oauth_grant is not None:
        rep.oauth_grant = grant


def delete(session: Session, rep_id: str) -> None:
    """The rep and all its data (cascade)."""
    row = session.get(Rep, rep_id)
    if row is not None:
        session.delete(row)


def meetings_of(session: Session, rep_id: str) -> list[Meeting]:
    """Every meeting of the rep (re-decided when its registration changes)."""
    return list(session.scalars(select(Meeting).where(Meeting.rep_id == rep_id)))


def flush(session: Session) -> None:
    session.flush()
