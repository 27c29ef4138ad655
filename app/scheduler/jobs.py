"""The background jobs: module-level functions of the runtime, run by app/scheduler/runner.py."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.accounts.health import next_due as next_health
from app.accounts.health import prune as prune_history
from app.accounts.health import recompute_due
from app.db.leases import try_lock
from app.db.models import Calendar, JobLock
from app.meetings.service import next_due, process_due
from app.nudges.delivery import deliver_due, next_attempt
from app.runtime import Runtime
from app.sync.channels import next_renewal, renew_due, start_watch, unwatched
from app.sync.service import next_sync, sync_due, want_sync
from app.webhooks.service import prune as prune_notifications

log = logging.getLogger(__name__)


async def _drain(step, rt: Runtime) -> None:  # type: ignore[no-untyped-def]
    for _ in range(10_000):
        if rt.stopping or await step(rt) == 0:
            return


async def run_syncs(rt: Runtime) -> datetime | None:
    await _drain(sync_due, rt)
    return await next_sync(rt)


async def run_due(rt: Runtime) -> datetime | None:
    await _drain(process_due, rt)
    return await next_due(rt)


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


def _mark_quiet(session: Session, rt: Runtime) -> tuple[int, list[str]] | None:
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
    quiet = list(
        session.scalars(
            select(Calendar.rep_id).where(
                Calendar.sync_wanted_at.is_(None),
                or_(Calendar.synced_at.is_(None), Calendar.synced_at < now - interval),
            )
        )
    )
    for rep_id in quiet:
        want_sync(session, rep_id, now)
    return len(quiet), unwatched(session, rt, now)


async def safety_net(rt: Runtime) -> None:
    """In case notifications were lost: sync calendars that have been quiet too long, and
    watch calendars left without a channel (a registration that died half-way)."""
    outcome = await rt.db.run(_mark_quiet, rt)
    if outcome is None:
        return
    marked, orphans = outcome
    if marked:
        log.info("sync.safety_net", extra={"calendars": marked})
        rt.wake.sync(None)
    for rep_id in orphans:
        error = await start_watch(rt, rep_id)
        log.info("watch.rewatched", extra={"rep_id": rep_id, "error": error})


async def prune(rt: Runtime) -> None:
    await rt.db.run(prune_notifications, rt)
    await rt.db.run(prune_history, rt)  # account history past its retention
