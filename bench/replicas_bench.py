"""Scale-out figures: nudges/s and due-lag with 1 and 3 replicas, webhook intake against a
bare FastAPI endpoint, and 10,000 calendars in one process (RSS, CPU).

    python bench/replicas_bench.py                      # everything (~10 min)
    python bench/replicas_bench.py --only nudges        # or: intake, calendars
    NEXTSTEP_TEST_POSTGRES_URL=postgresql+psycopg://…   # PostgreSQL for the replica parts

Everything on loopback: the Google emulator in this process, `nextstep serve`
subprocesses (tests/helpers/serve.py), a signed-webhook receiver in this process.
Prints figures; asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.test_serve_sandbox import Receiver  # noqa: E402
from tests.emulators.google.emulator import GoogleEmulator  # noqa: E402
from tests.emulators.google.harness import setup_google  # noqa: E402
from tests.emulators.google.serving import google_serve_env, push, register  # noqa: E402
from tests.helpers.serve import free_port, serve, wait_for  # noqa: E402

POLICY = """\
policies:
  - name: fast
    invite_within: PT2S
    accept_within: P2D
    horizon: P14D
    follow_up_duration: PT15M
    escalate_after: P3D
"""
INVITE_WITHIN = timedelta(seconds=2)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Schema:
    """A throwaway PostgreSQL schema, migrated with `nextstep migrate`."""

    def __init__(self, base: str) -> None:
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(base)
        with self.admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.name}"))
        sep = "&" if "?" in base else "?"
        self.url = f"{base}{sep}options=-csearch_path%3D{self.name}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTSTEP_")}
        subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            check=True,
            env={**env, "NEXTSTEP_DATABASE_URL": self.url},
            capture_output=True,
        )
        self.engine = create_engine(self.url)

    def close(self) -> None:
        self.engine.dispose()
        with self.admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {self.name} CASCADE"))
        self.admin.dispose()


def start_many(stack: ExitStack, envs: list[dict[str, str]], tmp: Path) -> list:
    contexts = [serve(env, tmp, port=free_port(), ready_timeout=120) for env in envs]
    with ThreadPoolExecutor(len(contexts)) as pool:
        servers = list(pool.map(lambda cm: cm.__enter__(), contexts))
    for cm in contexts:
        stack.push(cm.__exit__)
    return servers


# --- nudges/s and due-lag -------------------------------------------------------------------


def bench_nudges(
    pg: str,
    replicas: int,
    meetings: int,
    per_rep: int = 50,
    server_path: str | None = None,
    profile: str | None = None,
) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="nudges-"))
    schema = Schema(pg)
    emu = GoogleEmulator.start()
    receiver = Receiver("s3cret")
    try:
        key = setup_google(emu, tmp).key_file
        emails = [f"b{i}-{uuid.uuid4().hex[:6]}@corp.test" for i in range(meetings // per_rep)]
        for email in emails:
            emu.add_user(email)
        env = google_serve_env(
            emu,
            key,
            tmp,
            policy=POLICY,
            NEXTSTEP_DATABASE_URL=schema.url,
            NEXTSTEP_NUDGE_WEBHOOK_URL=receiver.url,
            NEXTSTEP_NUDGE_WEBHOOK_SECRET="s3cret",
            NEXTSTEP_LEASE_SECONDS="10",
            NEXTSTEP_LOG_LEVEL="WARNING",
        )
        with ExitStack() as stack:
            if server_path:
                os.chdir(server_path)  # `python -m app.cli` imports app from the cwd
            servers = start_many(stack, [env] * replicas, tmp)
            os.chdir(ROOT)
            clients = [stack.enter_context(s.client()) for s in servers]
            end = datetime.now(UTC) + timedelta(seconds=20)
            for email in emails:
                for n in range(per_rep):
                    emu.create_event(
                        email,
                        summary=f"M{n}",
                        start=end - timedelta(minutes=30),
                        end=end,
                        attendees=[f"x@p{n}-{email[:8]}.test"],
                    )

            def reg(i: int) -> None:
                for email in emails[i::replicas]:
                    register(clients[i], email)

            with ThreadPoolExecutor(replicas) as pool:
                list(pool.map(reg, range(replicas)))
            assert datetime.now(UTC) < end, "registration took longer than the margin"
            if profile:  # py-spy of the first replica while the windows close
                time.sleep(max(0.0, (end + INVITE_WITHIN - datetime.now(UTC)).total_seconds()))
                subprocess.Popen(
                    ["py-spy", "record", "-p", str(servers[0].proc.pid), "-o", profile]
                    + ["--format", "raw", "-d", "15", "-t", "-r", "200"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            wait_for(
                lambda: len({n["id"] for n in receiver.nudges}) >= meetings,
                timeout=900,
                interval=0.2,
            )
            with schema.engine.connect() as conn:
                created = [r[0] for r in conn.execute(text("SELECT created_at FROM nudges"))]
                delivered = [
                    r[0]
                    for r in conn.execute(
                        text("SELECT delivered_at FROM deliveries WHERE status = 'delivered'")
                    )
                ]
        closed = end + INVITE_WITHIN
        lags = [(c - closed).total_seconds() for c in created]
        dlags = [(d - closed).total_seconds() for d in delivered]
        span = max(lags) - max(0.0, min(lags))
        return {
            "replicas": replicas,
            "meetings": meetings,
            "nudges": len(created),
            "nudges_per_s": len(created) / span if span > 0 else float("inf"),
            "due_lag_p50": pct(lags, 50),
            "due_lag_p99": pct(lags, 99),
            "delivered_lag_p99": pct(dlags, 99),
        }
    finally:
        receiver.close()
        emu.stop()
        schema.close()


# --- webhook intake -------------------------------------------------------------------------

BARE_APP = """
from fastapi import FastAPI, Request, Response
app = FastAPI()
@app.post("/webhooks/google")
async def google(request: Request) -> Response:
    return Response(status_code=200)
"""


def hammer(url: str, make_headers, seconds: float, workers: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Closed loop: ``workers`` threads POST as fast as answers come, for ``seconds``."""
    counts: dict[int, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    seq = iter(range(10**9))

    def worker() -> None:
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < stop_at:
                with lock:
                    n = next(seq)
                t0 = time.perf_counter()
                try:
                    status = client.post(url, headers=make_headers(n), content=b"").status_code
                except httpx.HTTPError:
                    status = -1
                dt = time.perf_counter() - t0
                with lock:
                    counts[status] = counts.get(status, 0) + 1
                    latencies.append(dt)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    ok = sum(v for k, v in counts.items() if 200 <= k < 300)
    return {
        "sent": sum(counts.values()),
        "acked": ok,
        "rate": ok / elapsed,
        "busy_503": counts.get(503, 0),
        "errors": sum(v for k, v in counts.items() if k < 200 or k >= 300) - counts.get(503, 0),
        "p50_ms": 1000 * pct(latencies, 50),
        "p99_ms": 1000 * pct(latencies, 99),
    }


def bench_intake(
    pg: str, seconds: float, workers: int = 8, channels: int = 20
) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="intake-"))
    schema = Schema(pg)
    emu = GoogleEmulator.start()
    try:
        key = setup_google(emu, tmp).key_file
        emails = [f"w{i}-{uuid.uuid4().hex[:6]}@corp.test" for i in range(channels)]
        for email in emails:
            emu.add_user(email)
        env = google_serve_env(
            emu, key, tmp, NEXTSTEP_DATABASE_URL=schema.url, NEXTSTEP_LOG_LEVEL="WARNING"
        )
        with ExitStack() as stack:
            (srv,) = start_many(stack, [env], tmp)
            api = stack.enter_context(srv.client())
            live = []
            for email in emails:
                cid = register(api, email)["calendar"]["watch"][0]["channel_id"]
                live.append(emu.channels[cid])
            with schema.engine.connect() as conn:
                before = conn.execute(text("SELECT count(*) FROM notifications")).scalar_one()

            def headers(n: int) -> dict[str, str]:
                ch = live[n % len(live)]
                return {
                    "X-Goog-Channel-ID": ch.id,
                    "X-Goog-Channel-Token": ch.token or "",
                    "X-Goog-Resource-ID": ch.resource_id,
                    "X-Goog-Resource-State": "exists",
                    "X-Goog-Message-Number": str(1000 + n),
                    "X-Goog-Resource-URI": "x",
                }

            ours = hammer(f"{srv.url}/webhooks/google", headers, seconds, workers)
            time.sleep(1)
            with schema.engine.connect() as conn:
                stored = (
                    conn.execute(text("SELECT count(*) FROM notifications")).scalar_one() - before
                )
            ours["stored"] = stored
            ours["lost"] = ours["acked"] - stored  # acknowledged but not stored
        # the same sender against a bare FastAPI endpoint, same machine, same server
        app_file = tmp / "bare.py"
        app_file.write_text(BARE_APP)
        port = free_port()
        bare = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bare:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=tmp,
        )
        try:
            wait_for(lambda: _up(f"http://127.0.0.1:{port}/docs"), timeout=30)
            base = hammer(
                f"http://127.0.0.1:{port}/webhooks/google", headers, min(seconds, 20), workers
            )
        finally:
            bare.terminate()
            bare.wait()
        return {"nextstep": ours, "bare": base, "ratio": ours["rate"] / base["rate"]}
    finally:
        emu.stop()
        schema.close()


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# --- 10,000 calendars in one process ------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_calendars(
    n: int, seconds: float, per_hour: float = 1.0, pg: str = "", idle: float = 0.0
) -> dict[str, float]:
    """``n`` Google calendars watched by one process (SQLite, or a fresh PostgreSQL schema
    when ``pg`` is given), each changing ``per_hour`` times an hour: the reps, calendars
    and channels are inserted directly (registering them one by one is not what is
    measured); each change is a real event on the emulator plus a real push notification,
    so each costs a webhook and a sync. First ``idle`` seconds with no change at all: the
    scheduler's idle cost."""
    tmp = Path(tempfile.mkdtemp(prefix="calendars-"))
    schema = Schema(pg) if pg else None
    url = schema.url if schema else f"sqlite:///{tmp}/serve.db"
    emu = GoogleEmulator.start()
    try:
        key = setup_google(emu, tmp).key_file
        env0 = {k: v for k, v in os.environ.items() if not k.startswith("NEXTSTEP_")}
        if schema is None:
            subprocess.run(
                [sys.executable, "-m", "app.cli", "migrate"],
                check=True,
                env={**env0, "NEXTSTEP_DATABASE_URL": url},
                capture_output=True,
            )
        now = datetime.now(UTC)
        reps, cals, chans = [], [], []
        hours = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
        for i in range(n):
            email = f"c{i}@corp.test"
            emu.add_user(email)
            rid = str(uuid.uuid4())
            reps.append(
                {
                    "id": rid,
                    "email": email,
                    "provider": "google",
                    "timezone": "UTC",
                    "locale": "en",
                    "working_hours": hours,
                    "status": "active",
                    "created_at": now,
                }
            )
            cals.append(
                {
                    "rep_id": rid,
                    "provider": "google",
                    "generation": 0,
                    "attempts": 0,
                    "sync_seq": 0,
                    "synced_at": now,
                }
            )
            chans.append(
                {
                    "channel_id": f"ch-{i}",
                    "rep_id": rid,
                    "provider": "google",
                    "token": f"tok-{i}",
                    "expires_at": now + timedelta(days=7),
                    "renew_at": now + timedelta(days=6),
                    "created_at": now,
                }
            )
        engine = create_engine(url)
        from app.db.models import Calendar, Rep, WatchChannelRow

        with engine.begin() as conn:  # through the tables: their defaults and column types
            for i in range(0, n, 10_000):
                conn.execute(Rep.__table__.insert(), reps[i : i + 10_000])
                conn.execute(Calendar.__table__.insert(), cals[i : i + 10_000])
                conn.execute(WatchChannelRow.__table__.insert(), chans[i : i + 10_000])
        engine.dispose()
        del reps, cals, chans
        env = google_serve_env(
            emu, key, tmp, NEXTSTEP_DATABASE_URL=url, NEXTSTEP_LOG_LEVEL="WARNING"
        )
        rate = n * per_hour / 3600
        with ExitStack() as stack:
            (srv,) = start_many(stack, [env], tmp)
            pid = srv.proc.pid
            time.sleep(5)  # start-up settles (first safety-net pass, imports)
            idle_fig: dict[str, float] = {}
            if idle:
                rss_i, cpu_i, t_i = _rss_mib(pid), _cpu_seconds(pid), time.monotonic()
                time.sleep(idle)
                idle_fig = {
                    "idle_seconds": round(time.monotonic() - t_i, 1),
                    "idle_cpu_share": (_cpu_seconds(pid) - cpu_i) / (time.monotonic() - t_i),
                    "idle_rss_start_mib": rss_i,
                    "idle_rss_end_mib": _rss_mib(pid),
                }
            rss0, cpu0, t0 = _rss_mib(pid), _cpu_seconds(pid), time.monotonic()
            peak = rss0
            sent = refused = 0
            with httpx.Client(timeout=10) as client:
                i = 0
                while time.monotonic() - t0 < seconds:
                    due = t0 + i / rate
                    if time.monotonic() < due:
                        time.sleep(min(0.05, due - time.monotonic()))
                        peak = max(peak, _rss_mib(pid))
                        continue
                    k = (i * 7919) % n  # every calendar once before any twice
                    email = f"c{k}@corp.test"
                    start = now + timedelta(days=1, minutes=i)
                    emu.create_event(
                        email,
                        summary=f"chg {i}",
                        start=start,
                        end=start + timedelta(minutes=30),
                        attendees=[f"x@p{k}.test"],
                    )
                    r = push(
                        client,
                        f"{srv.url}/webhooks/google",
                        channel_id=f"ch-{k}",
                        token=f"tok-{k}",
                        resource_id="r",
                        number=i + 1,
                    )
                    sent += 1
                    refused += r.status_code >= 300
                    i += 1
            elapsed = time.monotonic() - t0
            cpu = (_cpu_seconds(pid) - cpu0) / elapsed
            rss = _rss_mib(pid)
            lists = emu.calls["events.list"]
        return {
            "calendars": n,
            "changes_per_s": rate,
            "seconds": elapsed,
            "sent": sent,
            "refused": refused,
            "events_list_calls": lists,
            "rss_start_mib": rss0,
            "rss_end_mib": rss,
            "rss_peak_mib": max(peak, rss),
            "cpu_share": cpu,
            "backend": "postgresql" if schema else "sqlite",
            **idle_fig,
        }
    finally:
        emu.stop()
        if schema is not None:
            schema.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["nudges", "intake", "calendars"])
    parser.add_argument("--meetings", type=int, default=1000)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--runs", type=int, default=1, help="nudges: runs of each replica count")
    parser.add_argument("--server-path", help="nudges: `nextstep serve` from this source tree")
    parser.add_argument("--profile", help="nudges: py-spy raw stacks of the first replica")
    parser.add_argument("--intake-seconds", type=float, default=60)
    parser.add_argument("--calendars", type=int, default=10_000)
    parser.add_argument("--calendar-seconds", type=float, default=120)
    parser.add_argument("--calendar-idle-seconds", type=float, default=0)
    parser.add_argument("--calendar-postgres", action="store_true", help="calendars on PG")
    args = parser.parse_args()
    pg = os.environ.get("NEXTSTEP_TEST_POSTGRES_URL", "")
    if args.only in (None, "nudges"):
        for run in range(args.runs):
            for replicas in args.replicas:
                fig = bench_nudges(
                    pg,
                    replicas,
                    args.meetings,
                    server_path=args.server_path,
                    profile=args.profile if run == 0 else None,
                )
                load = round(os.getloadavg()[0], 2)
                print(json.dumps({"part": "nudges", "load": load, **fig}), flush=True)
    if args.only in (None, "intake"):
        print(json.dumps({"part": "intake", **bench_intake(pg, args.intake_seconds)}), flush=True)
    if args.only in (None, "calendars"):
        print(
            json.dumps(
                {
                    "part": "calendars",
                    "load": round(os.getloadavg()[0], 2),
                    **bench_calendars(
                        args.calendars,
                        args.calendar_seconds,
                        pg=pg if args.calendar_postgres else "",
                        idle=args.calendar_idle_seconds,
                    ),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
