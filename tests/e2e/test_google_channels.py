"""Google push channels over time: renewal before expiry, lost notifications, restarts.

Each test runs its own `nextstep serve` against its own emulator, since each needs
settings of its own (short channel life, short safety-net interval) or restarts it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.emulators.google import fixtures
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.harness import setup_google
from tests.emulators.google.serving import google_serve_env, meetings, push, register
from tests.helpers.serve import free_port, serve, wait_for

google_emulator = fixtures.google_emulator


def _event(emu: GoogleEmulator, email: str, summary: str, days: int = 1) -> str:
    start = datetime.now(UTC) + timedelta(days=days)
    return emu.create_event(
        email,
        summary=summary,
        start=start,
        end=start + timedelta(hours=1),
        attendees=[f"{summary.lower()}@acme.test"],
    )


def _watch_ids(api: httpx.Client, rep_id: str) -> list[str]:
    return [w["channel_id"] for w in api.get(f"/v1/reps/{rep_id}").json()["calendar"]["watch"]]


def test_channels_are_renewed_before_expiry_new_one_first(
    google_emulator: GoogleEmulator, tmp_path: Path
) -> None:
    emu, email = google_emulator, "renew@corp.test"
    key = setup_google(emu, tmp_path, reps=[email]).key_file
    env = google_serve_env(emu, key, tmp_path, NEXTSTEP_GOOGLE_CHANNEL_TTL_SECONDS="6")
    with serve(env, tmp_path) as srv, srv.client() as api:
        rep = register(api, email)
        (first,) = _watch_ids(api, rep["id"])
        old = emu.channels[first]
        assert old.expires_at - datetime.now(UTC) <= timedelta(seconds=6)

        # renewed at half-life: a new channel, then the old one stopped, twice in a row
        second = wait_for(
            lambda: (ids := _watch_ids(api, rep["id"])) != [first] and len(ids) == 1 and ids[0],
            timeout=10,
        )
        assert old.stopped and datetime.now(UTC) < old.expires_at, "stopped before it expired"
        calls = [
            (r.method, (r.body or {}).get("id"))
            for r in emu.requests
            if r.method in ("events.watch", "channels.stop")
        ]
        assert calls.index(("events.watch", second)) < calls.index(("channels.stop", first))
        assert emu.channels[second].token != old.token, "a fresh token per channel"
        third = wait_for(
            lambda: (ids := _watch_ids(api, rep["id"])) != [second] and len(ids) == 1 and ids[0],
            timeout=10,
        )
        assert emu.channels[second].stopped and not emu.channels[third].stopped

        # the replaced channel is refused; the live one delivers changes
        with httpx.Client(timeout=10) as client:
            stale = push(
                client,
                f"{srv.url}/webhooks/google",
                channel_id=first,
                token=old.token,
                resource_id=old.resource_id,
                number=999,
            )
        assert 400 <= stale.status_code < 500
        event_id = _event(emu, email, "Renewed")
        wait_for(lambda: event_id in meetings(api, rep["id"]))
        assert len(emu.live_channels(email)) in (1, 2)  # 2 only during an overlap


def test_lost_notifications_are_caught_by_the_safety_net(
    google_emulator: GoogleEmulator, tmp_path: Path
) -> None:
    emu, email = google_emulator, "lost@corp.test"
    key = setup_google(emu, tmp_path, reps=[email]).key_file
    env = google_serve_env(emu, key, tmp_path, NEXTSTEP_SAFETY_NET_SYNC_SECONDS="1")
    with serve(env, tmp_path) as srv, srv.client() as api:
        rep = register(api, email)
        (channel,) = _watch_ids(api, rep["id"])
        delivered = len([d for d in emu.deliveries if d.channel_id == channel])
        emu.drop_next_notifications(1)
        event_id = _event(emu, email, "Lost")
        wait_for(lambda: event_id in meetings(api, rep["id"]), timeout=10)
        assert len([d for d in emu.deliveries if d.channel_id == channel]) == delivered
        assert "sync.safety_net" in srv.output()
        # a quiet calendar keeps being checked by incremental syncs, never a full one
        lists = emu.requests_for("events.list")
        wait_for(lambda: len(emu.requests_for("events.list")) > len(lists), timeout=10)
        later = emu.requests_for("events.list")[len(lists) :]
        assert all("syncToken" in r.query for r in later)


def test_a_restart_keeps_live_channels_without_a_rewatch_storm(
    google_emulator: GoogleEmulator, tmp_path: Path
) -> None:
    emu = google_emulator
    emails = [f"r{i}@corp.test" for i in range(5)]
    key = setup_google(emu, tmp_path, reps=emails).key_file
    env = google_serve_env(emu, key, tmp_path)
    port = free_port()
    with serve(env, tmp_path, port=port) as srv, srv.client() as api:
        reps = {email: register(api, email)["id"] for email in emails}
        channels = {email: _watch_ids(api, rep_id) for email, rep_id in reps.items()}
        first = _event(emu, emails[0], "Before")
        wait_for(lambda: first in meetings(api, reps[emails[0]]))
    assert all(len(ids) == 1 for ids in channels.values())
    watches, stops = emu.calls["events.watch"], emu.calls["channels.stop"]

    # a change while no process listens: Google's delivery fails, the change waits
    down = _event(emu, emails[1], "Down")
    with serve(env, tmp_path, port=port) as srv, srv.client() as api:
        # the same channels, from the database, accept notifications on the new process
        after = _event(emu, emails[2], "After")
        wait_for(lambda: after in meetings(api, reps[emails[2]]))
        for email, rep_id in reps.items():
            assert _watch_ids(api, rep_id) == channels[email]
        wait_for(
            lambda: (
                [d.status for d in emu.deliveries if d.channel_id == channels[emails[2]][0]][-1]
                == 200
            )
        )
        # and a forged one is still refused after the restart
        live = emu.channels[channels[emails[3]][0]]
        with httpx.Client(timeout=10) as client:
            forged = push(
                client,
                f"{srv.url}/webhooks/google",
                channel_id=live.id,
                token="guess",
                resource_id=live.resource_id,
                number=77,
            )
        assert 400 <= forged.status_code < 500
        # the notification lost while down: a later change on that calendar brings both
        later = _event(emu, emails[1], "Later", days=2)
        wait_for(lambda: {down, later} <= set(meetings(api, reps[emails[1]])))
        assert emu.calls["events.watch"] == watches, "no channel was opened again"
        assert emu.calls["channels.stop"] == stops
        assert all(len(emu.live_channels(email)) == 1 for email in emails)


def test_a_notification_acknowledged_just_before_a_kill_still_gets_its_sync(
    google_emulator: GoogleEmulator, tmp_path: Path
) -> None:
    """kill -9 right after the 200: the stored notification's sync runs on the next process.

    The sync cannot happen before the kill (the emulator holds every events.list call), so
    only the database row written before the acknowledgement can bring the change in.
    """
    emu = google_emulator
    email = "acked@corp.test"
    key = setup_google(emu, tmp_path, reps=[email]).key_file
    env = google_serve_env(emu, key, tmp_path, NEXTSTEP_LEASE_SECONDS="2")
    port = free_port()
    with serve(env, tmp_path, port=port) as srv, srv.client() as api:
        rep_id = register(api, email)["id"]
        (channel_id,) = _watch_ids(api, rep_id)
        emu.hold_notifications()  # only our own push below reaches the service
        emu.block("events.list")
        change = _event(emu, email, "Acked")
        live = emu.channels[channel_id]
        with httpx.Client(timeout=10) as client:
            acked = push(
                client,
                f"{srv.url}/webhooks/google",
                channel_id=live.id,
                token=live.token,
                resource_id=live.resource_id,
                number=4242,
            )
        srv.proc.kill()  # SIGKILL, right after the 200
        srv.proc.wait()
    assert acked.status_code == 200
    emu.unblock("events.list")
    with serve(env, tmp_path, port=port) as srv, srv.client() as api:
        wait_for(lambda: change in meetings(api, rep_id), timeout=60)
    emu.release_notifications()
