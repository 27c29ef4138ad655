"""Run the background work on a manual clock, jumping from one due time to the next.

The demo and the tests use it to live through days in milliseconds: the same job
functions the scheduler runs, called until nothing is due, with the clock moved to the
next due time the database reports. No APScheduler, no sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from app.accounts.service import next_due as next_health
from app.accounts.service import recompute_due
from app.clock import ManualClock
from app.delivery.service import deliver_due, next_attempt
from app.meetings.service import next_due, process_due
from app.nudges import holds
from app.runtime import Runtime
from app.sync.channels import next_renewal, renew_due
from app.sync.service import next_sync, sync_due

_TRIAL_LOCKS: dict[str, asyncio.Lock] = {}


def trial_lock(rt: Runtime) -> asyncio.Lock:
    """One lock per runtime on a trial clock: ``POST /sandbox/clock`` and the background
    jobs take turns, so the clock's answer comes only when all due work is done."""
    return _TRIAL_LOCKS.setdefault(rt.instance_id, asyncio.Lock())


class Simulation:
    def __init__(self, rt: Runtime) -> None:
        if not isinstance(rt.clock, ManualClock):
            raise TypeError("Simulation needs a runtime with a ManualClock")
        self.rt = rt
        self.clock: ManualClock = rt.clock

    async def settle(self) -> None:
        """Do everything that is due now, including what that work makes due now."""
        for _ in range(10_000):
            for provider in self.rt.providers.values():  # in-process pushes first
                await provider.drain()
            done = 0
            done += await sync_due(self.rt)
            done += await process_due(self.rt)
            done += await holds.process_due(self.rt)
            done += await deliver_due(self.rt)
            done += await renew_due(self.rt)
            done += await recompute_due(self.rt)
            if not done:
                return
        raise RuntimeError("simulation did not settle")

    async def next_event(self) -> datetime | None:
        times = [
            await f(self.rt)
            for f in (next_sync, next_due, holds.next_due, next_attempt, next_renewal, next_health)
        ]
        return min((t for t in times if t is not None), default=None)

    async def run_until(self, until: datetime) -> None:
        """Advance the clock to ``until``, doing all due work at its due time on the way."""
        await self.settle()
        for _ in range(1_000_000):
            nxt = await self.next_event()
            if nxt is None or nxt > until:
                break
            # Work due now that nobody could take (a foreign lease) must not stall time.
            self.clock.set(max(nxt, self.clock.now() + timedelta(milliseconds=1)))
            await self.settle()
        if until > self.clock.now():
            self.clock.set(until)
        await self.settle()
