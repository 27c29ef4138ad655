"""APScheduler 3 wiring: the scheduler only ticks; the work comes from rows.

Each kind of work (syncs, due meetings, deliveries, channel renewals) is a ``Ticker``: a
one-shot APScheduler job that runs the work until nothing is claimable, then re-arms
itself at the earliest due time the database reports, and at most ``poll`` seconds later
(another replica may have added work). Anything that makes work due sooner — a
notification, a decision, a nudge — calls ``wake`` to pull the next run forward. No job
store is shared between processes: the rows and their leases are the shared state.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app import logs
from app.clock import ManualClock
from app.db.leases import release_all
from app.runtime import Runtime
from app.scheduler import jobs
from app.simulation import trial_lock

log = logging.getLogger(__name__)


class Ticker:
    """One self-re-arming job; ``work`` returns the next due time (or None)."""

    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        name: str,
        work: Callable[[], Awaitable[datetime | None]],
        rt: Runtime,
        poll: float,
    ) -> None:
        self.scheduler, self.name, self.work, self.rt, self.poll = scheduler, name, work, rt, poll
        self._running = False
        self._again = False
        self._later: datetime | None = None  # the earliest future wake while running
        self._runs = itertools.count(1)
        self._next: datetime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._arm(self.rt.clock.now())

    def _arm(self, at: datetime) -> None:
        self._next = at
        real = datetime.now(UTC) + timedelta(seconds=self.rt.clock.seconds_until(at))
        # max_instances=2: _run re-arms itself just before it returns, and APScheduler still
        # counts that run as running; with 1, a re-arm due at once would be skipped (and,
        # a one-shot job, lost). Bodies never overlap: _wake does not arm while one runs.
        self.scheduler.add_job(
            self._run,
            "date",
            run_date=real,
            id=self.name,
            replace_existing=True,
            misfire_grace_time=None,
            max_instances=2,
        )

    async def _run(self) -> None:
        self._running = True
        self.idle.clear()
        # This task's own context; a wake from a request must not lend it its request id.
        logs.job_id.set(f"{self.name}-{next(self._runs)}")
        logs.request_id.set(None)
        nxt: datetime | None = None
        try:
            for _ in range(1000):
                self._again = False
                nxt = await self.work()
                if not self._again or self.rt.stopping:
                    break
        except Exception:
            log.exception("scheduler.tick_failed", extra={"job": self.name})
        finally:
            self._running = False
            self.idle.set()
        if self.scheduler.running:
            cap = self.rt.clock.now() + timedelta(seconds=self.poll)
            later, self._later = self._later, None
            self._arm(min(t for t in (nxt, later, cap) if t is not None))

    def wake(self, at: datetime | None = None) -> None:
        """Run no later than ``at`` (now when None); safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if _in_loop(loop):
            self._wake(at)
        else:
            loop.call_soon_threadsafe(self._wake, at)

    def _wake(self, at: datetime | None) -> None:
        now = self.rt.clock.now()
        at = now if at is None or at < now else at
        if self._running:
            if at <= now:
                self._again = True
            elif self._later is None or at < self._later:
                self._later = at  # armed when this run ends, whatever it found due
            return
        if not self.scheduler.running:
            return
        if self._next is None or at < self._next:
            self._arm(at)


def _serialised(
    rt: Runtime, work: Callable[[], Awaitable[datetime | None]]
) -> Callable[[], Awaitable[datetime | None]]:
    async def run() -> datetime | None:
        async with trial_lock(rt):
            return await work()

    return run


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class Scheduler:
    """The process's background work."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        poll = rt.settings.poll_seconds
        self.tickers: dict[str, Ticker] = {
            "sync": Ticker(self.scheduler, "sync", lambda: jobs.run_syncs(rt), rt, poll),
            "due": Ticker(self.scheduler, "due", lambda: jobs.run_due(rt), rt, poll),
            "deliveries": Ticker(
                self.scheduler, "deliveries", lambda: jobs.run_deliveries(rt), rt, poll
            ),
            "renewals": Ticker(
                self.scheduler, "renewals", lambda: jobs.run_renewals(rt), rt, max(poll, 60.0)
            ),
            "health": Ticker(self.scheduler, "health", lambda: jobs.run_health(rt), rt, poll),
        }
        if isinstance(rt.clock, ManualClock):  # a trial clock: take turns with its moves
            for ticker in self.tickers.values():
                ticker.work = _serialised(rt, ticker.work)

    def start(self) -> None:
        self.scheduler.start()
        for ticker in self.tickers.values():
            ticker.start()
        self.rt.wake.sync = self.tickers["sync"].wake
        self.rt.wake.due = self.tickers["due"].wake
        self.rt.wake.deliveries = self.tickers["deliveries"].wake
        self.rt.wake.renewals = self.tickers["renewals"].wake
        settings = self.rt.settings
        every: dict[str, tuple[Callable[[Runtime], Awaitable[object]], float]] = {
            # job id: (the job, seconds between runs)
            "safety_net": (
                jobs.safety_net,
                min(max(settings.safety_net_sync_seconds / 2, settings.poll_seconds), 900.0),
            ),
            "heartbeat": (jobs.heartbeat, max(settings.lease_seconds / 3, 0.1)),
            "prune": (jobs.prune, 3600.0),
        }
        for job_id, (job, seconds) in every.items():
            self.scheduler.add_job(
                job,
                "interval",
                args=[self.rt],
                id=job_id,
                seconds=seconds,
                max_instances=1,
                coalesce=True,
            )

    async def stop(self, grace: float) -> None:
        """Stop taking work, let running ticks finish within ``grace``, release leases.

        Running ticks see ``rt.stopping``: each finishes the item in hand and hands the
        rest of its batch back. Whatever is still held after ``grace`` is released too.
        """
        self.rt.stopping = True
        self.scheduler.pause()  # no new run starts; running ones are not cancelled
        idle = [t.idle.wait() for t in self.tickers.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*idle), timeout=grace)
        except TimeoutError:
            log.warning("scheduler.grace_expired", extra={"grace_seconds": grace})
        self.scheduler.shutdown(wait=False)
        await self.rt.db.run(release_all, self.rt.instance_id)
        log.info("scheduler.stopped", extra={"instance": self.rt.instance_id})
