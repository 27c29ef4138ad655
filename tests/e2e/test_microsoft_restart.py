"""Graph subscriptions outlive the process; the safety net catches what notifications lose.

`nextstep serve` is stopped and a new one started on the same SQLite file and port: the
live subscription keeps working with no new subscription created.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_microsoft import (
    by_title,
    idle,
    meeting_event,
    ms_env,
    register,
    rep,
    subscription_of,
)
from tests.emulators.microsoft.harness import (
    RunningEmulator,
    generate_self_signed_cert,
    register_user,
    run_emulator,
)
from tests.helpers.receiver import Receiver
from tests.helpers.serve import free_port, serve, wait_for


@pytest.fixture
def ms(tmp_path) -> Iterator[RunningEmulator]:
    with run_emulator(generate_self_signed_cert(tmp_path / "cert")) as running:
        yield running


@pytest.fixture
def nudges() -> Iterator[Receiver]:
    r = Receiver("s3cret")
    yield r
    r.close()


def test_restart_keeps_live_subscriptions_and_safety_net_catches_lost_changes(ms, nudges, tmp_path):
    env = ms_env(ms, nudges, tmp_path, NEXTSTEP_SAFETY_NET_SYNC_SECONDS="2")
    port = free_port()
    emails = [f"rep{i}@contoso.com" for i in range(3)]
    for email in emails:
        register_user(ms, email)

    with serve(env, tmp_path, port=port) as first, first.client() as api:
        reps = [register(api, email) for email in emails]
        subs = {email: subscription_of(ms, email).id for email in emails}
        for r in reps:
            wait_for(lambda r=r: idle(api, r["id"]))
        meeting_event(ms, emails[0], "Before restart")
        wait_for(lambda: by_title(api, reps[0]["id"], "Before restart"))
    created = ms.emulator.calls["POST subscriptions"]
    assert created == len(emails)

    # While no process listens, Graph's notification fails: the change must not be lost.
    meeting_event(ms, emails[0], "While down")
    ms.emulator.wait_for_deliveries()
    assert ms.emulator.deliveries[-1].error is not None

    with serve(env, tmp_path, port=port) as second, second.client() as api:
        for r in reps:
            watch = rep(api, r["id"])["calendar"]["watch"]
            assert [w["channel_id"] for w in watch] == [subs[r["email"]]]
        sent = len(ms.emulator.deliveries)
        meeting_event(ms, emails[1], "After restart")
        wait_for(lambda: by_title(api, reps[1]["id"], "After restart"))
        assert ms.emulator.deliveries[sent].status == 202, "an existing subscription is accepted"
        wait_for(lambda: by_title(api, reps[0]["id"], "While down"))

        # A notification Graph drops: the safety-net delta (quiet > 2 s) brings the change.
        ms.emulator.drop_next_notifications(1)
        meeting_event(ms, emails[2], "Dropped notification")
        wait_for(lambda: by_title(api, reps[2]["id"], "Dropped notification"), timeout=15)
        assert "sync.safety_net" in second.output()

        for r in reps:
            assert rep(api, r["id"])["status"] == "active"
        assert ms.emulator.calls["POST subscriptions"] == created, "no re-subscribe storm"
        assert ms.emulator.calls["PATCH subscriptions"] == 0
        assert {email: subscription_of(ms, email).id for email in emails} == subs


def test_refused_app_credentials_mark_reps_not_the_service(ms, nudges, tmp_path):
    env = ms_env(ms, nudges, tmp_path, NEXTSTEP_MS_CLIENT_SECRET="not-the-secret")
    register_user(ms, "anne@contoso.com")
    with serve(env, tmp_path) as srv, srv.client() as api:
        r = register(api, "anne@contoso.com")
        assert r["status"] == "auth_failed", r
        assert "invalid_client" in r["status_detail"]
        assert api.get("/healthz").status_code == 200
        assert ms.emulator.calls["POST subscriptions"] == 0
