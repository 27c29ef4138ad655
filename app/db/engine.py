"""Engine, sessions and the transaction boundary.

SQL runs synchronously in worker threads (``Database.run``), so the event loop that
acknowledges webhooks never waits on the database. One ``run`` is one transaction:
services never commit, the boundary commits once, so a decision and its outbox rows
live or die together.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Generic, ParamSpec, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
P = ParamSpec("P")
I = TypeVar("I")  # noqa: E741 - an item handed to a group commit
R = TypeVar("R")


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


class WriteLock:
    """SQLite's one writer, taken in this process before SQLite's own lock.

    Two threads of one process each opening ``BEGIN IMMEDIATE`` would otherwise meet in
    SQLite's busy handler, which polls with sleeps growing to 100 ms: a webhook waiting
    behind a 2 ms sync transaction could sleep 50 ms. Here the waiter wakes the moment the
    holder is done. ``urgent`` holders (the webhook intake) go before the others waiting,
    but never twice in a row while another waits, so a flood does not starve the syncs.
    SQLite's busy timeout still covers other processes on the same file.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holder: int | None = None
        self._waiting = [0, 0]  # normal, urgent
        self._last_urgent = False

    def _may(self, urgent: bool) -> bool:
        if self._holder is not None:
            return False
        if urgent:
            return not (self._last_urgent and self._waiting[0])
        return not self._waiting[1] or self._last_urgent

    @contextmanager
    def hold(self, *, urgent: bool = False) -> Iterator[None]:
        me = threading.get_ident()
        if self._holder == me:  # already ours (a transaction inside a transaction)
            yield
            return
        with self._cond:
            self._waiting[urgent] += 1
            try:
                while not self._may(urgent):
                    self._cond.wait()
            finally:
                self._waiting[urgent] -= 1
            self._holder, self._last_urgent = me, urgent
        try:
            yield
        finally:
            with self._cond:
                self._holder = None
                self._cond.notify_all()


class Database:
    """The engine, a session factory and the thread pool that runs transactions."""

    def __init__(self, url: str, *, workers: int | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer: one thread avoids lock contention and busy waits.
        n = self.workers = workers or (1 if self.is_sqlite else 8)
        self._pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="db")
        # Webhook intake gets threads of its own: an acknowledgement waits at most for the
        # transaction holding the write lock, never behind the queue of sync work.
        self._intake = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 4, thread_name_prefix="db-intake"
        )
        self._groups: dict[Hashable, GroupCommit[Any, Any]] = {}
        self._groups_lock = threading.Lock()
        self.write_lock = WriteLock() if self.is_sqlite else None

    def transaction(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(session, ...)`` in one transaction, here, in this thread."""
        if self.write_lock is None:
            with self.sessions() as session, session.begin():
                return fn(session, *args, **kwargs)
        with self.write_lock.hold(), self.sessions() as session, session.begin():
            return fn(session, *args, **kwargs)

    def urgent_transaction(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``transaction``, going first among this process's waiting SQLite writers."""
        if self.write_lock is None:
            return self.transaction(fn, *args, **kwargs)
        with self.write_lock.hold(urgent=True):
            return self.transaction(fn, *args, **kwargs)

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
            self._intake, lambda: ctx.run(self.urgent_transaction, fn, *args, **kwargs)
        )

    async def grouped(self, write: Callable[[Session, list[I]], list[R | Exception]], item: I) -> R:
        """Hand ``item`` to the group commit of ``write`` (see ``GroupCommit``); returns its
        result once the transaction that wrote it has committed, or raises its error."""
        group = self._groups.get(write)
        if group is None:
            with self._groups_lock:
                group = self._groups.setdefault(write, GroupCommit(self, write))
        return await group.submit(item)  # type: ignore[no-any-return]

    def dispose(self) -> None:
        for group in list(self._groups.values()):
            group.close()
        self._intake.shutdown(wait=True)
        self._pool.shutdown(wait=True)
        self.engine.dispose()


_Waiting = tuple[Any, "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class GroupCommit(Generic[I, R]):
    """Group commit: items handed in from event loops are written by one thread, everything
    waiting at that moment in one transaction.

    ``write(session, items)`` returns one result per item — a value, or an exception that
    item's caller gets (a refusal, say: it wrote nothing for that item). Each caller's
    future resolves only after the transaction holding its item has committed, so an
    answer given on the strength of it (a webhook's 200) is never ahead of the database.
    No delay is added: while one transaction commits the next batch gathers, so a quiet
    service writes each item alone and a busy one up to ``max_batch`` at once. When a
    batch's transaction fails as a whole, its items are written again one by one, so one
    bad item does not fail the others.
    """

    def __init__(
        self,
        db: Database,
        write: Callable[[Session, list[I]], list[R | Exception]],
        *,
        max_batch: int = 512,
    ) -> None:
        self._db, self._write, self._max = db, write, max_batch
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="db-group", daemon=True)
        self._thread.start()

    async def submit(self, item: I) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put((item, future, loop))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._resolve(batch, self._results([item for item, _, _ in batch]))
            if stop:
                return

    def _results(self, items: list[I]) -> list[R | BaseException]:
        try:
            return list(self._db.urgent_transaction(self._write, items))
        except Exception as err:
            if len(items) == 1:
                return [err]
        out: list[R | BaseException] = []
        for item in items:  # isolate what failed the batch
            try:
                out.extend(self._db.urgent_transaction(self._write, [item]))
            except Exception as err:
                out.append(err)
        return out

    @staticmethod
    def _resolve(batch: list[_Waiting], results: list[Any]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for (_, future, loop), result in zip(batch, results, strict=True):
            by_loop.setdefault(loop, []).append((future, result))
        for loop, done in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, done)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass


def _settle(done: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in done:
        if future.cancelled():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


def ping(session: Session) -> None:
    """The cheapest round trip: raises when the database does not answer."""
    session.execute(text("SELECT 1"))
