"""Calendar sync: pull pages from the provider, apply each page with its cursor.

Each page is applied in one transaction together with the cursor that resumes after it,
so a process killed mid-sync resumes where it stopped. Notifications only mark a calendar
as wanting a sync (``sync_wanted_at``); a notification that arrives while a sync runs
marks it again, so a burst becomes one sync in flight plus at most one after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.crash import crash_point
from app.db.leases import claim_due, work_in_lanes
from app.db.models import Calendar
from app.meetings.service import apply_changes
from app.nudges.events import set_rep_status
from app.runtime import Runtime
from app.sync import repository as repo
from app.sync.channels import start_watch
from connectors.base import (
    AuthFailed,
    CalendarEvent,
    CalendarRef,
    CursorExpired,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    SyncPage,
)
from policies.vocabulary import RepStatus

log = logging.getLogger(__name__)
MAX_PAGES = 10_000
MAX_YEARS_AHEAD = 50  # an event starting later than this is a data error, not a meeting
MAX_SKIPPED_NAMED = 5  # status_detail names this many skipped events, then counts


def absurd(ev: CalendarEvent, now: datetime) -> str | None:
    """Why an event cannot be a real calendar entry (None: it can).

    Such an event (end before start, a year 9999 typo) is skipped by the sync, never
    stored: the arithmetic of the windows would fail on it and stop the rep's sync.
    """
    if ev.start.tzinfo is None or ev.end.tzinfo is None:
        return "start or end without a time zone"
    if ev.end < ev.start:
        return f"ends ({ev.end.isoformat()}) before it starts ({ev.start.isoformat()})"
    limit = now.year + MAX_YEARS_AHEAD
    if ev.start.year > limit or ev.end.year > limit:
        return f"dated {ev.start.isoformat()}, more than {MAX_YEARS_AHEAD} years ahead"
    return None


def _skipped_detail(skipped: list[str]) -> str:
    named = "; ".join(skipped[:MAX_SKIPPED_NAMED])
    more = len(skipped) - MAX_SKIPPED_NAMED
    tail = f"; and {more} more" if more > 0 else ""
    noun = "event" if len(skipped) == 1 else "events"
    return f"skipped {len(skipped)} calendar {noun} that cannot be read: {named}{tail}"


def want_sync(
    session: Session, rep_id: str, now: datetime, min_interval: timedelta = timedelta(0)
) -> None:
    """Mark the calendar as wanting a sync; a retry scheduled later is left alone.

    A calendar synced less than ``min_interval`` ago waits that long (a burst of
    notifications becomes a few syncs, not one per notification); otherwise the sync is
    wanted now. Each request bumps ``sync_seq``; a sync that sees the number changed since
    it began keeps the mark, so exactly one more round follows.
    """
    repo.want_sync(session, rep_id, now, min_interval)


def want_full_sync(session: Session, rep_id: str, now: datetime) -> bool:
    """A full listing of the calendar, as soon as a worker is free (``POST …/resync``)."""
    return repo.want_full_sync(session, rep_id, now)


def want_sync_many(
    session: Session, rep_ids: Collection[str], now: datetime, min_interval: timedelta
) -> datetime | None:
    """``want_sync`` for several calendars in one statement (the webhook intake's batch);
    returns the earliest time one of those syncs is wanted."""
    return repo.want_sync_many(session, rep_ids, now, min_interval)


def want_quiet_synced(session: Session, now: datetime, interval: timedelta) -> int:
    """Ask a sync of every calendar not synced within ``interval`` (lost notifications)."""
    quiet = repo.quiet(session, now, interval)
    for rep_id in quiet:
        repo.want_sync(session, rep_id, now, timedelta(0))
    return len(quiet)


async def sync_due(rt: Runtime, *, limit: int = 20) -> int:
    """Claim calendars that want a sync and sync them; returns how many."""
    now, ids = await claim_due(
        rt, Calendar, key=Calendar.rep_id, due=Calendar.sync_wanted_at, limit=limit
    )
    # Calendars are independent: on PostgreSQL several are synced at once (one lane per
    # database thread), so one calendar's provider calls overlap the others' page
    # applies. SQLite has one writer: more lanes there only take CPU and the write lock
    # from the webhook intake (measured: ack p99 ×5 under a flood), so one.
    return await work_in_lanes(
        rt,
        Calendar,
        key=Calendar.rep_id,
        items=ids,
        lanes=1 if rt.db.is_sqlite else rt.db.workers,
        claimed_at=now,
        handle=lambda rep_id: sync_calendar(rt, rep_id, claimed=True),
    )


async def next_sync(rt: Runtime) -> datetime | None:
    """When the next calendar wants a sync (None: none does)."""
    return await rt.db.run(repo.earliest_due, rt.clock.now())


@dataclass(frozen=True, kw_only=True, slots=True)
class Round:
    """A sync round begun: where it reads from and what it resumes."""

    provider: str
    calendar: CalendarRef
    cursor: str | None
    generation: int
    baseline: bool  # the calendar's first sync: its past is read as it stands
    seq: int  # sync requests counted when the round began


def _start(
    session: Session, rt: Runtime, rep_id: str, now: datetime, claimed: bool
) -> Round | None:
    if not claimed and not repo.claim(
        session, rep_id, now=now, owner=rt.instance_id, lease=rt.lease
    ):
        return None
    cal = repo.calendar(session, rep_id)
    rep = repo.rep(session, rep_id)
    if cal is None or rep is None:
        return None
    if rep.status == RepStatus.PENDING_CONNECTION:  # the rep has not connected it yet
        cal.sync_wanted_at = cal.lease_owner = cal.lease_until = None
        return None
    if cal.cursor is None:
        cal.generation += 1  # a new full listing: events it does not list again are gone
    return Round(
        provider=rep.provider,
        calendar=rep.calendar_ref(),
        cursor=cal.cursor,
        generation=cal.generation,
        baseline=cal.synced_at is None,
        seq=cal.sync_seq,
    )


def _apply(
    session: Session,
    rt: Runtime,
    rep_id: str,
    page: SyncPage,
    generation: int,
    baseline: bool,
    now: datetime,
    skipped: list[str],
) -> bool:
    cal = repo.calendar(session, rep_id)
    rep = repo.rep(session, rep_id)
    if cal is None or rep is None or cal.lease_owner != rt.instance_id:
        return False  # rep deleted, or our lease was taken over: stop here
    events = []
    for ev in page.events:
        why = absurd(ev, now)
        if why is None:
            events.append(ev)
        else:
            skipped.append(f"event {ev.event_id} {why}")
            log.warning("sync.event_skipped", extra={"rep_id": rep_id, "event_id": ev.event_id})
    apply_changes(
        session,
        rt,
        rep,
        events,
        page.removed_ids,
        now=now,
        generation=generation,
        baseline=baseline,
        prune=page.full and page.last_page,
    )
    cal.cursor = page.cursor
    cal.lease_until = now + rt.lease
    return True


def _finish(
    session: Session,
    rt: Runtime,
    rep_id: str,
    seq: int,
    now: datetime,
    error: str | None,
    retry_at: datetime | None,
    status: RepStatus | None,
    skipped: list[str],
    full: bool,
) -> bool:
    """Record the round's outcome; True when the calendar works but has no live channel."""
    cal = repo.calendar(session, rep_id)
    rep = repo.rep(session, rep_id)
    if cal is None or rep is None:
        return False
    unwatched = False
    if error is None:
        cal.synced_at = now
        cal.attempts = 0
        cal.last_error = None
        # A notification during the sync keeps the request: one more round after this one.
        if cal.sync_seq == seq:
            cal.sync_wanted_at = None
        # Access granted again (re-consent) or the outage is over: the rep recovers.
        # Events the round skipped are named; a full listing without any clears the note.
        detail = rep.status_detail
        if skipped:
            detail = _skipped_detail(skipped)
        elif full or rep.status != RepStatus.ACTIVE:
            detail = None
        set_rep_status(session, rt, rep, RepStatus.ACTIVE, detail, now)
        unwatched = not repo.has_channel(session, rep_id)
    else:
        cal.attempts += 1
        cal.last_error = error
        cal.sync_wanted_at = retry_at
        if status:
            set_rep_status(session, rt, rep, status, error, now)
    if cal.lease_owner == rt.instance_id:
        cal.lease_owner = None
        cal.lease_until = None
    return unwatched


def _fetch_ahead(fetch: Coroutine[Any, Any, SyncPage]) -> asyncio.Task[SyncPage]:
    task = asyncio.ensure_future(fetch)
    # Not awaited when the round stops early: its outcome is read, never left to warn.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


def _reset_cursor(session: Session, rep_id: str) -> None:
    cal = repo.calendar(session, rep_id)
    if cal is not None:
        cal.cursor = None
        cal.generation += 1


async def sync_calendar(rt: Runtime, rep_id: str, *, claimed: bool = False) -> bool:
    """Run one sync round for a rep's calendar; True when it completed."""
    started = rt.clock.now()
    begun = await rt.db.run(_start, rt, rep_id, started, claimed)
    if begun is None:
        return False
    with rt.held.holding(Calendar, Calendar.rep_id, [rep_id]):  # a long round keeps its lease
        return await _sync_round(rt, rep_id, begun, started)


async def _sync_round(rt: Runtime, rep_id: str, begun: Round, started: datetime) -> bool:
    cursor, generation = begun.cursor, begun.generation
    error: str | None = None
    retry_at: datetime | None = None
    status: RepStatus | None = None
    skipped: list[str] = []
    full = cursor is None
    try:
        provider = rt.provider(begun.provider)
        since = rt.sync_since(started)
        expired_once = False
        ahead: asyncio.Task[SyncPage] | None = None  # the next page, fetched meanwhile
        try:
            for _ in range(MAX_PAGES):
                try:
                    if ahead is not None:
                        page, ahead = await ahead, None
                    else:
                        page = await provider.sync_page(begun.calendar, cursor, since=since)
                except CursorExpired:
                    ahead = None
                    if expired_once:
                        raise
                    expired_once = True
                    log.warning("sync.cursor_expired", extra={"rep_id": rep_id})
                    await rt.db.run(_reset_cursor, rep_id)
                    cursor, generation = None, generation + 1
                    full = True
                    continue
                skipped.extend(f"event {sk}" for sk in page.skipped)
                if not page.last_page:  # read the next page while this one is stored
                    ahead = _fetch_ahead(
                        provider.sync_page(begun.calendar, page.cursor, since=since)
                    )
                ok = await rt.db.run(
                    _apply, rt, rep_id, page, generation, begun.baseline, rt.clock.now(), skipped
                )
                if not ok:
                    return False
                cursor = page.cursor
                if page.last_page:
                    break
                crash_point("sync.page_applied")
        finally:
            if ahead is not None:
                ahead.cancel()
    except AuthFailed as err:
        error, status = f"access refused by the provider: {err}", RepStatus.AUTH_FAILED
        retry_at = None  # re-consent needed; the safety net tries again later
    except QuotaExceeded as err:
        error, status = f"provider quota exceeded: {err}", RepStatus.SYNC_ERROR
        retry_at = started + timedelta(hours=1)
    except RateLimited as err:
        error = f"rate limited: {err}"
        retry_at = started + timedelta(seconds=max(err.retry_after or 0, 30))
    except ProviderError as err:
        error, status = f"provider unavailable: {err}", RepStatus.SYNC_ERROR
        retry_at = started + timedelta(seconds=60)
    except Exception as err:
        log.exception("sync.failed", extra={"rep_id": rep_id})
        error, status = f"sync failed: {type(err).__name__}: {err}", RepStatus.SYNC_ERROR
        retry_at = started + timedelta(seconds=60)
    unwatched = await rt.db.run(
        _finish, rt, rep_id, begun.seq, rt.clock.now(), error, retry_at, status, skipped, full
    )
    if unwatched:
        # Its first watch failed (or the channel was lost): the calendar works now, watch it.
        await start_watch(rt, rep_id)
    if retry_at is not None:
        rt.wake.sync(retry_at)
    return error is None
