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
) -> Rep:
    """The rep, and its calendar wanting the initial sync, leased to ``owner``.

    Should the registering process die before the sync completes, another replica resumes
    it once the lease expires.
    """
    rep = Rep(id=rep_id, status=RepStatus.SYNCING, created_at=now, **fields)
    session.add(rep)
    session.flush()  # the rep row first: the calendar row refers to it
    session.add(
        Calendar(
            rep_id=rep_id,
            provider=rep.provider,
            generation=0,
            attempts=0,
            sync_seq=0,
            sync_wanted_at=now,
            lease_owner=owner,
            lease_until=now + lease,
        )
    )
    return rep


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
