"""Account health benchmark (issue 5): recompute every account's health from its history.

    python bench/health_bench.py [--accounts 2000 --months 18]
    python bench/health_bench.py --backend postgresql   # needs NEXTSTEP_BENCH_POSTGRES_URL

Bulk-loaded (SQLAlchemy Core, not measured): ``--accounts`` customer accounts with
contacts, each with ``--months`` of calendar history as ``app.meetings.service.record_history``
writes it — a weekly meeting (a few accounts twice a week, some monthly), each first
``seen`` a few days before, with the moves, response changes and cancellations a real
calendar shows (~5 % of meetings moved, ~5 % declined, some decision makers dropping
off, some accounts going quiet), plus a few CRM signals.

Measured:
1. recompute: every account marked due, then ``app.accounts.service.recompute_due`` run
   until nothing is due — the real job path (claim with leases, load the history, fold it,
   the five signals, score, store, nudge/event when the level changes); accounts/s, and the
   time per account;
2. the same rows through a plain SQL aggregate (``GROUP BY account_domain``: meetings,
   moves, cancellations, last start), the floor of "touch every history row once";
   the ratio recompute / aggregate;
3. memory: tracemalloc peak during a second, untimed recompute round (tracemalloc slows
   Python down), and the process's ``ru_maxrss``;
4. what recording history costs a calendar change: a sandbox change (a meeting moved)
   → push → sync → ``apply_changes`` (with ``record_history`` and marking the account
   due) → committed, median over ``--changes`` samples, with ``record_history`` as shipped
   and replaced by a no-op (health itself is recomputed by its own job, never inline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text, update  # noqa: E402

from app.accounts.service import recompute_due  # noqa: E402
from app.clock import ManualClock  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.db.models import (  # noqa: E402
    Account,
    AccountHealthRow,
    AccountHistory,
    AccountSignal,
    Rep,
)
from app.main import build_runtime, close_runtime  # noqa: E402
from app.secrets import generate_key  # noqa: E402

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
D, H = timedelta(days=1), timedelta(hours=1)


def _history(i: int, rep_id: str, months: int, rng: random.Random) -> list[dict]:
    domain = f"customer{i}.com"
    dm, champ, user = f"dana.{i}@{domain}", f"lee.{i}@{domain}", f"bob.{i}@{domain}"
    period = rng.choice((7 * D, 7 * D, 7 * D, 3.5 * D, 28 * D))
    quiet = rng.random() < 0.1  # goes quiet for the last two months
    dropoff = rng.random() < 0.15  # the decision maker stops coming
    rows: list[dict] = []
    start = NOW - months * 30 * D + rng.random() * period
    n = 0
    while start < NOW + 14 * D:
        if quiet and NOW - 60 * D < start < NOW:
            start += period
            continue
        eid = f"c{i}e{n}"
        late = dropoff and start > NOW - 35 * D
        people = {user: "accepted", champ: "accepted"}
        if not late:
            people[dm] = "accepted" if rng.random() > 0.05 else "declined"
        base = dict(
            account_domain=domain,
            rep_id=rep_id,
            event_id=eid,
            series_id=f"c{i}s",
            end=start + H,
            title="Weekly review",
            actor=None,
            attendees=people,
            cancelled=False,
            detail=None,
            old_start=None,
            actor_side=None,
        )
        rows.append({**base, "kind": "seen", "at": start - 3 * D, "start": start})
        if rng.random() < 0.05:  # moved later by a day or two, by the customer
            new = start + rng.choice((1, 2)) * D
            rows.append(
                {
                    **base,
                    "kind": "moved",
                    "at": start - D,
                    "start": new,
                    "end": new + H,
                    "old_start": start,
                    "actor_side": "account",
                }
            )
        if rng.random() < 0.03:
            rows.append(
                {
                    **base,
                    "kind": "cancelled",
                    "at": start - D,
                    "start": start,
                    "cancelled": True,
                    "actor_side": "account",
                }
            )
        if rng.random() < 0.05:
            rows.append(
                {
                    **base,
                    "kind": "response",
                    "at": start - 2 * D,
                    "start": start,
                    "attendees": {**people, user: "declined"},
                    "actor": user,
                    "actor_side": "account",
                    "detail": {"from": "accepted", "to": "declined"},
                }
            )
        start += period
        n += 1
    return rows


def load(rt, accounts: int, months: int) -> int:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    rep_id = str(uuid.uuid4())
    total = 0
    with rt.db.engine.begin() as conn:
        conn.execute(
            insert(Rep),
            [
                {
                    "id": rep_id,
                    "email": "owner@seller.io",
                    "provider": "sandbox",
                    "timezone": "UTC",
                    "locale": "en",
                    "working_hours": {},
                    "status": "active",
                    "created_at": NOW,
                }
            ],
        )
        conn.execute(
            insert(Account),
            [
                {
                    "domain": f"customer{i}.com",
                    "name": f"Customer {i}",
                    "stage": "customer",
                    "owner_email": "owner@seller.io",
                    "renewal_date": (NOW + rng.randint(10, 400) * D).date().isoformat(),
                    "contacts": [
                        {"email": f"dana.{i}@customer{i}.com", "role": "decision_maker"},
                        {"email": f"lee.{i}@customer{i}.com", "role": "champion"},
                        {"email": f"bob.{i}@customer{i}.com", "role": "user"},
                    ],
                    "updated_at": NOW,
                }
                for i in range(accounts)
            ],
        )
        batch: list[dict] = []
        for i in range(accounts):
            batch += _history(i, rep_id, months, rng)
            if len(batch) > 20_000:
                conn.execute(insert(AccountHistory), batch)
                total += len(batch)
                batch = []
        if batch:
            conn.execute(insert(AccountHistory), batch)
            total += len(batch)
        conn.execute(
            insert(AccountSignal),
            [
                {
                    "account_domain": f"customer{i}.com",
                    "kind": "small_talk_gone",
                    "occurred_at": NOW - rng.randint(1, 120) * D,
                    "note": None,
                    "created_at": NOW,
                }
                for i in range(0, accounts, 7)
            ],
        )
        conn.execute(
            insert(AccountHealthRow),
            [
                {
                    "domain": f"customer{i}.com",
                    "signals": [],
                    "renewal_near": False,
                    "worsened": 0,
                    "due_at": NOW,
                }
                for i in range(accounts)
            ],
        )
    return total


AGGREGATE = (
    "SELECT account_domain, COUNT(*), "
    "SUM(CASE WHEN kind = 'seen' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN kind = 'moved' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN cancelled THEN 1 ELSE 0 END), MAX(start) "
    "FROM account_history GROUP BY account_domain"
)


async def change_to_decision(rt, samples: int) -> dict:  # type: ignore[no-untyped-def]
    """Median change → committed decision, with history recording and without."""
    import statistics

    from app.meetings import service as history
    from app.reps.schemas import RepIn
    from app.reps.service import register
    from app.simulation import Simulation
    from app.sync.service import sync_due
    from connectors.base import Attendee, CalendarEvent

    sb = rt.providers["sandbox"]
    rep = "anne@seller.io"
    for k in range(40):  # a calendar with some history: 40 meetings with 10 accounts
        start = NOW + (k - 20) * D
        sb.put_event(
            rep,
            CalendarEvent(
                event_id=f"m{k}",
                title="Review",
                start=start,
                end=start + H,
                organizer_email=rep,
                attendees=(
                    Attendee(email=rep, response="accepted", is_organizer=True),
                    Attendee(email=f"dana@customer{k % 10}.com", response="accepted"),
                ),
            ),
        )
    await register(rt, RepIn(email=rep, provider="sandbox", timezone="UTC"))
    sim = Simulation(rt)
    await sim.settle()
    real = history.record_history
    inside: list[float] = []

    def timed(*a, **k):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        real(*a, **k)
        inside.append(time.perf_counter() - t0)

    with_history: list[float] = []
    without: list[float] = []
    try:
        for i in range(2 * samples):  # interleaved, so load and warm-up hit both alike
            on = i % 2 == 0
            history.record_history = timed if on else (lambda *a, **k: None)  # type: ignore[assignment]
            eid = f"m{20 + i % 20}"
            t0 = time.perf_counter()
            sb.move_event(rep, eid, sb.calendar(rep).events[eid].start + timedelta(minutes=30))
            await sb.drain()
            await sync_due(rt)
            (with_history if on else without).append(time.perf_counter() - t0)
    finally:
        history.record_history = real  # type: ignore[assignment]
    ms = lambda xs: round(statistics.median(xs) * 1000, 2)  # noqa: E731
    return {
        "change_to_decision_ms_with_history": ms(with_history),
        "change_to_decision_ms_without_history": ms(without),
        "history_record_ms": ms(inside),
    }


async def measure(url: str, accounts: int, months: int, changes: int) -> dict:
    settings = load_settings(
        database_url=url,
        sandbox=True,
        internal_domains="seller.io",
        api_keys="bench",
        secret_key=generate_key(),  # PostgreSQL refuses to start without one
    )
    if not url.startswith("sqlite"):
        from app.db import migrate
        from app.db.engine import make_engine

        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    rt = build_runtime(settings, clock=ManualClock(NOW), channels={})
    try:
        t0 = time.perf_counter()
        rows = load(rt, accounts, months)
        load_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        agg = await rt.db.run(lambda s: s.execute(text(AGGREGATE)).fetchall())
        aggregate_s = time.perf_counter() - t0
        assert len(agg) == accounts

        t0 = time.perf_counter()
        done = 0
        while (n := await recompute_due(rt, limit=200)) > 0:
            done += n
        recompute_s = time.perf_counter() - t0
        assert done == accounts, done
        # Memory in a second round (tracemalloc slows Python down: not timed).
        await rt.db.run(lambda s: s.execute(update(AccountHealthRow).values(due_at=NOW)))
        tracemalloc.start()
        while await recompute_due(rt, limit=200) > 0:
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        levels = await rt.db.run(
            lambda s: dict(
                s.execute(
                    select(AccountHealthRow.level, func.count()).group_by(AccountHealthRow.level)
                ).all()
            )
        )
        latency = await change_to_decision(rt, changes)
        return {
            "backend": "sqlite" if url.startswith("sqlite") else "postgresql",
            "accounts": accounts,
            "months": months,
            "history_rows": rows,
            "rows_per_account": round(rows / accounts, 1),
            "load_s": round(load_s, 2),
            "recompute_s": round(recompute_s, 2),
            "per_account_ms": round(recompute_s / accounts * 1000, 2),
            "accounts_per_s": round(accounts / recompute_s),
            "aggregate_s": round(aggregate_s, 3),
            "ratio_recompute_over_aggregate": round(recompute_s / aggregate_s, 1),
            "tracemalloc_peak_mb": round(peak / 2**20, 1),
            "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "levels": levels,
            **latency,
        }
    finally:
        await close_runtime(rt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    pg = os.environ.get("NEXTSTEP_BENCH_POSTGRES_URL")
    if args.backend is None:  # each backend in its own process: its own peak memory
        for backend in ("sqlite", "postgresql") if pg else ("sqlite",):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--backend",
                    backend,
                    "--accounts",
                    str(args.accounts),
                    "--months",
                    str(args.months),
                    "--changes",
                    str(args.changes),
                ],
                check=True,
            )
        return
    print(
        f"# {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs",
        file=sys.stderr,
    )
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            result = asyncio.run(
                measure(f"sqlite:///{tmp}/bench.db", args.accounts, args.months, args.changes)
            )
    else:
        if not pg:
            sys.exit("set NEXTSTEP_BENCH_POSTGRES_URL")
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        from sqlalchemy import create_engine

        admin = create_engine(pg)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in pg else "?"
        try:
            result = asyncio.run(
                measure(
                    f"{pg}{sep}options=-csearch_path%3D{schema}",
                    args.accounts,
                    args.months,
                    args.changes,
                )
            )
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
