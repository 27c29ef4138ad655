"""Google connector figures against the emulator and a real `nextstep serve` process.

    python bench/google_bench.py                # all three parts
    python bench/google_bench.py --only burst   # burst | ack | initial

1. burst   — events.list calls per change while 100 changes hit one calendar, per
             notification-triggered sync, and while idle (only the safety net may call).
2. ack     — /webhooks/google acknowledgement latency at a fixed rate of valid
             notifications, sent from a separate process (p50 / p99 / loss).
3. initial — initial sync of R reps × E events through POST /v1/reps, next to the
             emulator's raw page throughput (bare HTTP, same page size) in the same run.

Prints figures only; recorded in bench/README.md ("Google connector").
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.emulators.google.emulator import GoogleEmulator  # noqa: E402
from tests.emulators.google.harness import setup_google  # noqa: E402
from tests.emulators.google.serving import google_serve_env, push, register  # noqa: E402
from tests.helpers.serve import serve, wait_for  # noqa: E402

PAGE_SIZE = 250  # GoogleConnector's default maxResults


def _idle(api: httpx.Client, rep_id: str) -> bool:
    return not api.get(f"/v1/reps/{rep_id}").json()["calendar"]["sync_pending"]


def _lists(emu: GoogleEmulator, email: str) -> list:
    return [r for r in emu.requests_for("events.list") if r.subject == email]


def bench_burst(changes: int, idle_seconds: float, safety_net: float) -> None:
    email = "burst@corp.test"
    with GoogleEmulator.start() as emu, tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        key = setup_google(emu, tmp, reps=[email]).key_file
        env = google_serve_env(emu, key, tmp, NEXTSTEP_SAFETY_NET_SYNC_SECONDS=str(safety_net))
        with serve(env, tmp) as srv, srv.client() as api:
            rep = register(api, email)["id"]
            start = datetime.now(UTC) + timedelta(days=1)
            ids = [
                emu.create_event(
                    email,
                    summary=f"seed {i}",
                    start=start + timedelta(hours=i),
                    end=start + timedelta(hours=i, minutes=30),
                    attendees=[f"p{i}@acme.test"],
                )
                for i in range(10)
            ]
            wait_for(lambda: len(emu.deliveries) >= 1 + len(ids) and _idle(api, rep))
            for label, pause in (("back-to-back", 0.0), ("paced 50/s", 0.02)):
                before = len(_lists(emu, email))
                delivered = len(emu.deliveries)
                t0 = time.monotonic()
                for i in range(changes):
                    emu.update_event(email, ids[i % len(ids)], summary=f"{label} change {i}")
                    if pause:
                        time.sleep(pause)
                wait_for(lambda d=delivered: len(emu.deliveries) >= d + changes, timeout=60)
                wait_for(lambda: _idle(api, rep), timeout=60)
                took = time.monotonic() - t0
                calls = _lists(emu, email)[before:]
                syncs = sum(1 for r in calls if "pageToken" not in r.query)
                acked = sum(1 for x in emu.deliveries[delivered:] if x.status == 200)
                print(
                    f"burst [{label}]: {changes} changes, {acked} notifications acked, "
                    f"{syncs} syncs, {len(calls)} events.list calls "
                    f"({len(calls) / changes:.2f} per change, "
                    f"{len(calls) / max(syncs, 1):.2f} per sync), {took:.2f} s"
                )
            log_before = srv.output().count("sync.safety_net")
            before = len(_lists(emu, email))
            time.sleep(idle_seconds)
            idle_calls = len(_lists(emu, email)) - before
            rounds = srv.output().count("sync.safety_net") - log_before
            print(
                f"idle {idle_seconds:.0f} s (safety net every {safety_net:.0f} s): "
                f"{idle_calls} events.list calls, {rounds} safety-net rounds logged"
            )


def _sender(
    url: str,
    channels: list[tuple[str, str, str]],
    rate: float,
    seconds: float,
    out: mp.Queue,
    threads: int = 4,
) -> None:  # type: ignore[type-arg]
    """Send valid notifications at ``rate``/s for ``seconds`` (open loop, ``threads``
    senders on one shared schedule); report latencies in ms, failures, elapsed seconds."""
    import threading

    total = int(rate * seconds)
    lat: list[float] = []
    failed = [0]
    counter = iter(range(total))
    lock = threading.Lock()
    numbers = [1000] * len(channels)
    with httpx.Client(timeout=5.0, limits=httpx.Limits(max_connections=threads)) as client:
        for cid, token, rid in channels:  # connection warm-up
            push(client, url, channel_id=cid, token=token, resource_id=rid, number=999)
        t0 = time.perf_counter()

        def run() -> None:
            while True:
                with lock:
                    i = next(counter, None)
                    if i is None:
                        return
                    k = i % len(channels)
                    numbers[k] += 1
                    number = numbers[k]
                wait = t0 + i / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                cid, token, rid = channels[k]
                sent = time.perf_counter()
                try:
                    r = push(
                        client,
                        url,
                        channel_id=cid,
                        token=token,
                        resource_id=rid,
                        number=number,
                        state=os.environ.get("BENCH_STATE", "exists"),
                    )
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = (time.perf_counter() - sent) * 1000
                with lock:
                    lat.append(took)
                    failed[0] += 0 if ok else 1

        workers = [threading.Thread(target=run) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
    out.put((lat, failed[0], elapsed))


def bench_ack(rate: float, seconds: float, reps: int) -> None:
    emails = [f"ack{i}@corp.test" for i in range(reps)]
    with GoogleEmulator.start() as emu, tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        key = setup_google(emu, tmp, reps=emails).key_file
        with serve(google_serve_env(emu, key, tmp), tmp) as srv, srv.client() as api:
            rep_ids = [register(api, e)["id"] for e in emails]
            channels = []
            for e in emails:
                (ch,) = emu.live_channels(e)
                channels.append((ch.id, ch.token or "", ch.resource_id))
            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            proc = ctx.Process(
                target=_sender, args=(f"{srv.url}/webhooks/google", channels, rate, seconds, q)
            )
            before = len(emu.requests_for("events.list"))
            proc.start()
            lat, failed, elapsed = q.get(timeout=seconds * 4 + 60)
            proc.join()
            wait_for(lambda: all(_idle(api, r) for r in rep_ids), timeout=60)
            syncs = len(emu.requests_for("events.list")) - before
        lat.sort()
        p = lambda q_: lat[min(len(lat) - 1, int(q_ * len(lat)))]  # noqa: E731
        print(
            f"ack: {len(lat)} valid notifications over {elapsed:.1f} s "
            f"({len(lat) / elapsed:.0f}/s) on {reps} channels: p50 {p(0.50):.1f} ms, "
            f"p99 {p(0.99):.1f} ms, max {lat[-1]:.1f} ms, mean {statistics.mean(lat):.1f} ms, "
            f"loss {failed}; they caused {syncs} events.list calls"
        )


def _seed(emu: GoogleEmulator, emails: list[str], events: int) -> None:
    base = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    for n, email in enumerate(emails):
        for i in range(events):
            start = base + timedelta(minutes=30 * i)
            # half prospect meetings spread over 25 accounts, half internal
            attendees = (
                [f"buyer{i % 3}@prospect{(n + i) % 25}.test"] if i % 2 else ["team@corp.test"]
            )
            emu.create_event(
                email,
                summary=f"m{i}",
                start=start,
                end=start + timedelta(minutes=30),
                attendees=attendees,
            )


def _raw_pages(emu: GoogleEmulator, emails: list[str], workers: int) -> tuple[int, int, float]:
    """Fetch every calendar's full listing with bare HTTP: (events, pages, seconds)."""
    for email in emails:
        emu.access_tokens[f"bench-{email}"] = {
            "subject": email,
            "scopes": {"calendar.events"},
            "expires": time.time() + 3600,
        }
    time_min = (datetime.now(UTC) - timedelta(days=16)).isoformat().replace("+00:00", "Z")

    def one(email: str) -> tuple[int, int]:
        got = pages = 0
        params = {"singleEvents": "true", "maxResults": str(PAGE_SIZE), "timeMin": time_min}
        with httpx.Client(headers={"Authorization": f"Bearer bench-{email}"}, timeout=60) as c:
            while True:
                r = c.get(f"{emu.api_root}calendar/v3/calendars/{email}/events", params=params)
                r.raise_for_status()
                body = r.json()
                got, pages = got + len(body.get("items", [])), pages + 1
                if "nextPageToken" not in body:
                    return got, pages
                params["pageToken"] = body["nextPageToken"]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, emails))
    return sum(r[0] for r in results), sum(r[1] for r in results), time.perf_counter() - t0


def bench_initial(reps: int, events: int, workers: int, server_path: str | None = None) -> None:
    emails = [f"init{i}@corp.test" for i in range(reps)]
    with GoogleEmulator.start() as emu, tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        key = setup_google(emu, tmp, reps=emails).key_file
        t0 = time.perf_counter()
        _seed(emu, emails, events)
        print(f"initial: seeded {reps} × {events} events in {time.perf_counter() - t0:.1f} s")
        raw_events, pages, raw_s = _raw_pages(emu, emails, workers)
        raw = raw_events / raw_s
        print(
            f"initial: emulator raw pages: {raw_events} events in {pages} pages, "
            f"{raw_s:.1f} s → {raw:.0f} events/s ({workers} concurrent clients)"
        )
        here = os.getcwd()
        if server_path:
            os.chdir(server_path)  # `python -m app.cli` imports app from the cwd
        with serve(google_serve_env(emu, key, tmp), tmp) as srv, srv.client() as api:
            os.chdir(here)
            lists_before = len(emu.requests_for("events.list"))
            t0 = time.perf_counter()
            slow = httpx.Client(
                base_url=srv.url, timeout=600, headers={"Authorization": "Bearer test-key"}
            )
            with slow, ThreadPoolExecutor(workers) as pool:
                reps_out = list(pool.map(lambda e: register(slow, e), emails))
            app_s = time.perf_counter() - t0
            lists = len(emu.requests_for("events.list")) - lists_before
            total = sum(
                len(
                    api.get("/v1/meetings", params={"rep_id": r["id"], "limit": 1000}).json()[
                        "items"
                    ]
                )
                for r in reps_out[:3]
            )
            statuses = {r["status"] for r in reps_out}
        app = reps * events / app_s
        print(
            f"initial: nextstep: {reps} reps registered (watch + full sync) in {app_s:.1f} s "
            f"→ {app:.0f} events/s, {lists} events.list calls, statuses {sorted(statuses)}, "
            f"meetings on the first 3 reps: {total}"
        )
        print(
            f"initial: ratio nextstep / raw = {app / raw:.2f} "
            f"(load average {os.getloadavg()[0]:.2f}, code {server_path or 'this tree'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("burst", "ack", "initial"))
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--idle", type=float, default=15.0)
    parser.add_argument("--safety-net", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ack-reps", type=int, default=10)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--server-path", help="initial: `nextstep serve` from this tree")
    args = parser.parse_args()
    cpu = re.sub(
        r"\s+",
        " ",
        next(
            (
                line.split(":", 1)[1]
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        ),
    )
    print(
        f"machine: {cpu.strip()}, {mp.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    if args.only in (None, "burst"):
        bench_burst(args.changes, args.idle, args.safety_net)
    if args.only in (None, "ack"):
        bench_ack(args.rate, args.seconds, args.ack_reps)
    if args.only in (None, "initial"):
        bench_initial(args.reps, args.events, args.workers, args.server_path)


if __name__ == "__main__":
    main()
