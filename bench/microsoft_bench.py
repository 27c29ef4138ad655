"""Microsoft connector figures against a running `nextstep serve` and the Graph emulator.

    python bench/microsoft_bench.py [burst|ack|initial|all] [--mailboxes N --events N]

1. burst   - 100 changes to one mailbox: Graph calls per change, delta rounds.
2. ack     - notification acknowledgement latency at 200 notifications/s for ~10 s.
3. initial - initial sync of N mailboxes x M events: events/s, next to the emulator's
             raw calendarView/delta page throughput measured in the same run.

Prints figures; asserts nothing (see bench/README.md, "Microsoft connector").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/microsoft_bench.py`

from tests.emulators.microsoft.harness import (  # noqa: E402
    RunningEmulator,
    app_env,
    generate_self_signed_cert,
    run_emulator,
    ssl_context,
)
from tests.helpers.serve import Server, serve, wait_for  # noqa: E402

INTERNAL = "contoso.com"


def env_for(ms: RunningEmulator, tmp: Path) -> dict[str, str]:
    return {**app_env(ms), "NEXTSTEP_INTERNAL_DOMAINS": INTERNAL, "NEXTSTEP_LOG_LEVEL": "WARNING"}


def register(api: httpx.Client, email: str) -> dict[str, Any]:
    resp = api.post(
        "/v1/reps",
        json={"email": email, "provider": "microsoft", "timezone": "Europe/Paris"},
        timeout=600,
    )
    resp.raise_for_status()
    return resp.json()


def idle(api: httpx.Client, rep_id: str) -> bool:
    cal = api.get(f"/v1/reps/{rep_id}").json()["calendar"]
    return not cal["sync_pending"] and cal["synced_at"] is not None


def add_meeting(
    ms: RunningEmulator, email: str, i: int, *, notify: bool = True, base: datetime | None = None
) -> str:
    base = base or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = base + timedelta(hours=i % 2000)
    attendees = (
        [(f"p{i}@fabrikam{i % 7}.com", "required", "none")]
        if i % 5 == 0
        else [(f"colleague{i % 3}@{INTERNAL}", "required", "accepted")]
    )
    return ms.emulator.add_event(
        email,
        subject=f"Event {i}",
        start=start,
        end=start + timedelta(minutes=30),
        attendees=attendees,
        notify=notify,
    )


def rounds_for(ms: RunningEmulator, email: str) -> tuple[int, int]:
    """(delta rounds, delta calls) made for ``email`` since the counters were reset."""
    reqs = [
        u
        for m, u, _ in list(ms.emulator.requests)
        if m == "GET" and "/calendarView/delta" in u and f"/users/{email}/" in u
    ]
    return sum(1 for u in reqs if "$deltatoken=" in u), len(reqs)


# --- 1. burst ------------------------------------------------------------------------


def bench_burst(ms: RunningEmulator, srv: Server, latency: float) -> None:
    email = f"burst{int(latency * 1000)}@{INTERNAL}"
    ms.emulator.add_user(email)
    with srv.client() as api:
        r = register(api, email)
        wait_for(lambda: idle(api, r["id"]))
        ms.emulator.reset_calls()
        ms.emulator.latency = latency
        t0 = time.monotonic()
        for i in range(100):
            add_meeting(ms, email, i)
        ms.emulator.wait_for_deliveries(timeout=60)
        delivered = [d for d in ms.emulator.deliveries[-100:] if d.status == 202]
        wait_for(
            lambda: (
                len(api.get("/v1/meetings", params={"rep_id": r["id"]}).json()["items"]) == 20
                and idle(api, r["id"])
            ),
            timeout=60,
        )
        elapsed = time.monotonic() - t0
        ms.emulator.latency = 0.0
    rounds, calls = rounds_for(ms, email)
    graph_calls = sum(ms.emulator.calls.values())
    print(
        f"burst (Graph latency {latency * 1000:.0f} ms): 100 changes, {len(delivered)} "
        f"notifications acknowledged 202, {rounds} delta rounds, {calls} delta calls, "
        f"{graph_calls} Graph calls in all = {graph_calls / 100:.2f} calls/change, "
        f"{rounds / max(1, len(delivered)):.3f} rounds/notification, converged in {elapsed:.2f} s"
    )


# --- 2. acknowledgement latency -------------------------------------------------------


def _ack_process(
    url: str, targets: list[tuple[str, str, str]], rate: float, seconds: float
) -> tuple[list[float], int, int, float]:
    latencies, failures, total = asyncio.run(_ack(url, targets, rate, seconds))
    usage = resource.getrusage(resource.RUSAGE_SELF)  # the load generator's own CPU time
    return latencies, failures, total, usage.ru_utime + usage.ru_stime


async def _ack(
    url: str, targets: list[tuple[str, str, str]], rate: float, seconds: float
) -> tuple[list[float], int, int]:
    """Open-loop load over raw keep-alive HTTP/1.1 connections (httpx's own CPU cost
    per request was the bottleneck on 2 vCPUs); latency counts from when it was due."""
    latencies: list[float] = []
    failures = 0
    total = int(rate * seconds)
    host, port = url.removeprefix("http://").split(":")
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    def request(n: int) -> bytes:
        sid, state, uid = targets[n % len(targets)]
        res = f"Users/{uid}/Events/bench-{n}"
        body = json.dumps(
            {
                "value": [
                    {
                        "subscriptionId": sid,
                        "changeType": "updated",
                        "resource": res,
                        "subscriptionExpirationDateTime": "2099-01-01T00:00:00Z",
                        "resourceData": {
                            "@odata.type": "#Microsoft.Graph.Event",
                            "@odata.id": res,
                            "id": f"bench-{n}",
                        },
                        "clientState": state,
                        "tenantId": "t",
                    }
                ]
            }
        ).encode()
        head = (
            f"POST /webhooks/microsoft HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while (job := await queue.get()) is not None:
                n, due = job
                writer.write(request(n))
                status = (await reader.readline()).split()[1]
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - due)
                failures += 0 if status == b"202" else 1
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(64)]
    start = time.perf_counter()
    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((n, due))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies, failures, total


def _sequential(url: str, targets: list[tuple[str, str, str]], n: int = 200) -> tuple[float, float]:
    """(p50, p99) of notifications sent one at a time: the path without queueing."""
    latencies = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(n):
            sid, state, uid = targets[i % len(targets)]
            resource = f"Users/{uid}/Events/seq-{i}"
            body = {
                "value": [
                    {
                        "subscriptionId": sid,
                        "changeType": "updated",
                        "resource": resource,
                        "resourceData": {"id": f"seq-{i}"},
                        "clientState": state,
                        "tenantId": "t",
                    }
                ]
            }
            t = time.perf_counter()
            client.post("/webhooks/microsoft", json=body)
            latencies.append(time.perf_counter() - t)
    q = statistics.quantiles(latencies, n=100)
    return q[49], q[98]


def bench_ack(
    ms: RunningEmulator,
    srv: Server,
    mailboxes: int = 20,
    rate: float = 200,
    seconds: float = 10,
    prefix: str = "ack",
) -> None:
    targets = []
    with srv.client() as api:
        for i in range(mailboxes):
            email = f"{prefix}{i}@{INTERNAL}"
            mb = ms.emulator.add_user(email)
            for j in range(20):
                add_meeting(ms, email, j, notify=False)
            r = register(api, email)
            sid = r["calendar"]["watch"][0]["channel_id"]
            targets.append((sid, ms.emulator.subscriptions[sid].client_state, mb.id))
    sequential = _sequential(srv.url, targets)
    deltas = ms.emulator.calls["GET calendarView.delta"]
    # The load runs in its own process: the emulator's threads share this one's GIL.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        latencies, failures, total, client_cpu = pool.submit(
            _ack_process, srv.url, targets, rate, seconds
        ).result()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"ack: {total} notifications at {rate:.0f}/s over {seconds:.0f} s to {mailboxes} "
        f"subscriptions; p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms, not 202 (refused/503/lost) {failures}, "
        f"delta rounds run meanwhile {ms.emulator.calls['GET calendarView.delta'] - deltas}; "
        f"one at a time: p50 {sequential[0] * 1000:.1f} ms, p99 {sequential[1] * 1000:.1f} ms; "
        f"load generator CPU {client_cpu:.1f} s"
    )


# --- 3. initial sync -----------------------------------------------------------------


def raw_throughput(ms: RunningEmulator, emails: list[str], workers: int) -> float:
    """events/s of a bare client paging calendarView/delta (same window, page size)."""
    token = httpx.post(
        f"{ms.authority}/oauth2/v2.0/token",
        verify=ssl_context(ms.cert),
        data={
            "grant_type": "client_credentials",
            "client_id": ms.client_id,
            "client_secret": ms.client_secret,
            "scope": "https://graph.microsoft.com/.default",
        },
    ).json()["access_token"]
    now = datetime.now(UTC)
    params = {
        "startDateTime": (now - timedelta(days=15)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (now + timedelta(days=385)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    headers = {
        "Authorization": f"Bearer {token}",
        "Prefer": 'outlook.timezone="UTC", odata.maxpagesize=100',
    }

    def one(email: str) -> int:
        n = 0
        with httpx.Client(verify=ssl_context(ms.cert), headers=headers, timeout=60) as c:
            body = c.get(f"{ms.graph_root}/users/{email}/calendarView/delta", params=params).json()
            n += len(body["value"])
            while "@odata.nextLink" in body:
                body = c.get(body["@odata.nextLink"]).json()
                n += len(body["value"])
        return n

    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        events = sum(pool.map(one, emails))
    return events / (time.monotonic() - t0)


def bench_initial(
    ms: RunningEmulator, srv: Server, mailboxes: int, events: int, workers: int
) -> None:
    emails = [f"init{i}@{INTERNAL}" for i in range(mailboxes)]
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=10)
    for email in emails:
        ms.emulator.add_user(email)
        for j in range(events):
            add_meeting(ms, email, j, notify=False, base=base + timedelta(minutes=j % 7))
    raw = raw_throughput(ms, emails, workers)

    def reg(email: str) -> str:
        with srv.client() as api:
            return str(register(api, email)["id"])

    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        ids = list(pool.map(reg, emails))
    with srv.client() as api:
        wait_for(lambda: all(idle(api, i) for i in ids), timeout=900, interval=0.5)
    elapsed = time.monotonic() - t0
    rate = mailboxes * events / elapsed
    print(
        f"initial sync: {mailboxes} mailboxes x {events} events = {mailboxes * events} events "
        f"in {elapsed:.1f} s ({workers} registrations in parallel): {rate:.0f} events/s; "
        f"emulator raw page throughput {raw:.0f} events/s ({workers} clients); "
        f"ratio {rate / raw:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "which", nargs="?", default="all", choices=["burst", "ack", "initial", "all"]
    )
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--ack-mailboxes", type=int, nargs="+", default=[2, 20])
    parser.add_argument("--ack-rate", type=float, default=200.0)
    args = parser.parse_args()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.machine()}, {platform.processor() or platform.platform()}"
    )
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with (
            run_emulator(generate_self_signed_cert(tmp / "cert")) as ms,
            serve(env_for(ms, tmp), tmp) as srv,
        ):
            if args.which in ("burst", "all"):
                bench_burst(ms, srv, latency=0.0)
                bench_burst(ms, srv, latency=0.1)
            if args.which in ("ack", "all"):
                for n in args.ack_mailboxes:
                    bench_ack(ms, srv, mailboxes=n, rate=args.ack_rate, prefix=f"ack{n}-")
            if args.which in ("initial", "all"):
                bench_initial(ms, srv, args.mailboxes, args.events, args.workers)


if __name__ == "__main__":
    main()
