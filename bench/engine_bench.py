"""Engine benchmark (foundation issue): due-meeting lookup, change-to-decision, memory.

    python bench/engine_bench.py [--reps 2000 --meetings-per-rep 50 --due 1000 --samples 500]
    python bench/engine_bench.py --backend postgresql   # needs NEXTSTEP_BENCH_POSTGRES_URL

Without ``--backend`` it runs SQLite, and PostgreSQL too when NEXTSTEP_BENCH_POSTGRES_URL
is set, each in its own process so that each peak memory figure is its own.

Bulk-loaded (SQLAlchemy Core, not measured): reps, calendars, watch channels, events and
meetings, plus the same calendars in the in-process sandbox provider. Meeting state and
``due_at`` come from the real pure policy code (``policies.classify``/``policies.state``),
and a sample of reps is re-evaluated through ``app.meetings.service.evaluate`` afterwards
to check that the load matches what the engine itself would have written.

Measured, on the real code paths:
1. finding due meetings: ``app.db.leases.claim`` exactly as ``process_due`` calls it
   (limit 200), against the raw indexed ``SELECT id FROM meetings WHERE due_at <= :now
   ORDER BY due_at LIMIT 200``, both one transaction through the same engine; plus the
   query plans of both, and ``next_due`` (the scheduler's "when next?" query);
2. change to decision: a sandbox calendar change (a rep sends a follow-up invite, or a
   prospect accepts one) → sandbox push → ``app.webhooks.service.receive`` (verify, store,
   ``want_sync``) → ``app.sync.service.sync_due`` → ``sync_calendar`` → ``apply_changes``
   → the meeting's new state committed; the jobs are driven directly, as
   ``app.simulation.Simulation`` does, so APScheduler's own dispatch hop is not included;
3. peak memory: ``ru_maxrss`` of the process after load and measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, create_engine, event, insert, select, text, update

from app.clock import ManualClock
from app.config import load_settings
from app.db import migrate
from app.db.engine import make_engine
from app.db.leases import claim, lease_free
from app.db.models import Calendar, Event, Meeting, Rep, UTCDateTime, WatchChannelRow
from app.main import build_runtime, close_runtime
from app.meetings import repository as meetings_repo
from app.meetings.service import evaluate, follow_up_json, meeting_id, next_due
from app.runtime import Runtime
from app.secrets import generate_key
from app.sync.service import sync_due
from connectors.base import Attendee, CalendarEvent
from policies.classify import EventFacts, account_key, classify, external_people
from policies.hours import WorkingHours
from policies.state import Candidate, MeetingFacts, decide

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday; the ManualClock stays here
INTERNAL = ("seller.io",)
REGISTERED = T0 - timedelta(days=7)
BATCH = 200  # process_due's claim limit
RAW_DUE = "SELECT id FROM meetings WHERE due_at <= :now ORDER BY due_at LIMIT 200"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


# --- the load ---------------------------------------------------------------------------


class Plan:
    """What the load put where, for the measurements to pick changes from."""

    def __init__(self) -> None:
        self.needs_next_step: list[tuple[str, str, str, str]] = []  # rep id, email, event, prospect
        self.invited: list[tuple[str, str, str, str, str]] = []  # … + follow-up event id
        self.states: Counter[str] = Counter()
        self.due = 0


def _event(
    rep_email: str,
    event_id: str,
    start: datetime,
    minutes: int,
    guests: dict[str, str],
    title: str,
    created: datetime,
) -> CalendarEvent:
    return CalendarEvent(
        event_id=event_id,
        title=title,
        start=start,
        end=start + timedelta(minutes=minutes),
        organizer_email=rep_email,
        created=created,
        updated=created,
        attendees=(
            Attendee(email=rep_email, response="accepted", is_organizer=True),
            *(Attendee(email=e, response=r) for e, r in guests.items()),
        ),  # type: ignore[arg-type]
    )


def _slot(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    """A random start between lo and hi, on a quarter hour."""
    t = lo + (hi - lo) * rng.random()
    return t.replace(minute=t.minute // 15 * 15, second=0, microsecond=0)


def build_rep(
    rng: random.Random, r: int, n: int, due_here: int, policy: Any
) -> tuple[dict[str, Any], list[CalendarEvent], list[dict[str, Any]], Plan]:
    """One rep's calendar: a few meetings that just ended (some invited to a follow-up,
    some without one, ``due_here`` of those already past their invite window) and upcoming
    meetings spread over the next 14 days with ~20 accounts; state from the real policy."""
    rep_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    email = f"rep{r:05d}@seller.io"
    rep = {"id": rep_id, "email": email}
    plan = Plan()
    events: list[CalendarEvent] = []
    eval_at: dict[str, datetime] = {}
    n_invited = 2 if n >= 10 else 0
    n_nns = max(2, due_here)
    for j in range(n_invited):  # ended, a follow-up invite pending on the prospect
        acct = f"p{r}i{j}.example.com"
        end = _slot(rng, T0 - timedelta(hours=40), T0 - timedelta(hours=3))
        past = _event(
            email,
            f"e{r}i{j}",
            end - timedelta(hours=1),
            60,
            {f"buyer@{acct}": "accepted"},
            f"Discovery {acct}",
            end - timedelta(days=5),
        )
        fu = _event(
            email,
            f"e{r}f{j}",
            _slot(rng, T0 + timedelta(days=1), end + timedelta(days=12)),
            30,
            {f"buyer@{acct}": "needs_action"},
            f"Next step {acct}",
            min(T0, end + timedelta(minutes=rng.randint(10, 180))),
        )
        events += [past, fu]
        plan.invited.append((rep_id, email, past.event_id, f"buyer@{acct}", fu.event_id))
    for j in range(n_nns):  # ended, no follow-up yet
        acct = f"p{r}n{j}.example.com"
        if j < due_here:  # invite window closed already: due, waiting for the scheduler
            end = T0 - timedelta(hours=2) - timedelta(seconds=rng.randint(60, 4 * 3600))
            end = end.replace(microsecond=rng.randint(0, 999_999))
        else:
            end = T0 - timedelta(seconds=rng.randint(60, 2 * 3600 - 60))
        ev = _event(
            email,
            f"e{r}n{j}",
            end - timedelta(minutes=45),
            45,
            {f"buyer@{acct}": "accepted", f"cfo@{acct}": "tentative"},
            f"Demo {acct}",
            end - timedelta(days=6),
        )
        events.append(ev)
        if j < due_here:
            eval_at[ev.event_id] = ev.end  # last evaluated when it ended
        plan.needs_next_step.append((rep_id, email, ev.event_id, f"buyer@{acct}"))
    accounts = [f"c{r}a{a}.example.com" for a in range(20)]
    for k in range(n - len(events)):  # upcoming
        acct = rng.choice(accounts)
        guests = {
            f"{name}@{acct}": rng.choice(("accepted", "needs_action", "tentative"))
            for name in rng.sample(("ana", "bo", "cy", "di"), rng.randint(1, 3))
        }
        if rng.random() < 0.3:
            guests["sam@seller.io"] = "accepted"  # a colleague along
        events.append(
            _event(
                email,
                f"e{r}u{k}",
                _slot(rng, T0 + timedelta(minutes=15), T0 + timedelta(days=14)),
                rng.choice((30, 45, 60)),
                guests,
                f"Call {acct}",
                T0 - timedelta(days=rng.randint(1, 20)),
            )
        )

    # Meeting rows from the real policy code, as evaluate() would write them.
    events.sort(key=lambda e: (e.start, e.event_id))
    starts = [e.start for e in events]
    facts = [
        EventFacts(
            event_id=e.event_id,
            title=e.title,
            start=e.start,
            end=e.end,
            all_day=e.all_day,
            status=e.status,
            event_type=e.event_type,
            rep_response=e.rep_response,
            attendees=e.attendees,
            seen_at=e.created or T0,
        )
        for e in events
    ]
    by_account: list[dict[str, dict[str, str]]] = []  # per event: account → responses
    for f in facts:
        groups: dict[str, dict[str, str]] = {}
        for a in external_people(f.attendees, INTERNAL, email):
            groups.setdefault(account_key(a.email), {})[a.email] = a.response
        by_account.append(groups)
    meetings = []
    for f in facts:
        prospect = classify(f, INTERNAL, email)
        assert prospect is not None
        lo = bisect.bisect_left(starts, f.end)
        hi = bisect.bisect_right(starts, f.end + policy.horizon)
        candidates = [
            Candidate(
                event_id=g.event_id,
                title=g.title,
                start=g.start,
                end=g.end,
                responses=by_account[x][prospect.account],
                seen_at=g.seen_at,
            )
            for x, g in zip(range(lo, hi), facts[lo:hi], strict=True)
            if g.event_id != f.event_id and prospect.account in by_account[x]
        ]
        now = eval_at.get(f.event_id, T0)
        d = decide(
            MeetingFacts(start=f.start, end=f.end, tracked_from=REGISTERED),
            candidates,
            policy,
            now,
            can_escalate=False,
        )
        assert not d.nudges, (f.event_id, d)
        plan.states[d.state] += 1
        plan.due += d.due_at is not None and d.due_at <= T0
        meetings.append(
            {
                "id": meeting_id(rep_id, f.event_id),
                "rep_id": rep_id,
                "event_id": f.event_id,
                "title": f.title,
                "start": f.start,
                "end": f.end,
                "account_domain": prospect.account,
                "external_attendees": list(prospect.external_attendees),
                "state": d.state,
                "follow_up": follow_up_json(d.follow_up),
                "policy": policy.name,
                "tracked_from": REGISTERED,
                "baseline_declined_id": d.baseline_declined_id,
                "waived_reason": None,
                "waived_at": None,
                "snoozed_until": None,
                "last_nudge_at": None,
                "last_nudge_kind": None,
                "last_nudge_state": None,
                "due_at": d.due_at,
                "lease_owner": None,
                "lease_until": None,
                "updated_at": now,
            }
        )
    return rep, events, meetings, plan


def load(rt: Runtime, args: argparse.Namespace) -> Plan:
    """Bulk-insert the rows (Core, batches of 100 reps) and fill the sandbox provider."""
    rng = random.Random(args.seed)
    policy = rt.policies.default
    sandbox: Any = rt.providers["sandbox"]
    hours = WorkingHours.parse(None, field="working_hours").to_dict()
    due_slots = Counter(rng.sample(range(args.reps), min(args.due, args.reps)))
    if args.due > args.reps:  # more due than reps: spread the rest
        for i in range(args.due - args.reps):
            due_slots[i % args.reps] += 1
    total = Plan()
    step = 100
    for first in range(0, args.reps, step):
        reps, cals, chans, evs, mts = [], [], [], [], []
        for r in range(first, min(args.reps, first + step)):
            rep, events, meetings, plan = build_rep(
                rng, r, args.meetings_per_rep, due_slots[r], policy
            )
            total.needs_next_step += plan.needs_next_step
            total.invited += plan.invited
            total.states += plan.states
            total.due += plan.due
            email = rep["email"]
            reps.append(
                {
                    **rep,
                    "provider": "sandbox",
                    "timezone": "Europe/Paris",
                    "locale": "en",
                    "working_hours": hours,
                    "manager_email": None,
                    "policy": None,
                    "status": "active",
                    "status_detail": None,
                    "created_at": REGISTERED,
                }
            )
            cals.append(
                {
                    "rep_id": rep["id"],
                    "provider": "sandbox",
                    "cursor": f"inc:{len(events)}",
                    "generation": 1,
                    "synced_at": T0 - timedelta(minutes=5),
                    "sync_wanted_at": None,
                    "sync_seq": 0,
                    "attempts": 0,
                    "last_error": None,
                    "lease_owner": None,
                    "lease_until": None,
                }
            )
            channel_id, token = str(uuid.uuid4()), uuid.uuid4().hex
            chans.append(
                {
                    "channel_id": channel_id,
                    "rep_id": rep["id"],
                    "provider": "sandbox",
                    "token": token,
                    "resource_id": f"sandbox:{email}",
                    "expires_at": T0 + timedelta(days=7),
                    "renew_at": T0 + timedelta(days=6),
                    "created_at": T0 - timedelta(days=1),
                    "lease_owner": None,
                    "lease_until": None,
                }
            )
            for ev in events:
                evs.append(
                    {
                        "rep_id": rep["id"],
                        "event_id": ev.event_id,
                        "title": ev.title,
                        "start": ev.start,
                        "end": ev.end,
                        "all_day": False,
                        "status": ev.status,
                        "event_type": ev.event_type,
                        "organizer_email": ev.organizer_email,
                        "rep_response": ev.rep_response,
                        "attendees": meetings_repo.attendees_json(ev),
                        "recurring_event_id": None,
                        "original_start": None,
                        "created": ev.created,
                        "first_seen_at": ev.created,
                        "updated_at": ev.created,
                        "generation": 1,
                    }
                )
            mts += meetings
            cal = sandbox.calendar(email)  # the provider side: same events, same cursor
            cal.events = {ev.event_id: ev for ev in events}
            cal.log = [ev.event_id for ev in events]
            cal.channels[channel_id] = token
        with rt.db.engine.begin() as conn:
            for table, rows in (
                (Rep, reps),
                (Calendar, cals),
                (WatchChannelRow, chans),
                (Event, evs),
                (Meeting, mts),
            ):
                conn.execute(insert(table), rows)
    if not rt.db.is_sqlite:
        with rt.db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))  # what autovacuum would do after a bulk load
    return total


def check_load(rt: Runtime, n: int) -> int:
    """Re-evaluate ``n`` reps' meetings through the engine; count differing rows."""

    def _check(session: Any, rep_id: str) -> int:
        rep = session.get(Rep, rep_id)
        meetings = list(session.scalars(select(Meeting).where(Meeting.rep_id == rep_id)))
        before = {m.id: (m.state, m.due_at, m.follow_up) for m in meetings}
        evaluate(session, rt, rep, meetings, now=T0)
        diff = 0
        for m in meetings:
            state, due, fu = before[m.id]
            if (m.state, fu) != (state, m.follow_up) or (
                m.due_at != due and not (due is not None and due <= T0 and m.due_at == T0)
            ):
                diff += 1  # a due meeting re-evaluated now is due "now": not a difference
        session.rollback()
        return diff

    with rt.db.sessions() as session:
        ids = list(session.scalars(select(Rep.id).order_by(Rep.email).limit(n)))
    return sum(rt.db.transaction(_check, rep_id) for rep_id in ids)


# --- 1. finding due meetings ------------------------------------------------------------


def capture_sql(rt: Runtime, fn: Any) -> tuple[str, Any]:
    """Run ``fn`` in a rolled-back transaction; the last SQL statement it sent and its params."""
    seen: list[tuple[str, Any]] = []

    def _hook(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        seen.append((statement, parameters))

    event.listen(rt.db.engine, "before_cursor_execute", _hook)
    try:
        with rt.db.sessions() as session:
            session.begin()
            fn(session)
            session.rollback()
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", _hook)
    return next(s for s in reversed(seen) if not s[0].startswith(("BEGIN", "ROLLBACK")))


def explain(rt: Runtime, statement: str, params: Any) -> list[str]:
    """The backend's plan for a captured statement (UPDATEs are not run: rolled back)."""
    prefix = (
        "EXPLAIN QUERY PLAN "
        if rt.db.is_sqlite
        else "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
    )
    raw = rt.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if rt.db.is_sqlite:
            cur.execute("BEGIN")
        cur.execute(prefix + statement, params)
        rows = cur.fetchall()
        raw.rollback() if not rt.db.is_sqlite else cur.execute("ROLLBACK")
    finally:
        raw.close()
    if rt.db.is_sqlite:
        depth: dict[int, int] = {0: 0}
        out = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, 0) + 1
            out.append("  " * (depth[node] - 1) + detail)
        return out
    return [r[0] for r in rows]


def bench_due(rt: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    now = rt.clock.now()
    owner = rt.instance_id

    def _claim(s: Any) -> list[str]:  # exactly process_due's call
        return claim(
            s,
            Meeting,
            key=Meeting.id,
            due=Meeting.due_at,
            now=now,
            owner=owner,
            lease=rt.lease,
            limit=BATCH,
        )

    raw = text(RAW_DUE).bindparams(bindparam("now", type_=UTCDateTime()))

    def _select(s: Any) -> list[str]:
        return list(s.execute(raw, {"now": now}).scalars())

    find = (
        select(Meeting.id)  # claim's candidate query on its own: the find step
        .where(Meeting.due_at.is_not(None), Meeting.due_at <= now, lease_free(Meeting, now))
        .order_by(Meeting.due_at)
        .limit(BATCH)
    )

    def _find(s: Any) -> list[str]:
        return list(s.scalars(find))

    def _release(s: Any, ids: list[str]) -> None:
        s.execute(
            update(Meeting)
            .where(Meeting.id.in_(ids), Meeting.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )

    def _release_each(s: Any, ids: list[str]) -> None:  # as _plan does, one meeting at a time
        for mid in ids:
            meetings_repo.release(s, mid, owner)

    tx = rt.db.transaction
    # Same rows?
    selected, claimed = tx(_select), tx(_claim)
    tx(_release, claimed)
    same = sorted(selected) == sorted(claimed)
    all_due = text(RAW_DUE.replace(" LIMIT 200", "")).bindparams(
        bindparam("now", type_=UTCDateTime())
    )
    due_total = len(tx(lambda s: list(s.execute(all_due, {"now": now}).scalars())))

    t_select, t_find, t_claim, t_release, t_release_each, t_next = [], [], [], [], [], []
    cpu_select: list[float] = []
    cpu_claim: list[float] = []
    for i in range(args.due_rounds + 5):
        z = time.perf_counter()
        tx(_find)
        a, ca = time.perf_counter(), time.process_time()
        tx(_select)
        b, cb = time.perf_counter(), time.process_time()
        ids = tx(_claim)
        c, cc = time.perf_counter(), time.process_time()
        if i % 2:
            tx(_release, ids)
        else:
            tx(_release_each, ids)
        d = time.perf_counter()
        tx(meetings_repo.earliest_due, now)
        e = time.perf_counter()
        if i >= 5:  # warm-up
            t_select.append(b - a)
            t_find.append(a - z)
            cpu_select.append(cb - ca)
            cpu_claim.append(cc - cb)
            t_claim.append(c - b)
            (t_release if i % 2 else t_release_each).append(d - c)
            t_next.append(e - d)
        assert len(ids) == BATCH or len(ids) == due_total

    # Draining every due row: successive claims until none is left, then release all.
    def drain() -> float:
        got: list[str] = []
        a = time.perf_counter()
        while batch := tx(_claim):
            got += batch
        took = time.perf_counter() - a
        assert len(got) == due_total
        tx(_release, got)
        return took

    t_drain = statistics.median(drain() for _ in range(5))

    plans = {
        "raw SELECT": explain(rt, *capture_sql(rt, _select)),
        "claim (UPDATE … RETURNING)": explain(rt, *capture_sql(rt, _claim)),
        "claim's candidate SELECT alone": explain(rt, *capture_sql(rt, _find)),
        "next_due (earliest_due)": explain(
            rt, *capture_sql(rt, lambda s: meetings_repo.earliest_due(s, now))
        ),
    }
    med = statistics.median
    return {
        "due_total": due_total,
        "same_rows": same,
        "select_ms": med(t_select) * 1e3,
        "claim_ms": med(t_claim) * 1e3,
        "find_ms": med(t_find) * 1e3,
        "ratio_find": med(t_find) / med(t_select),
        "release_bulk_ms": med(t_release) * 1e3,
        "release_each_ms": med(t_release_each) * 1e3,
        "next_due_ms": med(t_next) * 1e3,
        "drain_ms": t_drain * 1e3,
        "ratio": med(t_claim) / med(t_select),
        "cpu_select_ms": med(cpu_select) * 1e3,
        "cpu_claim_ms": med(cpu_claim) * 1e3,
        "ratio_cycle": (med(t_claim) + med(t_release)) / med(t_select),
        "plans": plans,
    }


# --- 2. change to decision --------------------------------------------------------------


async def bench_changes(rt: Runtime, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed + 1)
    sandbox: Any = rt.providers["sandbox"]
    # One change per rep (distinct reps), half invites, half acceptances.
    invites = {}
    for rep_id, email, event_id, prospect in plan.needs_next_step:
        invites.setdefault(rep_id, (email, event_id, prospect))
    accepts = {}
    for rep_id, email, event_id, prospect, fu in plan.invited:
        accepts.setdefault(rep_id, (email, event_id, prospect, fu))
    reps = list(invites)
    rng.shuffle(reps)
    samples = []
    for i, rep_id in enumerate(reps[: args.samples]):
        samples.append(
            ("invite", rep_id) if i % 2 == 0 or rep_id not in accepts else ("accept", rep_id)
        )

    total, receive, sync, cpu_used, wrong = [], [], [], [], 0
    for kind, rep_id in samples:
        if kind == "invite":
            email, event_id, prospect = invites[rep_id]
            end = rt.db.transaction(lambda s: s.get(Meeting, meeting_id(rep_id, event_id)).end)  # noqa: B023
            fu = CalendarEvent(
                event_id=f"{event_id}-next",
                title="Next step",
                start=end + timedelta(days=3),
                end=end + timedelta(days=3, minutes=30),
                organizer_email=email,
                attendees=(
                    Attendee(email=email, response="accepted", is_organizer=True),
                    Attendee(email=prospect),
                ),
            )
            expect = "invited"
        else:
            email, event_id, prospect, fu_id = accepts[rep_id]
            expect = "secured"
        cpu = time.process_time()
        a = time.perf_counter()
        if kind == "invite":
            sandbox.put_event(email, fu)  # the rep sends the follow-up invite
        else:
            sandbox.respond(email, fu_id, prospect, "accepted")  # the prospect accepts it
        await sandbox.drain()  # push → receive: verify, store, want_sync
        b = time.perf_counter()
        synced = await sync_due(rt)  # claim → sync_calendar → apply_changes → commit
        c = time.perf_counter()
        cpu_used.append(time.process_time() - cpu)
        total.append(c - a)
        receive.append(b - a)
        sync.append(c - b)
        state = rt.db.transaction(lambda s: s.get(Meeting, meeting_id(rep_id, event_id)).state)  # noqa: B023
        wrong += synced != 1 or state != expect
    kinds = Counter(k for k, _ in samples)
    ms = [t * 1e3 for t in total]
    return {
        "samples": len(samples),
        "kinds": dict(kinds),
        "wrong": wrong,
        "median_ms": statistics.median(ms),
        "p99_ms": pct(ms, 99),
        "max_ms": max(ms),
        "receive_median_ms": statistics.median(receive) * 1e3,
        "sync_median_ms": statistics.median(sync) * 1e3,
        "cpu_median_ms": statistics.median(cpu_used) * 1e3,
    }


# --- the run ----------------------------------------------------------------------------


def database_url(backend: str, workdir: str) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{workdir}/bench.db", None
    base = os.environ.get("NEXTSTEP_BENCH_POSTGRES_URL")
    if not base:
        sys.exit("NEXTSTEP_BENCH_POSTGRES_URL is not set")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", drop


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "backend": args.backend,
        "rss_start_mb": rss_mb(),
        "loadavg_start": os.getloadavg()[0],
    }
    keep = tempfile.mkdtemp(prefix="nextstep-bench-", dir=args.workdir) if args.workdir else None
    with (
        contextlib.nullcontext(keep)
        if keep
        else tempfile.TemporaryDirectory(prefix="nextstep-bench-") as workdir
    ):
        url, drop = database_url(args.backend, workdir)
        try:
            if not url.startswith("sqlite"):
                engine = make_engine(url)
                migrate.upgrade(engine)
                engine.dispose()
            settings = load_settings(
                database_url=url,
                sandbox=True,
                internal_domains=",".join(INTERNAL),
                sync_min_interval_seconds=0,  # the engine's cost per change, no burst debounce
                secret_key=generate_key(),  # PostgreSQL refuses to start without one
            )
            rt = build_runtime(settings, clock=ManualClock(T0), channels={})
            try:
                a = time.perf_counter()
                plan = load(rt, args)
                out["load_s"] = time.perf_counter() - a
                out["states"] = dict(plan.states)
                out["meetings"] = sum(plan.states.values())
                out["due_loaded"] = plan.due
                out["rss_loaded_mb"] = rss_mb()
                out["load_check_diffs"] = check_load(rt, 20)
                print(
                    f"[{args.backend}] loaded {args.reps} reps, {out['meetings']} meetings "
                    f"{dict(plan.states)} in {out['load_s']:.1f}s; re-evaluated 20 reps: "
                    f"{out['load_check_diffs']} differences",
                    flush=True,
                )
                out["due"] = bench_due(rt, args)
                print(f"[{args.backend}] due lookup done", flush=True)
                if args.profile:  # cProfile of the change-to-decision samples only
                    import cProfile

                    async def inline(fn: Any, *a: Any, **kw: Any) -> Any:
                        return rt.db.transaction(fn, *a, **kw)  # the DB thread's work, visible

                    rt.db.run = inline  # type: ignore[method-assign]
                    prof = cProfile.Profile()
                    prof.enable()
                    out["change"] = await bench_changes(rt, plan, args)
                    prof.disable()
                    prof.dump_stats(args.profile)
                else:
                    out["change"] = await bench_changes(rt, plan, args)
                print(f"[{args.backend}] change-to-decision done", flush=True)
                out["next_due_after"] = str(await next_due(rt))
            finally:
                await close_runtime(rt)
        finally:
            if drop is not None:
                drop()
    out["loadavg_end"] = os.getloadavg()[0]
    out["rss_end_mb"] = rss_mb()
    out["peak_rss_mb"] = peak_mb()
    return out


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    d, c = r["due"], r["change"]
    print(
        f"\n=== {r['backend']}: {args.reps} reps × {args.meetings_per_rep} = {r['meetings']} open "
        f"meetings, {d['due_total']} due ==="
    )
    for name, lines in d["plans"].items():
        print(f"-- plan: {name}")
        for line in lines:
            print(f"   {line}")
    rows = [
        ("raw indexed SELECT … LIMIT 200 (median)", f"{d['select_ms']:.2f} ms"),
        ("claim() as process_due calls it, limit 200 (median)", f"{d['claim_ms']:.2f} ms"),
        ("  ratio claim / raw SELECT (goal < 2)", f"{d['ratio']:.2f}"),
        (
            "  CPU time of this process: SELECT / claim (median)",
            f"{d['cpu_select_ms']:.2f} / {d['cpu_claim_ms']:.2f} ms",
        ),
        ("claim's candidate SELECT alone, the find step (median)", f"{d['find_ms']:.2f} ms"),
        ("  ratio find step / raw SELECT", f"{d['ratio_find']:.2f}"),
        ("  release of the 200 leases, one UPDATE", f"{d['release_bulk_ms']:.2f} ms"),
        ("  ratio (claim + release) / raw SELECT", f"{d['ratio_cycle']:.2f}"),
        ("  release one by one, as _plan does", f"{d['release_each_ms']:.2f} ms"),
        ("  same rows as the raw SELECT", str(d["same_rows"])),
        (f"claim all {d['due_total']} due rows in batches of 200", f"{d['drain_ms']:.1f} ms"),
        ("next_due() (scheduler's next wake-up)", f"{d['next_due_ms']:.2f} ms"),
        (
            f"change → decision median ({c['samples']} changes, goal < 20 ms)",
            f"{c['median_ms']:.2f} ms",
        ),
        ("change → decision p99", f"{c['p99_ms']:.2f} ms"),
        ("change → decision max", f"{c['max_ms']:.2f} ms"),
        ("  of which push + receive (median)", f"{c['receive_median_ms']:.2f} ms"),
        ("  of which sync + apply_changes + commit (median)", f"{c['sync_median_ms']:.2f} ms"),
        ("  CPU time of this process per change (median)", f"{c['cpu_median_ms']:.2f} ms"),
        ("  wrong outcomes (state not the expected one)", str(c["wrong"])),
        ("RSS after load", f"{r['rss_loaded_mb']:.0f} MB"),
        ("peak RSS, ru_maxrss (goal < 300 MB)", f"{r['peak_rss_mb']:.0f} MB"),
        ("bulk load time (not measured work)", f"{r['load_s']:.1f} s"),
        (
            "machine load average, start → end (2 CPUs)",
            f"{r['loadavg_start']:.1f} → {r['loadavg_end']:.1f}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v:>10}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=2000)
    p.add_argument("--meetings-per-rep", type=int, default=50)
    p.add_argument("--due", type=int, default=1000, help="meetings due now among them")
    p.add_argument("--samples", type=int, default=500, help="calendar changes timed")
    p.add_argument("--due-rounds", type=int, default=100, help="timed claim/select rounds")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--backend", choices=("sqlite", "postgresql"))
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--profile", help="write a cProfile of the change samples to this file")
    p.add_argument("--workdir", help="keep the SQLite file in a directory under this one")
    args = p.parse_args()
    if args.backend is None:  # each backend in its own process: its own peak memory
        backends = ["sqlite"] + (
            ["postgresql"] if os.environ.get("NEXTSTEP_BENCH_POSTGRES_URL") else []
        )
        print(
            f"python {platform.python_version()}, {os.cpu_count()} CPUs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
        for backend in backends:
            cmd = [sys.executable, __file__, *sys.argv[1:], "--backend", backend]
            if subprocess.run(cmd).returncode:
                sys.exit(f"{backend} run failed")
        return
    result = asyncio.run(run(args))
    report(result, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)


if __name__ == "__main__":
    main()
