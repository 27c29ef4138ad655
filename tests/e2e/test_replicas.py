"""Replicas on one PostgreSQL database, and processes killed with SIGKILL at chosen lines.

The shared calendar source is the Google emulator (tests/emulators/google): it runs in
this test process and every `nextstep serve` replica talks to it over HTTP, so the
replicas exercise the real paths — registration, full and incremental syncs page by page,
push notifications to whichever replica opened the channel, free/busy for the suggested
slots, channel renewals — on calendars they all see. Nudges go to a signed-webhook
receiver in this process. Crashes are real: ``NEXTSTEP_TEST_CRASH_AT=<point>`` makes a
replica SIGKILL itself at that line (app/crash.py), or the test kills one from outside.

Every wait polls a condition; nothing asserts on elapsed time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.config import Settings
from tests.conftest import postgres_url
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.harness import setup_google
from tests.emulators.google.serving import google_serve_env, register
from tests.helpers.receiver import Receiver
from tests.helpers.serve import TEST_SECRET_KEY, Server, free_port, serve, wait_for

SECRET = "s3cret"
POLICY = """\
policies:
  - name: fast
    invite_within: PT2S
    accept_within: P2D
    horizon: P14D
    follow_up_duration: PT15M
    escalate_after: P3D
"""
LEASE = "3"  # seconds: how long a dead replica's work waits before another takes it
# How long bulk work may take on a loaded machine (2 cores shared with other suites): a
# wait, not an assertion — what the test asserts is counted once the work is done.
PATIENCE = 600
DEFAULT_POLL = str(Settings.model_fields["poll_seconds"].default)  # serve() sets 0.5


class Cluster:
    """One PostgreSQL schema, one emulator, one receiver, any number of replicas."""

    def __init__(
        self,
        emu: GoogleEmulator,
        key: Path,
        receiver: Receiver,
        url: str,
        tmp: Path,
        stack: ExitStack,
    ) -> None:
        self.emu, self.key, self.receiver, self.url, self.tmp = emu, key, receiver, url, tmp
        self.stack = stack
        self.engine = create_engine(url)
        stack.callback(self.engine.dispose)

    def env(self, *, defaults: bool = False, **extra: str) -> dict[str, str]:
        """A replica's environment; ``defaults``: lease, polling and grace as shipped."""
        tuned = (
            {"NEXTSTEP_POLL_SECONDS": DEFAULT_POLL}
            if defaults
            else {"NEXTSTEP_LEASE_SECONDS": LEASE, "NEXTSTEP_SHUTDOWN_GRACE_SECONDS": "5"}
        )
        return google_serve_env(
            self.emu,
            self.key,
            self.tmp,
            policy=POLICY,
            NEXTSTEP_DATABASE_URL=self.url,
            NEXTSTEP_NUDGE_WEBHOOK_URL=self.receiver.url,
            NEXTSTEP_NUDGE_WEBHOOK_SECRET=SECRET,
            **tuned,
            **extra,
        )

    def start(self, *, port: int | None = None, defaults: bool = False, **extra: str) -> Server:
        """A replica, stopped (SIGTERM) when the test ends unless it died before."""
        return self.stack.enter_context(
            serve(self.env(defaults=defaults, **extra), self.tmp, port=port, ready_timeout=120)
        )

    def start_many(self, ports: list[int], **extra: str) -> list[Server]:
        """Several replicas started side by side (start-up is mostly imports)."""
        contexts = [serve(self.env(**extra), self.tmp, port=p, ready_timeout=120) for p in ports]
        with ThreadPoolExecutor(len(contexts)) as pool:
            started = [pool.submit(cm.__enter__) for cm in contexts]
        servers = []
        for cm, fut in zip(contexts, started, strict=True):
            if fut.exception() is None:
                self.stack.push(cm.__exit__)
                servers.append(fut.result())
        if len(servers) < len(contexts):
            raise next(f.exception() for f in started if f.exception() is not None)  # type: ignore[misc]
        return servers

    def sql(self, query: str, **params: object) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query), params)]

    def scalar(self, query: str, **params: object) -> object:
        return self.sql(query, **params)[0][0]


@pytest.fixture(scope="module")
def google(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GoogleEmulator, Path]]:
    tmp = tmp_path_factory.mktemp("replicas-google")
    emu = GoogleEmulator.start()
    try:
        yield emu, setup_google(emu, tmp).key_file
    finally:
        emu.stop()


@pytest.fixture
def cluster(google: tuple[GoogleEmulator, Path], tmp_path: Path) -> Iterator[Cluster]:
    """A fresh schema migrated by `nextstep migrate`, as an operator would before serving."""
    base = postgres_url()
    schema = f"r_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    receiver = Receiver(SECRET)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTSTEP_")}
        migrated = subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            # the same key ring as the replicas: PostgreSQL needs NEXTSTEP_SECRET_KEY
            env={**env, "NEXTSTEP_DATABASE_URL": url, "NEXTSTEP_SECRET_KEY": TEST_SECRET_KEY},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrated.returncode == 0, migrated.stderr
        with ExitStack() as stack:
            yield Cluster(*google, receiver, url, tmp_path, stack)
    finally:
        receiver.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def killed(srv: Server) -> bool:
    """The replica is dead of SIGKILL (its own crash point, or ours)."""
    return srv.proc.poll() == -signal.SIGKILL


def _meeting_event(emu: GoogleEmulator, email: str, n: int, end: datetime) -> str:
    return emu.create_event(
        email,
        summary=f"Discovery {n}",
        start=end - timedelta(minutes=30),
        end=end,
        attendees=[f"buyer@p{n}-{email.split('@')[0]}.test"],
    )


def test_three_replicas_2000_meetings_one_killed_mid_flight(cluster: Cluster) -> None:
    emu, receiver = cluster.emu, cluster.receiver
    reps_n, per_rep = 40, 50
    emails = [f"rep{i}-{uuid.uuid4().hex[:6]}@corp.test" for i in range(reps_n)]
    for email in emails:
        emu.add_user(email)
    ports = [free_port() for _ in range(3)]
    # Channels live 20 s, so each is renewed at half-life a few times during the test.
    extra = {"NEXTSTEP_GOOGLE_CHANNEL_TTL_SECONDS": "20"}
    replicas = cluster.start_many(ports, **extra)
    clients = [r.client() for r in replicas]
    for c in clients:
        cluster.stack.callback(c.close)
    # 2,000 prospect meetings on calendars that the replicas' initial syncs read page by
    # page. Any replica takes API calls: the reps are registered on all three at once.
    # Each rep's 50 meetings are put on its calendar just before it registers, ending a
    # margin later: the margin covers one registration, not all forty, so however long
    # the whole registration takes under load, every window closes after its rep's.
    margin = timedelta(seconds=15)
    total = reps_n * per_rep
    late: list[str] = []

    def register_all(i: int) -> None:
        for email in emails[i::3]:
            end = datetime.now(UTC) + margin
            for n in range(per_rep):
                _meeting_event(emu, email, n, end)
            assert register(clients[i], email)["status"] == "active"
            if datetime.now(UTC) >= end:
                late.append(email)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(register_all, range(3)))
    assert not late, f"a registration outlasted its meetings: raise the margin ({late})"
    assert cluster.scalar("SELECT count(*) FROM meetings") == total

    # Kill -9 one replica while nudges are being produced and delivered, then restart it.
    wait_for(
        lambda: len({n["id"] for n in receiver.nudges}) >= total // 4,
        timeout=PATIENCE,
        interval=0.05,
    )
    victim = replicas[0]
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(timeout=10)
    assert killed(victim)
    replicas[0] = cluster.start(port=ports[0], **extra)

    wait_for(
        lambda: len({n["id"] for n in receiver.nudges}) >= total, timeout=PATIENCE, interval=0.2
    )
    wait_for(
        lambda: (
            cluster.scalar(
                "SELECT count(*) FROM deliveries d JOIN nudges n ON n.id = d.nudge_id"
                " WHERE d.status = 'delivered' AND n.kind NOT LIKE '%.%'"
            )
            == total
        ),
        timeout=PATIENCE,
    )

    # Exactly 2,000 distinct nudges, one per meeting, each delivered at least once; a
    # redelivery (a killed process's unrecorded send) carries the same id.
    assert cluster.scalar("SELECT count(*) FROM meetings") == total
    rows = cluster.sql(
        "SELECT id, meeting_id, kind FROM nudges WHERE kind NOT LIKE '%.%'"
    )  # not events
    assert len(rows) == total
    assert len({m for _, m, _ in rows}) == total
    assert {k for _, _, k in rows} == {"no_next_step"}
    ids_by_meeting: dict[str, set[str]] = defaultdict(set)
    for nudge in receiver.nudges:
        ids_by_meeting[nudge["meeting"]["id"]].add(nudge["id"])
    assert len(ids_by_meeting) == total
    assert all(len(ids) == 1 for ids in ids_by_meeting.values()), "no meeting under two ids"
    assert {n["id"] for n in receiver.nudges} == {r[0] for r in rows}
    assert receiver.bad_signatures == 0
    assert (
        cluster.scalar(
            "SELECT count(*) FROM deliveries d JOIN nudges n ON n.id = d.nudge_id"
            " WHERE d.status <> 'delivered' AND n.kind NOT LIKE '%.%'"
        )
        == 0
    )

    # SIGTERM: every replica stops within its grace period and hands its leases back.
    for srv in replicas:
        srv.proc.send_signal(signal.SIGTERM)
    for srv in replicas:
        assert srv.proc.wait(timeout=30) in (0, -signal.SIGTERM), srv.output()[-2000:]
        assert "scheduler.stopped" in srv.output()
    assert cluster.scalar("SELECT count(*) FROM watch_channels WHERE lease_owner IS NOT NULL") == 0
    assert cluster.scalar("SELECT count(*) FROM job_locks WHERE owner IS NOT NULL") == 0

    # Renewals done once: each renewal opened one channel and stopped its predecessor
    # once. Only the killed replica may have left one renewal half-done (a channel opened
    # but not stored, which expires at the provider on its own).
    watches = Counter(r.subject for r in emu.requests_for("events.watch"))
    stopped = [r.body["id"] for r in emu.requests_for("channels.stop")]
    stops = Counter(emu.channels[cid].calendar for cid in stopped)
    assert len(stopped) == len(set(stopped)), "no channel stopped twice"
    assert sum(stops[e] for e in emails) >= reps_n, "renewals happened"
    extra_watches = sum(watches[e] - stops[e] - 1 for e in emails)
    assert 0 <= extra_watches <= 1, {e: (watches[e], stops[e]) for e in emails}
    per_rep_rows = dict(
        cluster.sql(
            "SELECT r.email, count(w.channel_id) FROM reps r "
            "LEFT JOIN watch_channels w ON w.rep_id = r.id GROUP BY r.email"
        )
    )
    assert all(per_rep_rows[e] == 1 for e in emails), per_rep_rows


@pytest.mark.parametrize("point", ["meeting.decided", "delivery.sent"])
def test_a_replica_killed_around_a_delivery_loses_nothing(cluster: Cluster, point: str) -> None:
    """Killed after the decision (before any delivery), or after the receiver accepted
    the nudge (before the outbox row was marked): the other replica delivers it, with
    the same id — for ``delivery.sent`` that is a second, expected, redelivery."""
    emu, receiver = cluster.emu, cluster.receiver
    email = f"crash-{uuid.uuid4().hex[:6]}@corp.test"
    emu.add_user(email)
    doomed = cluster.start(NEXTSTEP_TEST_CRASH_AT=point)
    _meeting_event(emu, email, 1, datetime.now(UTC) + timedelta(seconds=2))
    with doomed.client() as api:
        rep = register(api, email)
    wait_for(lambda: killed(doomed), timeout=30)
    (nudge_id,) = [r[0] for r in cluster.sql("SELECT id FROM nudges WHERE kind NOT LIKE '%.%'")]
    if point == "delivery.sent":
        assert [n["id"] for n in receiver.nudges] == [nudge_id]

    cluster.start()  # the survivor takes over once the dead replica's leases expire
    wait_for(
        lambda: (
            cluster.scalar(
                "SELECT count(*) FROM deliveries d JOIN nudges n ON n.id = d.nudge_id"
                " WHERE d.status = 'delivered' AND n.kind NOT LIKE '%.%'"
            )
            == 1
        ),
        timeout=30,
    )
    got = [n["id"] for n in receiver.nudges]
    assert set(got) == {nudge_id}
    assert len(got) == (2 if point == "delivery.sent" else 1)
    assert (
        cluster.scalar(
            "SELECT count(*) FROM nudges WHERE rep_id = :r AND kind NOT LIKE '%.%'", r=rep["id"]
        )
        == 1
    )


def test_a_sync_killed_mid_page_resumes_from_the_stored_cursor(cluster: Cluster) -> None:
    emu = cluster.emu
    email = f"pages-{uuid.uuid4().hex[:6]}@corp.test"
    emu.add_user(email)
    first = datetime.now(UTC) + timedelta(days=1)
    events = {_meeting_event(emu, email, n, first + timedelta(minutes=30 * n)) for n in range(300)}
    doomed = cluster.start(NEXTSTEP_TEST_CRASH_AT="sync.page_applied")
    survivor = cluster.start()
    # The registration's initial sync dies after its first page (250 events) is stored.
    with doomed.client() as api, pytest.raises(httpx.TransportError):
        api.post("/v1/reps", json={"email": email, "provider": "google", "timezone": "UTC"})
    wait_for(lambda: killed(doomed), timeout=30)
    assert cluster.scalar("SELECT count(*) FROM meetings") == 250

    with survivor.client() as api:

        def active() -> dict | None:
            items = [r for r in api.get("/v1/reps").json()["items"] if r["email"] == email]
            return items[0] if items and items[0]["status"] == "active" else None

        rep = wait_for(active, timeout=30)
        listed = api.get("/v1/meetings", params={"rep_id": rep["id"]}).json()["items"]
    assert {m["event_id"] for m in listed} == events
    assert len({m["id"] for m in listed}) == 300
    lists = [r.query for r in emu.requests_for("events.list") if r.subject == email]
    assert "pageToken" not in lists[0] and "syncToken" not in lists[0]
    assert "pageToken" in lists[1], "the survivor went on from the stored page cursor"
    fresh = [q for q in lists if "pageToken" not in q and "syncToken" not in q]
    assert len(fresh) == 1, "no second full listing"


def test_a_renewal_killed_between_store_and_stop_is_finished_once(cluster: Cluster) -> None:
    emu = cluster.emu
    email = f"renew-{uuid.uuid4().hex[:6]}@corp.test"
    emu.add_user(email)
    ttl = {"NEXTSTEP_GOOGLE_CHANNEL_TTL_SECONDS": "12"}  # renewed at half-life, 6 s
    doomed = cluster.start(NEXTSTEP_TEST_CRASH_AT="renewal.stored", **ttl)
    with doomed.client() as api:
        (old,) = [w["channel_id"] for w in register(api, email)["calendar"]["watch"]]
    wait_for(lambda: killed(doomed), timeout=30)
    stored = [r[0] for r in cluster.sql("SELECT channel_id FROM watch_channels")]
    assert len(stored) == 2 and old in stored, "the new channel was stored, the old one kept"

    cluster.start(**ttl)
    wait_for(lambda: emu.channels[old].stopped, timeout=30)
    calls = [
        (r.method, (r.body or {}).get("id"))
        for r in emu.requests
        if r.method in ("events.watch", "channels.stop") and r.subject == email
    ]
    (new,) = [cid for cid in stored if cid != old]
    # The survivor only stopped the replaced channel: no second renewal of it.
    assert calls[:3] == [("events.watch", old), ("events.watch", new), ("channels.stop", old)]
    assert calls.count(("channels.stop", old)) == 1
    wait_for(
        lambda: old not in [r[0] for r in cluster.sql("SELECT channel_id FROM watch_channels")]
    )


def test_a_registration_killed_before_the_watch_is_watched_and_synced_by_another(
    cluster: Cluster,
) -> None:
    emu = cluster.emu
    email = f"half-{uuid.uuid4().hex[:6]}@corp.test"
    emu.add_user(email)
    event_id = _meeting_event(emu, email, 1, datetime.now(UTC) + timedelta(days=1))
    doomed = cluster.start(NEXTSTEP_TEST_CRASH_AT="rep.inserted")
    # the safety net runs every second here, so the orphan is found once its lease is gone
    survivor = cluster.start(NEXTSTEP_SAFETY_NET_SYNC_SECONDS="2")
    with doomed.client() as api, pytest.raises(httpx.TransportError):
        api.post("/v1/reps", json={"email": email, "provider": "google", "timezone": "UTC"})
    wait_for(lambda: killed(doomed), timeout=30)
    assert emu.live_channels(email) == []

    with survivor.client() as api:

        def watched() -> dict | None:
            items = [r for r in api.get("/v1/reps").json()["items"] if r["email"] == email]
            rep = items[0] if items else None
            return rep if rep and rep["status"] == "active" and rep["calendar"]["watch"] else None

        rep = wait_for(watched, timeout=40)
        listed = api.get("/v1/meetings", params={"rep_id": rep["id"]}).json()["items"]
    assert [m["event_id"] for m in listed] == [event_id]
    assert len(emu.live_channels(email)) == 1


def test_with_default_settings_a_nudge_comes_within_a_minute_of_a_kill_9(cluster: Cluster) -> None:
    """The contract's minute, with the lease, heartbeat and polling as shipped: a replica
    takes the due meetings and dies (SIGKILL) before deciding any; the replica that
    starts after it delivers every nudge within a minute of its window closing."""
    emu, receiver = cluster.emu, cluster.receiver
    email = f"minute-{uuid.uuid4().hex[:6]}@corp.test"
    emu.add_user(email)
    doomed = cluster.start(defaults=True, NEXTSTEP_TEST_CRASH_AT="meeting.claimed")
    with doomed.client() as api:
        rep = register(api, email)
    # The meetings appear after registration (a push, then an incremental sync): their
    # windows close after it however long it took.
    end = datetime.now(UTC) + timedelta(seconds=6)
    for n in range(5):
        _meeting_event(emu, email, n, end)
    wait_for(lambda: killed(doomed), timeout=60)
    held = cluster.scalar("SELECT count(*) FROM meetings WHERE lease_owner IS NOT NULL")
    assert held == 5, "the dead replica held every due meeting"
    # (CRM events share the table: their kinds have a dot, e.g. meeting.state_changed)
    assert cluster.scalar("SELECT count(*) FROM nudges WHERE kind NOT LIKE '%.%'") == 0

    cluster.start(defaults=True)
    wait_for(
        lambda: (
            cluster.scalar(
                "SELECT count(*) FROM deliveries d JOIN nudges n ON n.id = d.nudge_id"
                " WHERE d.status = 'delivered' AND n.kind NOT LIKE '%.%'"
            )
            == 5
        ),
        timeout=120,
    )
    late = cluster.sql(
        "SELECT extract(epoch FROM d.delivered_at - (m.\"end\" + interval '2 seconds'))"
        " FROM deliveries d JOIN nudges n ON n.id = d.nudge_id"
        " JOIN meetings m ON m.id = n.meeting_id WHERE m.rep_id = :r AND n.kind NOT LIKE '%.%'",
        r=rep["id"],
    )
    assert len(late) == 5
    assert all(0 <= float(seconds) < 60 for (seconds,) in late), late
    assert len({(n.get("meeting") or {}).get("id") for n in receiver.nudges}) == 5
