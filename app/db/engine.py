"""Engine, sessions and the transaction boundary.

SQL runs synchronously in worker threads (``Database.run``), so the event loop that
acknowledges webhooks never waits on the database. One ``run`` is one transaction:
services never commit, the boundary commits once, so a decision and its outbox rows
live or die together.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
P = ParamSpec("P")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy drive transactions (BEGIN IMMEDIATE below), not pysqlite.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Take the write lock up front: no deadlock-prone read-then-upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # A bounded connect timeout: /readyz must answer "unavailable", not hang, while the
    # database is unreachable.
    return create_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args={"connect_timeout": 5}
    )


class Database:
    """The engine, a session factory and the thread pool that runs transactions."""

    def __init__(self, url: str, *, workers: int | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer: one thread avoids lock contention and busy waits.
        n = workers or (1 if self.is_sqlite else 8)
        self._pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="db")
        # Webhook intake gets threads of its own: an acknowledgement waits at most for the
        # transaction holding the write lock, never behind the queue of sync work.
        self._intake = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 4, thread_name_prefix="db-intake"
        )

    def transaction(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(session, ...)`` in one transaction, here, in this thread."""
        with self.sessions() as session, session.begin():
            return fn(session, *args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(session, ...)`` in one transaction on a database thread."""
        loop = asyncio.get_running_loop()
        # The caller's context (request or job id for the logs) follows into the thread.
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(
            self._pool, lambda: ctx.run(self.transaction, fn, *args, **kwargs)
        )

    async def intake(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Like ``run``, on the intake threads (short webhook transactions only)."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(
            self._intake, lambda: ctx.run(self.transaction, fn, *args, **kwargs)
        )

    def dispose(self) -> None:
        self._intake.shutdown(wait=True)
        self._pool.shutdown(wait=True)
        self.engine.dispose()


def ping(session: Session) -> None:
    """The cheapest round trip: raises when the database does not answer."""
    session.execute(text("SELECT 1"))
