"""Claiming work from rows with leases, the same code on SQLite and PostgreSQL.

A claim is one conditional ``UPDATE … WHERE lease free … RETURNING``; on PostgreSQL the
candidate rows are picked with ``FOR UPDATE SKIP LOCKED``, so replicas never wait on each
other nor take the same row. A replica that dies holds its rows only until the lease
expires; then another takes them over.

Leases are short (NEXTSTEP_LEASE_SECONDS, 15 s) so a replica killed with SIGKILL delays
its work by seconds, not minutes; work that takes longer than a lease is not lost to
another replica meanwhile, because what a process has in hand (``Holdings``) is renewed
by its heartbeat (``renew_held``, every third of a lease) until it is done or handed back.
A row claimed and then forgotten (a handler that crashed) is not in hand: its lease runs
out as before.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, func, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db.models import Base, JobLock

T = TypeVar("T")


def lease_free(model: Any, now: datetime) -> ColumnElement[bool]:
    return or_(model.lease_until.is_(None), model.lease_until <= now)


def claim(
    session: Session,
    model: Any,
    *,
    key: Any,
    due: Any,
    now: datetime,
    owner: str,
    lease: timedelta,
    limit: int,
    where: tuple[ColumnElement[bool], ...] = (),
) -> list[Any]:
    """Lease up to ``limit`` rows whose ``due`` time has come; returns their keys."""
    candidates = (
        select(key)
        .where(due.is_not(None), due <= now, lease_free(model, now), *where)
        .order_by(due)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    stmt = (
        update(model)
        .where(key.in_(candidates.scalar_subquery()), lease_free(model, now))
        .values(lease_owner=owner, lease_until=now + lease)
        .returning(key)
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(stmt).scalars())


def claim_one(
    session: Session,
    model: Any,
    *,
    key: Any,
    value: Any,
    now: datetime,
    owner: str,
    lease: timedelta,
) -> bool:
    """Lease one row by key when its lease is free (or already ours)."""
    stmt = (
        update(model)
        .where(key == value, or_(lease_free(model, now), model.lease_owner == owner))
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]


@functools.cache
def _insert_ignore(model: Any, dialect: str) -> Any:
    """One statement per table and dialect, built once: the values come as parameters
    (SQLAlchemy compiles it once per set of columns given, then reuses it)."""
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    # rowcount is not reliable with RETURNING (psycopg reports -1): ask for the key back.
    return ins(model).on_conflict_do_nothing().returning(*model.__table__.primary_key.columns)


def insert_ignore(session: Session, model: Any, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row is new."""
    conn = session.connection()
    return conn.execute(_insert_ignore(model, conn.dialect.name), values).first() is not None


def try_lock(
    session: Session, model: Any, name: str, *, now: datetime, owner: str, lease: timedelta
) -> bool:
    """Take the cluster-wide singleton lock ``name`` (JobLock) for ``lease``."""
    insert_ignore(session, model, {"name": name, "owner": None, "until": None})
    stmt = (
        update(model)
        .where(
            model.name == name, or_(model.until.is_(None), model.until < now, model.owner == owner)
        )
        .values(owner=owner, until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]


def next_time(
    session: Session,
    model: Any,
    due: Any,
    now: datetime,
    where: tuple[ColumnElement[bool], ...] = (),
) -> datetime | None:
    """When work on ``model`` next becomes claimable: its due time, or the end of the
    lease another process holds on it (so nobody spins on work it cannot take)."""
    held = and_(model.lease_until.is_not(None), model.lease_until > now, model.lease_until > due)
    base = (due.is_not(None), *where)
    # Two index walks instead of min(CASE …) over every row, which scans the table. The
    # first free row in ``due`` order; then the held rows in front of it: a held row
    # further on ends its lease after its due time, so after ``first_free`` too.
    first_free = session.scalar(select(due).where(*base, not_(held)).order_by(due).limit(1))
    ahead = (due < first_free,) if first_free is not None else ()
    first_held = session.scalar(select(func.min(model.lease_until)).where(*base, held, *ahead))
    return min((t for t in (first_free, first_held) if t is not None), default=None)


def release(session: Session, model: Any, *, key: Any, keys: list[Any], owner: str) -> None:
    """Hand back leases on ``keys`` that ``owner`` still holds (work it will not do now)."""
    if keys:
        session.execute(
            update(model)
            .where(key.in_(keys), model.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )


def leased_models() -> list[Any]:
    """Every table whose rows are claimed with a lease (``lease_owner``/``lease_until``)."""
    return [m.class_ for m in Base.registry.mappers if "lease_owner" in m.class_.__table__.c]


def release_all(session: Session, owner: str) -> None:
    """Hand back every lease and singleton lock ``owner`` holds, so others take over at once."""
    for model in leased_models():
        session.execute(
            update(model)
            .where(model.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
    session.execute(
        update(JobLock)
        .where(JobLock.owner == owner)
        .values(owner=None, until=None)
        .execution_options(synchronize_session=False)
    )


class Holdings:
    """The leased rows this process has work in hand on, per table: what its heartbeat
    renews. Counted, so the same row held twice (a sync inside a claimed batch) stays
    held until both let go. Used from the event loop only."""

    def __init__(self) -> None:
        self._held: dict[tuple[Any, Any], Counter[Any]] = {}

    def add(self, model: Any, key: Any, keys: Iterable[Any]) -> None:
        self._held.setdefault((model, key), Counter()).update(keys)

    def discard(self, model: Any, key: Any, keys: Iterable[Any]) -> None:
        held = self._held.get((model, key))
        if held is None:
            return
        held.subtract(keys)
        for k in [k for k, n in held.items() if n <= 0]:
            del held[k]

    @contextmanager
    def holding(self, model: Any, key: Any, keys: Sequence[Any]) -> Iterator[None]:
        """Keep ``keys`` renewed while the block runs."""
        self.add(model, key, keys)
        try:
            yield
        finally:
            self.discard(model, key, keys)

    def snapshot(self) -> list[tuple[Any, Any, list[Any]]]:
        """(model, key column, keys) of everything in hand now, for ``renew_held``."""
        return [(m, k, list(keys)) for (m, k), keys in self._held.items() if keys]


def renew_held(
    session: Session,
    held: list[tuple[Any, Any, list[Any]]],
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
) -> int:
    """The heartbeat: extend the leases ``owner`` still holds on rows it has in hand."""
    renewed = 0
    for model, key, keys in held:
        for i in range(0, len(keys), 500):
            result = session.execute(
                update(model)
                .where(key.in_(keys[i : i + 500]), model.lease_owner == owner)
                .values(lease_until=now + lease)
                .execution_options(synchronize_session=False)
            )
            renewed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return renewed


def keep_going(rt: Any, claimed_at: datetime) -> bool:
    """Whether a batch claimed at ``claimed_at`` may go on: not shutting down, and the
    lease is not half gone (past that, the rest is handed back for others to take)."""
    return not rt.stopping and rt.clock.now() < claimed_at + rt.lease / 2


async def claim_due(
    rt: Any,
    model: Any,
    *,
    key: Any,
    due: Any,
    limit: int,
    where: tuple[ColumnElement[bool], ...] = (),
) -> tuple[datetime, list[Any]]:
    """Lease up to ``limit`` due rows for this process; returns (claim time, keys)."""
    now = rt.clock.now()
    keys = await rt.db.run(
        lambda s: claim(
            s,
            model,
            key=key,
            due=due,
            now=now,
            owner=rt.instance_id,
            lease=rt.lease,
            limit=limit,
            where=where,
        )
    )
    return now, keys


async def work_through(
    rt: Any,
    model: Any,
    *,
    key: Any,
    items: Sequence[T],
    claimed_at: datetime,
    handle: Callable[[T], Awaitable[object]],
    key_of: Callable[[T], Any] = lambda item: item,
) -> int:
    """Handle claimed ``items`` one by one, in hand (renewed by the heartbeat) until each is
    done; when the process is stopping or the batch's first lease is half gone, hand the
    rest back for others to take. Returns how many were handled."""
    keys = [key_of(x) for x in items]
    rt.held.add(model, key, keys)
    done = 0
    try:
        for item in items:
            if not keep_going(rt, claimed_at):
                await rt.db.run(release, model, key=key, keys=keys[done:], owner=rt.instance_id)
                return done
            await handle(item)
            rt.held.discard(model, key, [keys[done]])
            done += 1
        return done
    finally:
        rt.held.discard(model, key, keys[done:])  # handed back, or a handler raised


async def work_in_lanes(
    rt: Any,
    model: Any,
    *,
    key: Any,
    items: Sequence[T],
    lanes: int,
    claimed_at: datetime,
    handle: Callable[[T], Awaitable[object]],
    key_of: Callable[[T], Any] = lambda item: item,
) -> int:
    """``work_through`` the claimed ``items`` dealt round-robin into up to ``lanes`` lanes
    that run at once. Returns how many were handled in all."""
    done = await asyncio.gather(
        *(
            work_through(
                rt,
                model,
                key=key,
                items=items[lane::lanes],
                claimed_at=claimed_at,
                handle=handle,
                key_of=key_of,
            )
            for lane in range(min(lanes, len(items)))
        )
    )
    return sum(done)
