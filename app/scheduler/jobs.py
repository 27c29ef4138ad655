"""The background jobs: module-level functions of the runtime, run by app/scheduler/runner.py."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.accounts.service import next_due as next_health
from app.accounts.service import prune as prune_history
from app.accounts.service import recompute_due
from app.db.leases import renew_held, try_lock
from app.db.models import JobLock
from app.delivery.service import deliver_due, next_attempt
from app.meetings.service import next_due, process_due
from app.meetings.service import prune as prune_meetings
from app.nudges import holds
from app.nudges.service import prune as prune_nudges
from app.runtime import Runtime
from app.sync.channels import next_renewal, renew_due, start_watch, unwatched
from app.sync.service import next_sync, sync_due, want_quiet_synced
from app.webhooks.service import prune as prune_notifications

log = logging.getLogger(__name__)


async def _drain(step: Callable[[Runtime], Awaitable[int]], rt: Runtime) -> None:
    for _ in range(10_000):
        if rt.stopping or await step(rt) == 0:
            return


async def run_syncs(rt: Runtime) -> datetime | None:
    await _drain(sync_due, rt)
    return await next_sync(rt)


async def run_due(rt: Runtime) -> datetime | None:
    """Due meetings, then due holds (placing and removing them through the provider)."""
    await _drain(process_due, rt)
    await _drain(holds.process_due, rt)
    times = (await next_due(rt), await holds.next_due(rt))
    return min((t for t in times if t is not None), default=None)


async def run_deliveries(rt: Runtime) -> datetime | None:
    await _drain(deliver_due, rt)
    return await next_attempt(rt)


async def run_health(rt: Runtime) -> datetime | None:
    """Recompute the health of accounts that changed (or are due their daily recompute)."""
    await _drain(recompute_due, rt)
    return await next_health(rt)


async def run_renewals(rt: Runtime) -> datetime | None:
    await _drain(renew_due, rt)
    return await next_renewal(rt)


@dataclass(frozen=True, kw_only=True, slots=True)
class SafetyNet:
    """One safety-net round: calendars asked to sync, reps left without a channel."""

    marked: int
    orphans: tuple[str, ...]


def _mark_quiet(session: Session, rt: Runtime) -> SafetyNet | None:
    """Ask a sync of every calendar not synced within the safety-net interval; returns
    how many, and the reps left without a channel — None when another replica runs it."""
    now = rt.clock.now()
    interval = timedelta(seconds=rt.settings.safety_net_sync_seconds)
    if not try_lock(
        session,
        JobLock,
        "safety_net",
        now=now,
        owner=rt.instance_id,
        lease=min(interval, timedelta(minutes=10)),
    ):
        return None  # another replica runs it
    marked = want_quiet_synced(session, now, interval)
    return SafetyNet(marked=marked, orphans=tuple(unwatched(session, rt, now)))


async def safety_net(rt: Runtime) -> None:
    """In case notifications were lost: sync calendars that have been quiet too long, and
    watch calendars left without a channel (a registration that died half-way)."""
    outcome = await rt.db.run(_mark_quiet, rt)
    if outcome is None:
        return
    if outcome.marked:
        log.info("sync.safety_net", extra={"calendars": outcome.marked})
        rt.wake.sync(None)
    for rep_id in outcome.orphans:
        error = await start_watch(rt, rep_id)
        log.info("watch.rewatched", extra={"rep_id": rep_id, "error": error})


async def heartbeat(rt: Runtime) -> int:
    """Renew the leases on the work this process has in hand; returns how many."""
    held = rt.held.snapshot()
    if not held:
        return 0
    now = rt.clock.now()
    return await rt.db.run(renew_held, held, owner=rt.instance_id, now=now, lease=rt.lease)


async def prune(rt: Runtime) -> int:
    """Forget what is past its retention (NEXTSTEP_RETENTION_DAYS); returns rows deleted."""
    done = await rt.db.run(prune_notifications, rt)
    done += await rt.db.run(prune_history, rt)  # account history past its retention
    done += await rt.db.run(prune_nudges, rt)
    done += await rt.db.run(prune_meetings, rt)  # calendar events and finished meetings
    if done:
        log.info("retention.pruned", extra={"rows": done})
    return done
