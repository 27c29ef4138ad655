"""Webhook intake on SQLite: max rate against a bare FastAPI endpoint doing one SQLite insert,
and the acknowledgement latency at 200 notifications/s (open loop, 50 channels).

    python bench/intake_bench.py                       # 3 runs, medians (~3 min)
    python bench/intake_bench.py --runs 1 --seconds 8  # one quick run
    python bench/intake_bench.py --server-path DIR     # `nextstep serve` from another tree
    python bench/intake_bench.py --profile stacks.txt  # py-spy of the server, first flood

Everything on loopback. The Google emulator runs in this process; `nextstep serve`
(tests/helpers/serve.py, SQLite in a temporary directory) watches ``--channels`` calendars,
registered through ``POST /v1/reps``, so every notification is a genuine one: channel and
token verified, stored, a sync asked for (the syncs run meanwhile, against the emulator).
The load comes from a separate sender process (raw keep-alive HTTP/1.1 over asyncio
streams, no client library in the way):

- *rate*: closed loop, ``--conns`` connections each sending as soon as its previous answer
  came, for ``--seconds``; first against nextstep, then the same sender against a bare
  FastAPI app under the same uvicorn, whose endpoint does one SQLite ``INSERT OR IGNORE``
  and a commit (WAL, synchronous=NORMAL) inline — the floor of "store, then acknowledge".
- *ack*: open loop, ``--rate`` notifications/s for ``--ack-seconds`` over the channels;
  each latency counts from when the notification was due, so a backlog shows.

Afterwards the notifications table is counted: acknowledged but not stored is *lost*.
Every figure is printed with the load average it ran under; each run alternates the two
servers so machine load hits both alike; the summary gives medians over ``--runs``.
Asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARE_APP = """
import sqlite3
from fastapi import FastAPI, Request, Response
db = sqlite3.connect({db!r}, isolation_level=None, check_same_thread=False)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE IF NOT EXISTS notifications (id INTEGER PRIMARY KEY, "
           "dedupe_key TEXT UNIQUE, rep_id TEXT, kind TEXT, received_at TEXT)")
app = FastAPI()
@app.post("/webhooks/google")
async def google(request: Request) -> Response:
    key = request.headers["x-goog-channel-id"] + ":" + request.headers["x-goog-message-number"]
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT OR IGNORE INTO notifications (dedupe_key, rep_id, kind, received_at) "
               "VALUES (?, ?, 'exists', datetime('now'))", (key, "r"))
    db.execute("COMMIT")
    return Response(status_code=200)
"""


# --- the sender (runs in its own process) -----------------------------------------------------


def _request(path: str, host: str, ch: dict[str, str], n: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n"
        f"X-Goog-Channel-ID: {ch['id']}\r\nX-Goog-Channel-Token: {ch['token']}\r\n"
        f"X-Goog-Resource-ID: {ch['resource_id']}\r\nX-Goog-Resource-State: exists\r\n"
        f"X-Goog-Message-Number: {n}\r\nX-Goog-Resource-URI: x\r\n\r\n"
    ).encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _send(args: argparse.Namespace) -> dict[str, Any]:
    channels = json.loads(Path(args.channels_file).read_text())
    host, port = args.host, args.port
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    counter = iter(range(args.first, 10**12))
    conns = [await asyncio.open_connection(host, port) for _ in range(args.conns)]
    t0 = time.perf_counter()
    stop = t0 + args.seconds

    def request() -> bytes:
        n = next(counter)
        return _request(args.path, f"{host}:{port}", channels[n % len(channels)], n)

    async def closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            status = await _exchange(reader, writer, request())
            latencies.append(time.perf_counter() - sent)
            statuses[status] = statuses.get(status, 0) + 1

    queue: asyncio.Queue[float] = asyncio.Queue()

    async def opened(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            due = await queue.get()
            if due < 0:
                return
            status = await _exchange(reader, writer, request())
            latencies.append(time.perf_counter() - due)  # from when it was due
            statuses[status] = statuses.get(status, 0) + 1

    if args.mode == "closed":
        await asyncio.gather(*(closed(r, w) for r, w in conns))
    else:
        workers = [asyncio.create_task(opened(r, w)) for r, w in conns]
        total = int(args.rate * args.seconds)
        for i in range(total):
            due = t0 + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(due)
        for _ in workers:
            queue.put_nowait(-1.0)
        await asyncio.gather(*workers)
    elapsed = time.perf_counter() - t0
    for _, w in conns:
        w.close()
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    latencies.sort()

    def pct(p: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    return {
        "sent": sum(statuses.values()),
        "acked": ok,
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": round(elapsed, 2),
        "rate": round(ok / elapsed, 1),
        "p50_ms": round(pct(50), 2),
        "p99_ms": round(pct(99), 2),
        "max_ms": round(1000 * latencies[-1], 2),
    }


def sender_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/webhooks/google")
    p.add_argument("--channels-file", required=True)
    p.add_argument("--mode", choices=["closed", "open"], required=True)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--first", type=int, default=1000)
    print(json.dumps(asyncio.run(_send(p.parse_args(argv)))))


def run_sender(port: int, channels_file: Path, mode: str, first: int, **opts: Any) -> dict:
    cmd = [sys.executable, __file__, "sender", "--port", str(port)]
    cmd += ["--channels-file", str(channels_file), "--mode", mode, "--first", str(first)]
    for k, v in opts.items():
        cmd += [f"--{k}", str(v)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# --- the servers --------------------------------------------------------------------------------


def load() -> float:
    return round(os.getloadavg()[0], 2)


def count_notifications(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM notifications").fetchone()[0])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "sender":
        sender_main(sys.argv[2:])
        return
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8, help="closed-loop duration, each server")
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--channels", type=int, default=50)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--ack-seconds", type=float, default=10)
    p.add_argument("--serve-env", action="append", default=[], help="NAME=VALUE for serve")
    p.add_argument("--server-path", help="run `nextstep serve` from this source tree")
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--profile", help="py-spy (raw stacks) of the server's first closed loop")
    args = p.parse_args()

    from tests.emulators.google.emulator import GoogleEmulator
    from tests.emulators.google.harness import setup_google
    from tests.emulators.google.serving import google_serve_env, register
    from tests.helpers.serve import free_port, serve, wait_for

    tmp = Path(tempfile.mkdtemp(prefix="intake-"))
    runs: list[dict[str, Any]] = []
    emu = GoogleEmulator.start()
    try:
        key = setup_google(emu, tmp).key_file
        emails = [f"w{i}-{uuid.uuid4().hex[:6]}@corp.test" for i in range(args.channels)]
        for email in emails:
            emu.add_user(email)
        extra = dict(kv.split("=", 1) for kv in args.serve_env)
        env = google_serve_env(emu, key, tmp, NEXTSTEP_LOG_LEVEL="WARNING", **extra)
        if args.server_path:
            os.chdir(args.server_path)  # `python -m app.cli` imports app from the cwd
        with ExitStack() as stack:
            srv = stack.enter_context(serve(env, tmp, port=free_port(), ready_timeout=60))
            os.chdir(ROOT)
            api = stack.enter_context(srv.client())
            live = []
            for email in emails:
                cid = register(api, email)["calendar"]["watch"][0]["channel_id"]
                ch = emu.channels[cid]
                live.append({"id": ch.id, "token": ch.token or "", "resource_id": ch.resource_id})
            chfile = tmp / "channels.json"
            chfile.write_text(json.dumps(live))
            db = tmp / "serve.db"
            ours_port = int(srv.url.rsplit(":", 1)[1])

            bare_dir = tmp / "bare"
            bare_dir.mkdir()
            (bare_dir / "bare.py").write_text(BARE_APP.format(db=str(bare_dir / "bare.db")))
            bport = free_port()
            bare = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(bport)]
                + ["--log-level", "warning"],
                cwd=bare_dir,
            )
            stack.callback(bare.wait)
            stack.callback(bare.terminate)
            import httpx

            def up() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{bport}/docs", timeout=1).is_success
                except httpx.HTTPError:
                    return False

            wait_for(up, timeout=30)
            first = 1000
            for run in range(args.runs):
                fig: dict[str, Any] = {"run": run + 1, "load_start": load()}
                before = count_notifications(db)
                spy = None
                if args.profile and run == 0:
                    spy = subprocess.Popen(
                        ["py-spy", "record", "-p", str(srv.proc.pid), "-o", args.profile]
                        + ["--format", "raw", "-d", str(int(args.seconds)), "-t", "-r", "200"],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                fig["ours"] = run_sender(
                    ours_port, chfile, "closed", first, seconds=args.seconds, conns=args.conns
                )
                first += fig["ours"]["sent"] + 10
                if spy is not None:
                    spy.wait()
                fig["bare"] = run_sender(
                    bport, chfile, "closed", first, seconds=args.seconds, conns=args.conns
                )
                first += fig["bare"]["sent"] + 10
                fig["ratio"] = round(fig["ours"]["rate"] / fig["bare"]["rate"], 3)
                time.sleep(2)  # the syncs the flood asked for settle
                fig["ack"] = run_sender(
                    ours_port,
                    chfile,
                    "open",
                    first,
                    seconds=args.ack_seconds,
                    conns=args.conns,
                    rate=args.rate,
                )
                first += fig["ack"]["sent"] + 10
                time.sleep(1)
                stored = count_notifications(db) - before
                acked = fig["ours"]["acked"] + fig["ack"]["acked"]
                fig["stored"], fig["lost"] = stored, acked - stored
                fig["load_end"] = load()
                fig["syncs"] = emu.calls["events.list"]
                print(json.dumps(fig), flush=True)
                runs.append(fig)
                time.sleep(2)
    finally:
        emu.stop()
    summary = {
        "runs": len(runs),
        "load": [r["load_start"] for r in runs] + [runs[-1]["load_end"]] if runs else [],
        "median_rate_ours": statistics.median(r["ours"]["rate"] for r in runs),
        "median_rate_bare": statistics.median(r["bare"]["rate"] for r in runs),
        "median_ratio": statistics.median(r["ratio"] for r in runs),
        "median_ack_p50_ms": statistics.median(r["ack"]["p50_ms"] for r in runs),
        "median_ack_p99_ms": statistics.median(r["ack"]["p99_ms"] for r in runs),
        "median_closed_p99_ms": statistics.median(r["ours"]["p99_ms"] for r in runs),
        "lost": sum(r["lost"] for r in runs),
        "non_2xx": sum(
            v
            for r in runs
            for part in ("ours", "ack")
            for k, v in r[part]["statuses"].items()
            if not k.startswith("2")
        ),
    }
    print(json.dumps({"summary": summary}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
