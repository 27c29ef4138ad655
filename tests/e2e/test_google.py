"""Google reps watched for real: `nextstep serve` as a process against the Google emulator.

One emulator and one serve process for the module; each test uses reps of its own, so
counts read from the emulator are filtered by the rep (the impersonated subject).
Channel renewal, lost notifications and restarts need their own processes:
``test_google_channels.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.harness import setup_google
from tests.emulators.google.serving import google_serve_env, meetings, push, register
from tests.helpers.receiver import Receiver
from tests.helpers.serve import Server, serve, wait_for

SECRET = "s3cret"


@dataclass
class Stack:
    emu: GoogleEmulator
    srv: Server
    api: httpx.Client
    receiver: Receiver

    def lists(self, email: str) -> int:
        """events.list calls made for ``email`` so far."""
        return sum(1 for r in self.emu.requests_for("events.list") if r.subject == email)

    def channel(self, rep_id: str) -> str:
        watch = self.api.get(f"/v1/reps/{rep_id}").json()["calendar"]["watch"]
        assert len(watch) == 1, watch
        return str(watch[0]["channel_id"])

    def idle(self, rep_id: str) -> bool:
        cal = self.api.get(f"/v1/reps/{rep_id}").json()["calendar"]
        return not cal["sync_pending"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("google")
    emu = GoogleEmulator.start()
    receiver = Receiver(SECRET)
    try:
        key = setup_google(emu, tmp).key_file
        env = google_serve_env(
            emu,
            key,
            tmp,
            NEXTSTEP_NUDGE_WEBHOOK_URL=receiver.url,
            NEXTSTEP_NUDGE_WEBHOOK_SECRET=SECRET,
        )
        with serve(env, tmp) as srv, srv.client() as api:
            yield Stack(emu, srv, api, receiver)
    finally:
        receiver.close()
        emu.stop()


def _rep(stack: Stack, email: str) -> dict:
    stack.emu.add_user(email)
    rep = register(stack.api, email)
    assert rep["status"] == "active", rep
    return rep


def test_a_meeting_goes_from_the_calendar_to_secured_on_google_alone(stack: Stack) -> None:
    emu, api = stack.emu, stack.api
    rep = _rep(stack, "anne@corp.test")
    assert len(rep["calendar"]["watch"]) == 1, "the calendar is watched right away"
    (live,) = emu.live_channels("anne@corp.test")
    assert live.address == f"{stack.srv.url}/webhooks/google"
    assert live.token and len(live.token) >= 32

    now = datetime.now(UTC)
    event_id = emu.create_event(
        "anne@corp.test",
        summary="Acme discovery",
        start=now - timedelta(minutes=30),
        end=now + timedelta(seconds=1),
        attendees=["dana@acme.test", "bob@corp.test"],
    )
    meeting = wait_for(lambda: meetings(api, rep["id"]).get(event_id))
    assert meeting["account_domain"] == "acme.test"
    assert meeting["external_attendees"] == ["dana@acme.test"]

    nudge = wait_for(
        lambda: next(
            (
                n
                for n in stack.receiver.nudges
                if (n.get("meeting") or {}).get("id") == meeting["id"]
            ),
            None,
        )
    )
    assert nudge["kind"] == "no_next_step"
    assert nudge["suggested_slots"], nudge
    assert emu.calls["freebusy.query"] >= 1, "slots come from freeBusy"

    slot = nudge["suggested_slots"][0]
    sched = api.post(f"/v1/meetings/{meeting['id']}/schedule", json={"start": slot["start"]})
    assert sched.status_code == 201, sched.text
    assert sched.json()["state"] == "invited"
    follow_up = sched.json()["follow_up"]["event_id"]
    (insert,) = [r for r in emu.requests_for("events.insert") if r.subject == "anne@corp.test"]
    assert insert.query["sendUpdates"] == ["all"]
    # The prospect and the colleague who attended the first meeting; a Meet requested.
    assert {a["email"] for a in insert.body["attendees"]} == {"dana@acme.test", "bob@corp.test"}
    assert insert.query["conferenceDataVersion"] == ["1"]
    create = insert.body["conferenceData"]["createRequest"]
    assert create["conferenceSolutionKey"] == {"type": "hangoutsMeet"} and create["requestId"]
    assert "Acme discovery" in insert.body["description"]
    assert "work for you" not in insert.body["description"]
    stored = emu.calendars["anne@corp.test"].events[follow_up].body
    assert stored["hangoutLink"].startswith("https://meet.google.com/")
    assert (follow_up, "all") in emu.sent_updates
    assert follow_up in emu.calendars["anne@corp.test"].events

    emu.set_response("anne@corp.test", follow_up, "dana@acme.test", "accepted")
    secured = wait_for(
        lambda: (m := api.get(f"/v1/meetings/{meeting['id']}").json())["state"] == "secured" and m
    )
    assert secured["follow_up"]["responses"] == {"dana@acme.test": "accepted"}
    assert stack.receiver.bad_signatures == 0


def test_forged_notifications_are_refused_and_change_nothing(stack: Stack) -> None:
    emu, api = stack.emu, stack.api
    rep = _rep(stack, "forge@corp.test")
    channel_id = stack.channel(rep["id"])
    live = emu.channels[channel_id]
    emu.hold_notifications()  # the change is on the calendar, but Google has not told us
    try:
        event_id = emu.create_event(
            "forge@corp.test",
            summary="Hidden",
            start=datetime.now(UTC) + timedelta(days=1),
            end=datetime.now(UTC) + timedelta(days=1, hours=1),
            attendees=["x@acme.test"],
        )
        before = stack.lists("forge@corp.test")
        rep_before = api.get(f"/v1/reps/{rep['id']}").json()
        url = f"{stack.srv.url}/webhooks/google"
        with httpx.Client(timeout=10) as client:
            forged = {
                "wrong token": dict(
                    channel_id=channel_id, token="not-the-token", resource_id=live.resource_id
                ),
                "no token": dict(channel_id=channel_id, token=None, resource_id=live.resource_id),
                "unknown channel": dict(
                    channel_id="00000000-0000-0000-0000-000000000000",
                    token=live.token,
                    resource_id=live.resource_id,
                ),
                "wrong resource id": dict(
                    channel_id=channel_id, token=live.token, resource_id="someothercalendar00"
                ),
            }
            for number, (what, headers) in enumerate(forged.items(), start=100):
                answer = push(client, url, number=number, **headers)  # type: ignore[arg-type]
                assert 400 <= answer.status_code < 500, (what, answer.status_code)
            malformed = client.post(url, headers={"X-Goog-Channel-ID": channel_id})
            assert 400 <= malformed.status_code < 500
        assert api.get(f"/v1/reps/{rep['id']}").json() == rep_before, "no sync was asked"
        assert stack.lists("forge@corp.test") == before
        assert event_id not in meetings(api, rep["id"])
    finally:
        emu.release_notifications()
    # the genuine notification still works afterwards
    wait_for(lambda: event_id in meetings(api, rep["id"]))


def test_duplicated_and_reordered_notifications_converge(stack: Stack) -> None:
    emu, api = stack.emu, stack.api
    email = "dup@corp.test"
    rep = _rep(stack, email)
    start = datetime.now(UTC) + timedelta(days=2)
    emu.duplicate_next_notifications(1)
    first = emu.create_event(
        email, summary="Dup", start=start, end=start + timedelta(hours=1), attendees=["x@acme.test"]
    )
    wait_for(lambda: first in meetings(api, rep["id"]))
    copies = wait_for(
        lambda: (
            [
                d
                for d in emu.deliveries
                if d.channel_id == stack.channel(rep["id"])
                and d.headers["X-Goog-Resource-State"] == "exists"
            ]
            if len([d for d in emu.deliveries if d.channel_id == stack.channel(rep["id"])]) >= 3
            else None
        )
    )
    assert len(copies) == 2 and copies[0].headers == copies[1].headers
    assert all(d.status == 200 for d in copies), "a duplicate is acknowledged too"

    emu.hold_notifications()
    second = emu.create_event(
        email,
        summary="Two",
        start=start + timedelta(hours=2),
        end=start + timedelta(hours=3),
        attendees=["y@acme.test"],
    )
    emu.move_event(email, second, start + timedelta(hours=4), start + timedelta(hours=5))
    emu.cancel_event(email, first)
    emu.release_notifications(reverse=True)  # newest first
    wait_for(lambda: set(meetings(api, rep["id"])) == {second})
    moved = meetings(api, rep["id"])[second]
    assert datetime.fromisoformat(moved["start"]) == start + timedelta(hours=4)
    wait_for(lambda: stack.idle(rep["id"]))


def test_a_burst_is_one_sync_in_flight_plus_at_most_one_after(stack: Stack) -> None:
    emu, api = stack.emu, stack.api
    email = "burst@corp.test"
    rep = _rep(stack, email)
    # every calendar idle: the one call held at the gate below is this rep's sync
    wait_for(
        lambda: all(not r["calendar"]["sync_pending"] for r in api.get("/v1/reps").json()["items"])
    )
    before = stack.lists(email)
    start = datetime.now(UTC) + timedelta(days=3)
    emu.block("events.list")
    try:
        emu.create_event(
            email,
            summary="c0",
            start=start,
            end=start + timedelta(minutes=30),
            attendees=["x@acme.test"],
        )
        wait_for(lambda: emu.waiting["events.list"] == 1)  # the sync is in flight, held
        for i in range(1, 30):
            emu.update_event(email, next(iter(emu.calendars[email].events)), summary=f"c{i}")
        # every notification was acknowledged while the sync was still held
        channel = stack.channel(rep["id"])
        wait_for(
            lambda: (
                sum(
                    1
                    for d in emu.deliveries
                    if d.channel_id == channel
                    and d.status == 200
                    and d.headers["X-Goog-Resource-State"] == "exists"
                )
                == 30
            )
        )
        assert emu.waiting["events.list"] == 1
    finally:
        emu.unblock("events.list")
    wait_for(
        lambda: (
            stack.idle(rep["id"])
            and next(iter(meetings(api, rep["id"]).values()))["title"] == "c29"
        )
    )
    assert stack.lists(email) - before == 2


def test_recurring_instances_and_cancellations(stack: Stack) -> None:
    emu, api = stack.emu, stack.api
    email = "rec@corp.test"
    rep = _rep(stack, email)
    first = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=15, minute=0, second=0, microsecond=0
    )
    series = emu.create_event(
        email,
        summary="Weekly sync",
        start=first,
        end=first + timedelta(minutes=30),
        attendees=["p@acme.test"],
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"],
    )
    got = wait_for(lambda: m if len(m := meetings(api, rep["id"])) == 3 else None)
    assert all(eid.startswith(f"{series}_") for eid in got)
    second = first + timedelta(weeks=1)
    cancelled = emu.cancel_instance(email, series, second)
    wait_for(
        lambda: cancelled not in meetings(api, rep["id"]) and len(meetings(api, rep["id"])) == 2
    )
    emu.cancel_event(email, series)
    wait_for(lambda: meetings(api, rep["id"]) == {})


def test_410_during_incremental_sync_converges_with_a_clean_full_resync(stack: Stack) -> None:
    emu, api = stack.emu, stack.api
    email = "gone@corp.test"
    rep = _rep(stack, email)
    start = datetime.now(UTC) + timedelta(days=1)
    keep = emu.create_event(
        email,
        summary="Keep",
        start=start,
        end=start + timedelta(hours=1),
        attendees=["a@acme.test"],
    )
    drop = emu.create_event(
        email,
        summary="Drop",
        start=start + timedelta(hours=2),
        end=start + timedelta(hours=3),
        attendees=["b@acme.test"],
    )
    wait_for(lambda: set(meetings(api, rep["id"])) == {keep, drop})
    wait_for(lambda: stack.idle(rep["id"]))

    emu.invalidate_sync_tokens(email)
    emu.drop_next_notifications(1)  # the cancellation is only seen through the full resync
    emu.cancel_event(email, drop)
    added = emu.create_event(
        email,
        summary="New",
        start=start + timedelta(hours=4),
        end=start + timedelta(hours=5),
        attendees=["c@acme.test"],
    )
    wait_for(lambda: set(meetings(api, rep["id"])) == {keep, added})
    assert rep["id"] in "".join(
        line for line in stack.srv.output().splitlines() if "sync.cursor_expired" in line
    ), "the 410 was met"
    lists = [r for r in emu.requests_for("events.list") if r.subject == email]
    incr = [i for i, r in enumerate(lists) if "syncToken" in r.query]
    full_after = [r for r in lists[incr[-1] :] if "timeMin" in r.query]
    assert full_after, "the 410 was followed by a full listing"
    assert "syncToken" not in full_after[0].query and "pageToken" not in full_after[0].query
    wait_for(lambda: stack.idle(rep["id"]))
    assert api.get(f"/v1/reps/{rep['id']}").json()["status"] == "active"


def test_delegation_refused_marks_the_rep_while_others_keep_working(stack: Stack) -> None:
    emu, api = stack.emu, stack.api
    # Not a user of the Workspace domain: the token endpoint answers invalid_grant.
    refused = api.post(
        "/v1/reps", json={"email": "ghost@corp.test", "provider": "google", "timezone": "UTC"}
    )
    assert refused.status_code == 201, refused.text
    ghost = api.get(f"/v1/reps/{refused.json()['id']}").json()
    assert ghost["status"] == "auth_failed"
    assert "invalid_grant" in ghost["status_detail"] or "Invalid email" in ghost["status_detail"]
    assert ghost["calendar"]["watch"] == []

    rep = _rep(stack, "works@corp.test")
    start = datetime.now(UTC) + timedelta(days=1)
    event_id = emu.create_event(
        "works@corp.test",
        summary="Still fine",
        start=start,
        end=start + timedelta(hours=1),
        attendees=["q@acme.test"],
    )
    wait_for(lambda: event_id in meetings(api, rep["id"]))
    assert api.get("/healthz").status_code == 200
    assert api.get(f"/v1/reps/{ghost['id']}").json()["status"] == "auth_failed"


def test_rate_limits_and_server_errors_are_retried(stack: Stack) -> None:
    emu, api = stack.emu, stack.api
    email = "busy@corp.test"
    rep = _rep(stack, email)
    wait_for(lambda: stack.idle(rep["id"]))
    emu.fail_next(1, 403, "rateLimitExceeded", method="events.list")
    emu.fail_next(1, 429, "rateLimitExceeded", method="events.list")
    emu.fail_next(1, 503, "backendError", method="events.list")
    start = datetime.now(UTC) + timedelta(days=1)
    event_id = emu.create_event(
        email,
        summary="Retry",
        start=start,
        end=start + timedelta(hours=1),
        attendees=["r@acme.test"],
    )
    wait_for(lambda: event_id in meetings(api, rep["id"]))
    assert not emu.faults
    assert api.get(f"/v1/reps/{rep['id']}").json()["status"] == "active"


def test_deleting_a_rep_stops_its_channel(stack: Stack) -> None:
    emu, api = stack.emu, stack.api
    email = "bye@corp.test"
    rep = _rep(stack, email)
    channel_id = stack.channel(rep["id"])
    assert api.delete(f"/v1/reps/{rep['id']}").status_code == 204
    assert emu.channels[channel_id].stopped
    assert emu.live_channels(email) == []
    stale = emu.send_stale_notification(channel_id)
    assert stale.wait(5)
    last = [d for d in emu.deliveries if d.channel_id == channel_id][-1]
    assert last.status is not None and 400 <= last.status < 500


def test_one_click_sends_the_invitation_and_a_decline_gets_it_moved(stack: Stack) -> None:
    """The rep's click goes through events.insert (Meet requested, colleague invited); after
    the prospect declines, the next nudge's click moves the same event with events.patch."""
    emu, api = stack.emu, stack.api
    email = "clicks@corp.test"
    rep = _rep(stack, email)
    now = datetime.now(UTC)
    event_id = emu.create_event(
        email,
        summary="Globex discovery",
        start=now - timedelta(minutes=30),
        end=now + timedelta(seconds=1),
        attendees=["hank@globex.test", "bob@corp.test"],
    )
    meeting = wait_for(lambda: meetings(api, rep["id"]).get(event_id))
    nudge = wait_for(
        lambda: next(
            (
                n
                for n in stack.receiver.nudges
                if (n.get("meeting") or {}).get("id") == meeting["id"]
            ),
            None,
        )
    )
    send = nudge["actions"][0]
    assert send["kind"] == "send_invite" and send["url"].startswith(stack.srv.url)
    inserts = lambda: [r for r in emu.requests_for("events.insert") if r.subject == email]  # noqa: E731
    page = httpx.get(send["url"])
    assert page.status_code == 200 and "Globex discovery" in page.text
    assert inserts() == [], "GET sends nothing"

    done = httpx.post(send["url"])
    assert done.status_code == 200 and "The invite is sent." in done.text
    (insert,) = inserts()
    assert insert.query["sendUpdates"] == ["all"] and insert.query["conferenceDataVersion"] == ["1"]
    assert {a["email"] for a in insert.body["attendees"]} == {"hank@globex.test", "bob@corp.test"}
    assert "meet.google.com" in done.text, "the result page shows the video link"
    follow_up = insert.body["id"]
    wait_for(lambda: api.get(f"/v1/meetings/{meeting['id']}").json()["state"] == "invited")

    emu.set_response(email, follow_up, "hank@globex.test", "declined")
    declined = wait_for(
        lambda: next(
            (
                n
                for n in stack.receiver.nudges
                if (n.get("meeting") or {}).get("id") == meeting["id"]
                and n["kind"] == "follow_up_declined"
            ),
            None,
        )
    )
    again = declined["actions"][0]
    moved = httpx.post(again["url"])
    assert moved.status_code == 200 and "The follow-up is moved." in moved.text, moved.text
    assert len(inserts()) == 1, "never a second follow-up"
    (patch,) = [r for r in emu.requests_for("events.patch") if r.subject == email]
    assert patch.path.endswith(f"/events/{follow_up}") and patch.query["sendUpdates"] == ["all"]
    stored = emu.calendars[email].events[follow_up].body
    assert stored["start"]["dateTime"].startswith(again["slot"]["start"][:16])
    hank = next(p for p in stored["attendees"] if p["email"] == "hank@globex.test")
    assert hank["responseStatus"] == "needsAction", "a new time asks the guest again"
    wait_for(lambda: api.get(f"/v1/meetings/{meeting['id']}").json()["state"] == "invited")
