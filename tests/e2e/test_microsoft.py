"""`nextstep serve` against the Graph emulator over real HTTPS: Microsoft 365 reps watched.

One emulator, one signed-webhook receiver and one `serve` process are shared by the
module (each test uses its own mailbox); what needs other settings or a restart has its
own process in ``test_microsoft_restart.py``. Policy windows are seconds long.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_serve_sandbox import POLICY
from tests.emulators.microsoft.emulator import Recurrence
from tests.emulators.microsoft.harness import (
    RunningEmulator,
    app_env,
    generate_self_signed_cert,
    register_user,
    run_emulator,
)
from tests.helpers.receiver import Receiver
from tests.helpers.serve import Server, serve, wait_for

INTERNAL = "contoso.com"
DELTA = "GET calendarView.delta"


@pytest.fixture(scope="module")
def ms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    cert = generate_self_signed_cert(tmp_path_factory.mktemp("ms-cert"))
    with run_emulator(cert) as running:
        yield running


@pytest.fixture(scope="module")
def nudges() -> Iterator[Receiver]:
    r = Receiver("s3cret")
    yield r
    r.close()


def ms_env(ms: RunningEmulator, nudges: Receiver, tmp: Path, **extra: str) -> dict[str, str]:
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    return {
        **app_env(ms),
        "NEXTSTEP_INTERNAL_DOMAINS": INTERNAL,
        "NEXTSTEP_POLICY_FILE": str(policy),
        "NEXTSTEP_NUDGE_WEBHOOK_URL": nudges.url,
        "NEXTSTEP_NUDGE_WEBHOOK_SECRET": "s3cret",
        **extra,
    }


@pytest.fixture(scope="module")
def srv(
    ms: RunningEmulator, nudges: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ms-serve")
    with serve(ms_env(ms, nudges, tmp), tmp) as server:
        yield server


@pytest.fixture
def api(srv: Server) -> Iterator[httpx.Client]:
    with srv.client() as client:
        yield client


# --- helpers -------------------------------------------------------------------------


def register(api: httpx.Client, email: str) -> dict[str, Any]:
    resp = api.post(
        "/v1/reps", json={"email": email, "provider": "microsoft", "timezone": "Europe/Paris"}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def rep(api: httpx.Client, rep_id: str) -> dict[str, Any]:
    resp = api.get(f"/v1/reps/{rep_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def meetings(api: httpx.Client, rep_id: str) -> list[dict[str, Any]]:
    return api.get("/v1/meetings", params={"rep_id": rep_id}).json()["items"]


def by_title(api: httpx.Client, rep_id: str, title: str) -> list[dict[str, Any]]:
    return [m for m in meetings(api, rep_id) if m["title"] == title]


def idle(api: httpx.Client, rep_id: str) -> bool:
    cal = rep(api, rep_id)["calendar"]
    return not cal["sync_pending"] and cal["synced_at"] is not None


def subscription_of(ms: RunningEmulator, email: str) -> Any:
    subs = [s for s in ms.emulator.subscriptions.values() if s.mailbox == email.lower()]
    assert len(subs) == 1, subs
    return subs[0]


def meeting_event(
    ms: RunningEmulator,
    email: str,
    title: str,
    *,
    ends_in: float = 3600,
    attendee: str = "dana@fabrikam.com",
    **kw: Any,
) -> str:
    now = datetime.now(UTC)
    return ms.emulator.add_event(
        email,
        subject=title,
        start=now - timedelta(minutes=30),
        end=now + timedelta(seconds=ends_in),
        attendees=[(attendee, "required", "none")],
        **kw,
    )


def notification(
    sub_id: str, client_state: str | None, user_id: str = "u", event_id: str = "e"
) -> dict[str, Any]:
    resource = f"Users/{user_id}/Events/{event_id}"
    return {
        "value": [
            {
                "subscriptionId": sub_id,
                "changeType": "updated",
                "resource": resource,
                "subscriptionExpirationDateTime": "2099-01-01T00:00:00Z",
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "id": event_id,
                },
                "clientState": client_state,
                "tenantId": "t",
            }
        ]
    }


def delta_calls(ms: RunningEmulator, email: str) -> int:
    """calendarView/delta calls made for ``email`` (every page, every retry)."""
    return sum(
        1
        for method, url, _ in list(ms.emulator.requests)
        if method == "GET" and f"/users/{email}/calendarView/delta" in url
    )


def delta_rounds(ms: RunningEmulator, email: str) -> int:
    """Incremental rounds the connector started for ``email`` (each opens a deltaLink)."""
    return sum(
        1
        for method, url, _ in list(ms.emulator.requests)
        if method == "GET" and "$deltatoken=" in url and f"/users/{email}/" in url
    )


# --- the whole story on Microsoft alone ----------------------------------------------


def test_meeting_to_secured_on_microsoft(ms, srv, api, nudges):
    email = "anne@contoso.com"
    register_user(ms, email)
    r = register(api, email)
    assert r["status"] == "active", r
    watch = r["calendar"]["watch"]
    assert len(watch) == 1, "the mailbox is watched right away"
    sub = ms.emulator.subscriptions[watch[0]["channel_id"]]
    assert sub.notification_url == f"{srv.url}/webhooks/microsoft"
    assert sub.lifecycle_url == f"{srv.url}/webhooks/microsoft/lifecycle"
    assert sub.change_types == {"created", "updated", "deleted"}
    assert sub.client_state and len(sub.client_state) >= 32

    meeting_event(ms, email, "Fabrikam discovery", ends_in=1)
    m = wait_for(lambda: next(iter(by_title(api, r["id"], "Fabrikam discovery")), None))
    assert m["external_attendees"] == ["dana@fabrikam.com"]
    assert m["account_domain"] == "fabrikam.com"
    wait_for(lambda: api.get(f"/v1/meetings/{m['id']}").json()["state"] == "needs_next_step")
    nudge = wait_for(
        lambda: next(
            (
                n
                for n in nudges.nudges
                if (n.get("meeting") or {}).get("id") == m["id"] and n["kind"] == "no_next_step"
            ),
            None,
        )
    )
    assert nudge["suggested_slots"], nudge

    # Graph's answer to the creation is lost once (504 after it took effect): the retry
    # carries the same transactionId, so one event and one invitation only.
    posts = ms.emulator.calls["POST events"]
    ms.emulator.inject_fault(504, 1, endpoint="POST events", after_processing=True)
    slot = nudge["suggested_slots"][0]
    sched = api.post(
        f"/v1/meetings/{m['id']}/schedule",
        json={"start": slot["start"], "subject": "Fabrikam next step"},
    )
    assert sched.status_code == 201, sched.text
    assert sched.json()["state"] == "invited"
    fu_id = sched.json()["follow_up"]["event_id"]
    created = [
        e for e in ms.emulator.mailboxes[email].events.values() if e.subject == "Fabrikam next step"
    ]
    assert [e.id for e in created] == [fu_id]
    assert [a.email for a in created[0].attendees] == ["dana@fabrikam.com"]
    assert ms.emulator.calls["POST events"] == posts + 2, "one lost answer, one retry"

    assert created[0].join_url and created[0].join_url.startswith("https://teams.microsoft.com/")

    # Its own follow-up is never busy for it: the same slot again changes nothing more.
    again = api.post(
        f"/v1/meetings/{m['id']}/schedule",
        json={"start": slot["start"], "subject": "Fabrikam next step"},
    )
    assert again.status_code == 201, again.text
    assert ms.emulator.calls["POST events"] == posts + 2, "moved in place, never a second event"
    assert [
        e.id
        for e in ms.emulator.mailboxes[email].events.values()
        if e.subject == "Fabrikam next step"
    ] == [fu_id]

    ms.emulator.set_response(email, fu_id, "dana@fabrikam.com", "accepted")
    wait_for(lambda: api.get(f"/v1/meetings/{m['id']}").json()["state"] == "secured")
    fu = api.get(f"/v1/meetings/{m['id']}").json()["follow_up"]
    assert fu["responses"] == {"dana@fabrikam.com": "accepted"}
    assert nudges.bad_signatures == 0


def test_one_click_invites_with_teams_and_a_decline_moves_it_with_patch(ms, srv, api, nudges):
    email = "clicks@contoso.com"
    register_user(ms, email)
    r = register(api, email)
    meeting_event(ms, email, "Northwind discovery", ends_in=1, attendee="ida@northwind.com")
    m = wait_for(lambda: next(iter(by_title(api, r["id"], "Northwind discovery")), None))
    nudge = wait_for(
        lambda: next(
            (n for n in nudges.nudges if (n.get("meeting") or {}).get("id") == m["id"]), None
        )
    )
    send = nudge["actions"][0]

    def posts() -> int:
        return sum(
            1
            for method, url, _ in list(ms.emulator.requests)
            if method == "POST" and url.endswith(f"/users/{email}/events")
        )

    assert httpx.get(send["url"]).status_code == 200 and posts() == 0, "GET sends nothing"
    done = httpx.post(send["url"])
    assert done.status_code == 200 and "The invite is sent." in done.text, done.text
    assert posts() == 1
    (created,) = [
        e
        for e in ms.emulator.mailboxes[email].events.values()
        if e.subject != "Northwind discovery"
    ]
    assert created.join_url and created.join_url in done.text, "Teams link on the result page"
    assert "Northwind discovery" in created.body and "work for you" not in created.body
    wait_for(lambda: api.get(f"/v1/meetings/{m['id']}").json()["state"] == "invited")

    ms.emulator.set_response(email, created.id, "ida@northwind.com", "declined")
    declined = wait_for(
        lambda: next(
            (
                n
                for n in nudges.nudges
                if (n.get("meeting") or {}).get("id") == m["id"]
                and n["kind"] == "follow_up_declined"
            ),
            None,
        )
    )
    moved = httpx.post(declined["actions"][0]["url"])
    assert moved.status_code == 200 and "The follow-up is moved." in moved.text, moved.text
    assert posts() == 1, "never a second follow-up"
    patches = [
        url
        for method, url, _ in list(ms.emulator.requests)
        if method == "PATCH" and f"/users/{email}/events/" in url
    ]
    assert len(patches) == 1
    assert created.start == datetime.fromisoformat(declined["actions"][0]["slot"]["start"])
    assert [a.response for a in created.attendees] == ["none"], "asked again at the new time"
    wait_for(lambda: api.get(f"/v1/meetings/{m['id']}").json()["state"] == "invited")


# --- webhooks: handshake, forgeries, duplicates ----------------------------------------


@pytest.mark.parametrize("path", ["/webhooks/microsoft", "/webhooks/microsoft/lifecycle"])
def test_validation_handshake_is_plain_text(srv, path):
    token = "Validation: Testing client application reachability <&> é"
    resp = httpx.post(
        f"{srv.url}{path}",
        params={"validationToken": token},
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == token


def test_forged_notifications_are_refused_and_change_nothing(ms, srv, api):
    email = "forge@contoso.com"
    user_id = register_user(ms, email)
    r = register(api, email)
    sub = subscription_of(ms, email)
    wait_for(lambda: idle(api, r["id"]))
    before = rep(api, r["id"])["calendar"]
    deltas = delta_calls(ms, email)
    subscription_calls = (
        ms.emulator.calls["PATCH subscriptions"],
        ms.emulator.calls["POST subscriptions"],
    )

    cases = [
        ("/webhooks/microsoft", notification(sub.id, "wrong-state", user_id)),
        ("/webhooks/microsoft", notification(sub.id, None, user_id)),
        (
            "/webhooks/microsoft",
            notification("00000000-0000-0000-0000-000000000000", sub.client_state, user_id),
        ),
        (
            "/webhooks/microsoft/lifecycle",
            {
                "value": [
                    {
                        "subscriptionId": sub.id,
                        "clientState": "wrong",
                        "lifecycleEvent": "subscriptionRemoved",
                        "subscriptionExpirationDateTime": "2099-01-01T00:00:00Z",
                        "tenantId": "t",
                    }
                ]
            },
        ),
        (
            "/webhooks/microsoft/lifecycle",
            {
                "value": [
                    {
                        "subscriptionId": "nope",
                        "clientState": sub.client_state,
                        "lifecycleEvent": "reauthorizationRequired",
                        "tenantId": "t",
                    }
                ]
            },
        ),
    ]
    for path, body in cases:
        resp = httpx.post(f"{srv.url}{path}", json=body)
        assert 400 <= resp.status_code < 500, (path, body, resp.status_code)
    for raw in (b"not json", b'{"value": 3}'):
        resp = httpx.post(
            f"{srv.url}/webhooks/microsoft",
            content=raw,
            headers={"Content-Type": "application/json"},
        )
        assert 400 <= resp.status_code < 500, raw

    assert rep(api, r["id"])["calendar"] == before, "a refused notification changes nothing"
    assert delta_calls(ms, email) == deltas

    ok = httpx.post(
        f"{srv.url}/webhooks/microsoft", json=notification(sub.id, sub.client_state, user_id)
    )
    assert ok.status_code == 202, "the genuine one is accepted"
    # Once the genuine one has been acted on, the forged ones still had no effect.
    wait_for(lambda: delta_calls(ms, email) > deltas and idle(api, r["id"]))
    assert delta_calls(ms, email) == deltas + 1, "one delta round, for the genuine one"
    assert (
        ms.emulator.calls["PATCH subscriptions"],
        ms.emulator.calls["POST subscriptions"],
    ) == subscription_calls
    assert subscription_of(ms, email).id == sub.id


def test_duplicated_and_lost_notifications(ms, srv, api):
    email = "dup@contoso.com"
    register_user(ms, email)
    r = register(api, email)
    wait_for(lambda: idle(api, r["id"]))

    ms.emulator.duplicate_next_notifications(1)
    sent = len(ms.emulator.deliveries)
    meeting_event(ms, email, "Twice told")
    wait_for(lambda: by_title(api, r["id"], "Twice told"))
    ms.emulator.wait_for_deliveries()
    twice = ms.emulator.deliveries[sent:]
    assert len(twice) == 2 and twice[0].body == twice[1].body
    assert [d.status for d in twice] == [202, 202], "a duplicate is acknowledged, not refused"
    wait_for(lambda: idle(api, r["id"]))
    assert len(by_title(api, r["id"], "Twice told")) == 1

    # A lost notification: the next one (or the safety net) brings both changes.
    ms.emulator.drop_next_notifications(1)
    meeting_event(ms, email, "Never told")
    ms.emulator.wait_for_deliveries()
    meeting_event(ms, email, "Told later")
    wait_for(lambda: by_title(api, r["id"], "Told later"))
    assert by_title(api, r["id"], "Never told"), "the delta round carries the lost change too"


def test_redelivery_and_a_second_change_are_told_apart_by_etag(ms, srv, api):
    email = "etag@contoso.com"
    user_id = register_user(ms, email)
    r = register(api, email)
    sub = subscription_of(ms, email)
    wait_for(lambda: idle(api, r["id"]))

    def post(etag: str) -> None:
        body = notification(sub.id, sub.client_state, user_id, "AAMkAD-one-event")
        body["value"][0]["resourceData"]["@odata.etag"] = etag
        assert httpx.post(f"{srv.url}/webhooks/microsoft", json=body).status_code == 202

    calls = delta_calls(ms, email)
    post('W/"v1"')
    wait_for(lambda: delta_calls(ms, email) == calls + 1 and idle(api, r["id"]))
    post('W/"v2"')  # the same event changed again, maybe within the same second
    second = datetime.now(UTC).replace(microsecond=0)
    wait_for(lambda: delta_calls(ms, email) == calls + 2 and idle(api, r["id"]))
    wait_for(lambda: datetime.now(UTC).replace(microsecond=0) > second, timeout=3)
    ms.emulator.latency = 0.5  # a round asked for now would still be pending below
    try:
        post('W/"v2"')  # Graph redelivers them, a second or more later
        post('W/"v1"')
        assert not rep(api, r["id"])["calendar"]["sync_pending"], "a redelivery asks no sync"
    finally:
        ms.emulator.latency = 0.0
    assert delta_calls(ms, email) == calls + 2


def test_burst_coalesces_into_few_delta_rounds(ms, srv, api):
    email = "burst@contoso.com"
    register_user(ms, email)
    r = register(api, email)
    wait_for(lambda: idle(api, r["id"]))
    before = delta_rounds(ms, email)
    ms.emulator.latency = 0.8  # a round in flight spans the whole burst
    try:
        for i in range(30):
            meeting_event(ms, email, f"Burst {i}")
        ms.emulator.wait_for_deliveries(timeout=15)
        wait_for(
            lambda: len([m for m in meetings(api, r["id"]) if m["title"].startswith("Burst")]) == 30
        )
        wait_for(lambda: idle(api, r["id"]))
    finally:
        ms.emulator.latency = 0.0
    rounds = delta_rounds(ms, email) - before
    assert 1 <= rounds <= 2, f"30 notifications: one round in flight, one after, not {rounds}"
    assert ms.emulator.max_in_flight[email] <= 4


# --- lifecycle and renewal -----------------------------------------------------------


def test_lifecycle_events(ms, srv, api):
    email = "life@contoso.com"
    register_user(ms, email)
    r = register(api, email)
    wait_for(lambda: idle(api, r["id"]))
    sub = subscription_of(ms, email)
    patches = ms.emulator.calls["PATCH subscriptions"]
    creations = ms.emulator.calls["POST subscriptions"]

    ms.emulator.send_lifecycle(sub.id, "reauthorizationRequired")
    wait_for(lambda: ms.emulator.calls["PATCH subscriptions"] > patches)
    assert subscription_of(ms, email).id == sub.id, "renewed in place"
    assert ms.emulator.calls["POST subscriptions"] == creations

    rounds = delta_rounds(ms, email)
    ms.emulator.send_lifecycle(sub.id, "missed")
    wait_for(lambda: delta_rounds(ms, email) > rounds)

    ms.emulator.send_lifecycle(sub.id, "subscriptionRemoved")

    def watched() -> list[str]:
        return [w["channel_id"] for w in rep(api, r["id"])["calendar"]["watch"]]

    wait_for(lambda: len(watched()) == 1 and watched() != [sub.id])
    new = subscription_of(ms, email)
    assert new.id != sub.id and new.client_state != sub.client_state
    assert watched() == [new.id]
    old = httpx.post(f"{srv.url}/webhooks/microsoft", json=notification(sub.id, sub.client_state))
    assert old.status_code == 403, "the removed subscription is no longer accepted"
    meeting_event(ms, email, "After recreate")
    wait_for(lambda: by_title(api, r["id"], "After recreate"))


def test_subscription_renewed_by_patch_before_expiry(ms, srv, api):
    email = "renew@contoso.com"
    register_user(ms, email)
    ms.emulator.set_mailbox(email, subscription_seconds=4.0)  # Graph grants 4 s only
    r = register(api, email)
    sub = subscription_of(ms, email)
    first_expiry = sub.expires
    wait_for(
        lambda: subscription_of(ms, email).expires > first_expiry + timedelta(seconds=3), timeout=10
    )
    assert subscription_of(ms, email).id == sub.id
    assert [w["channel_id"] for w in rep(api, r["id"])["calendar"]["watch"]] == [sub.id]
    # Past the first expiry the subscription still notifies, and is still accepted.
    wait_for(lambda: datetime.now(UTC) > first_expiry + timedelta(seconds=1), timeout=10)
    meeting_event(ms, email, "Still watched")
    wait_for(lambda: by_title(api, r["id"], "Still watched"))
    ms.emulator.set_mailbox(email, subscription_seconds=None)
    assert api.delete(f"/v1/reps/{r['id']}").status_code == 204


def test_deleting_a_rep_deletes_its_subscription(ms, srv, api):
    email = "gone@contoso.com"
    register_user(ms, email)
    r = register(api, email)
    sub = subscription_of(ms, email)
    assert api.delete(f"/v1/reps/{r['id']}").status_code == 204
    assert sub.id not in ms.emulator.subscriptions
    resp = httpx.post(f"{srv.url}/webhooks/microsoft", json=notification(sub.id, sub.client_state))
    assert resp.status_code == 403


# --- sync faults and mapping -----------------------------------------------------------


def test_throttling_and_unavailable_are_retried(ms, srv, api):
    email = "faults@contoso.com"
    register_user(ms, email)
    r = register(api, email)
    wait_for(lambda: idle(api, r["id"]))
    for status, extra in ((429, {"retry_after": "0.3"}), (503, {}), (504, {})):
        calls = delta_calls(ms, email)
        ms.emulator.inject_fault(status, 1, endpoint=DELTA, **extra)
        meeting_event(ms, email, f"After {status}")
        wait_for(lambda s=status: by_title(api, r["id"], f"After {s}"))
        assert delta_calls(ms, email) >= calls + 2, "the failed call was retried"
    assert rep(api, r["id"])["status"] == "active"
    assert '"sync.microsoft.retry"' in srv.output()


def test_expired_delta_token_restarts_cleanly(ms, srv, api):
    email = "gone410@contoso.com"
    register_user(ms, email)
    r = register(api, email)
    keep = meeting_event(ms, email, "Kept")
    drop = meeting_event(ms, email, "Dropped")
    wait_for(lambda: by_title(api, r["id"], "Dropped") and by_title(api, r["id"], "Kept"))
    wait_for(lambda: idle(api, r["id"]))

    ms.emulator.expire_delta_tokens(email)
    with ms.emulator._lock:  # removed while no notification can tell us
        del ms.emulator.mailboxes[email].events[drop]
    meeting_event(ms, email, "Added")
    wait_for(lambda: by_title(api, r["id"], "Added"))
    wait_for(lambda: not by_title(api, r["id"], "Dropped"))
    assert by_title(api, r["id"], "Kept")
    assert keep in ms.emulator.mailboxes[email].events
    assert '"sync.cursor_expired"' in srv.output(), "Graph answered 410 and sync restarted"
    assert rep(api, r["id"])["status"] == "active"


def test_series_occurrences_and_windows_zones(ms, srv, api):
    email = "series@contoso.com"
    register_user(ms, email, honour_prefer_timezone=False)
    r = register(api, email)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=14, minute=0, second=0, microsecond=0
    )
    master = ms.emulator.add_event(
        email,
        subject="Weekly Fabrikam",
        start=start,
        end=start + timedelta(hours=1),
        time_zone="W. Europe Standard Time",
        recurrence=Recurrence("weekly", 3),
        attendees=[("dana@fabrikam.com", "required", "none")],
    )
    wait_for(lambda: len(by_title(api, r["id"], "Weekly Fabrikam")) == 3)
    ms.emulator.modify_occurrence(
        email,
        master,
        start + timedelta(weeks=1),
        start=start + timedelta(weeks=1, hours=2),
        end=start + timedelta(weeks=1, hours=3),
    )
    ms.emulator.delete_occurrence(email, master, start + timedelta(weeks=2))
    want = [start, start + timedelta(weeks=1, hours=2)]

    def starts() -> list[datetime]:
        return sorted(
            datetime.fromisoformat(m["start"]).astimezone(UTC)
            for m in by_title(api, r["id"], "Weekly Fabrikam")
        )

    wait_for(lambda: starts() == want)
    assert len({m["event_id"] for m in by_title(api, r["id"], "Weekly Fabrikam")}) == 2


# --- a refused mailbox does not fail the service ----------------------------------------


@pytest.mark.parametrize("option", [{"allowed": False}, {"rest_enabled": False}])
def test_refused_mailbox_is_marked_auth_failed(ms, srv, api, option):
    email = f"refused-{next(iter(option))}@contoso.com"
    register_user(ms, email, **option)
    r = register(api, email)
    assert r["status"] == "auth_failed", r
    detail = r["status_detail"]
    assert detail and ("ErrorAccessDenied" in detail or "MailboxNotEnabledForRESTAPI" in detail)
    assert r["calendar"]["watch"] == []
    assert api.get("/healthz").status_code == 200
    ok = "ok-" + email
    register_user(ms, ok)
    assert register(api, ok)["status"] == "active", "other reps are unaffected"
    assert rep(api, r["id"])["status"] == "auth_failed"


# --- counter-proposals ------------------------------------------------------------------


def test_a_declined_follow_up_with_a_new_time_is_a_counter_proposal(ms, srv, api, nudges):
    """Graph's attendee ``proposedNewTime`` (here with a decline): the follow-up shows
    "proposed", the rep gets counter_proposed with that time first — not follow_up_declined."""
    email = "paula@contoso.com"
    register_user(ms, email)
    r = register(api, email)
    meeting_event(ms, email, "Fabrikam pricing", ends_in=1)
    m = wait_for(lambda: next(iter(by_title(api, r["id"], "Fabrikam pricing")), None))
    now = datetime.now(UTC).replace(microsecond=0)
    fu_start = now + timedelta(days=2)
    fu_id = ms.emulator.add_event(
        email,
        subject="Fabrikam next step",
        start=fu_start,
        end=fu_start + timedelta(minutes=30),
        attendees=[("dana@fabrikam.com", "required", "none")],
    )
    wait_for(lambda: api.get(f"/v1/meetings/{m['id']}").json()["state"] == "invited")
    proposed = fu_start + timedelta(days=1, hours=2)
    ms.emulator.propose_new_time(
        email,
        fu_id,
        "dana@fabrikam.com",
        proposed,
        proposed + timedelta(minutes=30),
        response="declined",
    )
    wait_for(
        lambda: (
            api.get(f"/v1/meetings/{m['id']}").json()["follow_up"]["responses"]
            == {"dana@fabrikam.com": "proposed"}
        )
    )
    assert api.get(f"/v1/meetings/{m['id']}").json()["state"] == "invited"
    nudge = wait_for(
        lambda: next(
            (
                n
                for n in nudges.nudges
                if (n.get("meeting") or {}).get("id") == m["id"]
                and n.get("kind") == "counter_proposed"
            ),
            None,
        )
    )
    first = nudge["suggested_slots"][0]
    assert datetime.fromisoformat(first["start"]) == proposed
    assert datetime.fromisoformat(first["end"]) == proposed + timedelta(minutes=30)
    assert nudge["proposal"]["attendee"] == "dana@fabrikam.com"
    assert nudge["proposal"]["free"] is True
    assert "free on your calendar" in nudge["message"]
    kinds = [n.get("kind") for n in nudges.nudges if (n.get("meeting") or {}).get("id") == m["id"]]
    assert "follow_up_declined" not in kinds
    assert kinds.count("counter_proposed") == 1


# --- one meeting on two reps' calendars -------------------------------------------------------


def test_the_ae_and_the_se_in_one_call_are_one_meeting_nudged_once(ms, srv, api, nudges):
    """The same iCalUId on two registered mailboxes: one meeting for the rule, the
    organiser (the AE) is nudged, both see the same state."""
    se_email, ae_email = "sven@contoso.com", "ada@contoso.com"
    register_user(ms, se_email)
    register_user(ms, ae_email)
    se = register(api, se_email)  # registered first; the AE organises, so the AE is nudged
    ae = register(api, ae_email)
    now = datetime.now(UTC)
    event_id = ms.emulator.add_event(
        ae_email,
        subject="Fabrikam architecture review",
        start=now - timedelta(minutes=30),
        end=now + timedelta(seconds=1),
        attendees=[(se_email, "required", "none"), ("dana@fabrikam.com", "required", "none")],
    )
    mailbox, ev = ms.emulator.event(ae_email, event_id)
    ms.emulator.deliver_invitations(mailbox, ev)
    title = "Fabrikam architecture review"
    wait_for(lambda: by_title(api, se["id"], title) and by_title(api, ae["id"], title))
    nudge = wait_for(
        lambda: next(
            (
                n
                for n in nudges.nudges
                if n.get("kind") == "no_next_step"
                and (n.get("meeting") or {}).get("title") == title
            ),
            None,
        )
    )
    assert (nudge["kind"], nudge["rep"]["email"]) == ("no_next_step", ae_email)
    wait_for(
        lambda: (
            by_title(api, se["id"], title)[0]["state"]
            == by_title(api, ae["id"], title)[0]["state"]
            == "needs_next_step"
        )
    )
    produced = {
        rep_id: [
            n["kind"]
            for n in api.get("/v1/nudges", params={"rep_id": rep_id}).json()["items"]
            if n["meeting"]["title"] == title
        ]
        for rep_id in (ae["id"], se["id"])
    }
    assert produced == {ae["id"]: ["no_next_step"], se["id"]: []}
