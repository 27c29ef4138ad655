"""Black-box acceptance of CONTRACT.md (v1 + v2 additions), as written.

One `nextstep serve` for the module, on the sandbox with a trial clock, driven over HTTP
only: the tests run in order and share one scripted fortnight (a Paris rep on the default
policy — one working day to invite — and one on a second policy — two working hours).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import stripe

from tests.helpers.receiver import Receiver
from tests.helpers.serve import serve

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # Friday 09:00 in Paris
SECRET = "whsec_acceptance"

POLICY = """\
policies:
  - name: one-day
    clock: business
    invite_within: P1D
    accept_within: P1D
    horizon: P14D
    follow_up_duration: PT30M
    escalate_after: P5D
    hold: true
    stages: [prospect]
  - name: two-hours
    clock: business
    invite_within: PT2H
    accept_within: P1D
    horizon: P14D
    follow_up_duration: PT30M
    escalate_after: P5D
    hold: true
    stages: [prospect]
  - name: no-video
    invite_within: PT2H
    accept_within: P2D
    horizon: P14D
    follow_up_duration: PT30M
    escalate_after: P5D
    video: false
    stages: [prospect]
  - name: customers
    invite_within: PT1H
    accept_within: P2D
    horizon: P14D
    follow_up_duration: PT30M
    escalate_after: P5D
    stages: [customer]
"""

ANNE = "anne@seller.io"
BOB = "bob@seller.io"


class World:
    def __init__(self, api: httpx.Client, public_url: str, receiver: Receiver) -> None:
        self.api, self.public_url, self.receiver = api, public_url, receiver
        self.reps: dict[str, str] = {}
        self.acme_follow_up = ""

    def now(self) -> datetime:
        return parse(self.api.get("/sandbox/clock").json()["now"])

    def clock(self, to: datetime) -> None:
        r = self.api.post("/sandbox/clock", json={"to": to.isoformat()})
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"now"}
        assert parse(r.json()["now"]) == to

    def event(self, cal: str, **body: Any) -> dict[str, Any]:
        r = self.api.post(f"/sandbox/calendars/{cal}/events", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def events(self, cal: str) -> list[dict[str, Any]]:
        r = self.api.get(f"/sandbox/calendars/{cal}/events")
        assert r.status_code == 200, r.text
        body = r.json()
        return body["items"] if isinstance(body, dict) else body

    def live(self, cal: str) -> list[dict[str, Any]]:
        """The calendar's events that are not cancelled (a deleted one may stay listed,
        cancelled, as providers list them)."""
        return [e for e in self.events(cal) if e["status"] != "cancelled"]

    def meeting(self, title: str) -> dict[str, Any]:
        items = self.api.get("/v1/meetings").json()["items"]
        return next(m for m in items if m["title"] == title)

    def nudges(self, title: str, kind: str | None = None) -> list[dict[str, Any]]:
        items = self.api.get("/v1/nudges").json()["items"]
        return [
            n
            for n in items
            if (n.get("meeting") or {}).get("title") == title and kind in (None, n["kind"])
        ]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


@pytest.fixture(scope="module")
def world(tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("acceptance")
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    receiver = Receiver()
    env = {
        "NEXTSTEP_SANDBOX": "true",
        "NEXTSTEP_CLOCK": START.isoformat().replace("+00:00", "Z"),
        "NEXTSTEP_INTERNAL_DOMAINS": "seller.io",
        "NEXTSTEP_POLICY_FILE": str(policy),
        "NEXTSTEP_NUDGE_WEBHOOK_URL": receiver.url,
        "NEXTSTEP_NUDGE_WEBHOOK_SECRET": SECRET,
    }
    try:
        with serve(env, tmp) as srv, srv.client() as api:
            yield World(api, srv.url, receiver)
    finally:
        receiver.close()


# --- sandbox calendar routes --------------------------------------------------------


def test_sandbox_event_fields_move_and_delete(world: World) -> None:
    body = {
        "event_id": "weekly-1",
        "title": "Weekly sync",
        "start": paris(2026, 11, 18, 10).isoformat(),
        "end": paris(2026, 11, 18, 11).isoformat(),
        "all_day": False,
        "status": "confirmed",
        "event_type": "default",
        "organizer_email": "zed@zeta.com",
        "rep_response": "accepted",
        "attendees": [
            {"email": "zed@zeta.com", "response": "accepted"},
            {"email": "room-1@seller.io", "response": "accepted", "is_resource": True},
        ],
        "recurring_event_id": "weekly",
        "ical_uid": "weekly-uid@zeta.com",
        "time_zone": "America/Chicago",
    }
    created = world.event("carl@seller.io", **body)
    for key in (
        "event_id",
        "title",
        "all_day",
        "status",
        "event_type",
        "organizer_email",
        "rep_response",
        "recurring_event_id",
        "ical_uid",
        "time_zone",
    ):
        assert created[key] == body[key], key
    assert parse(created["start"]) == parse(body["start"])
    assert parse(created["end"]) == parse(body["end"])
    by_mail = {a["email"]: a for a in created["attendees"]}
    assert by_mail["room-1@seller.io"]["is_resource"] is True
    assert by_mail["zed@zeta.com"]["is_resource"] is False
    assert by_mail["zed@zeta.com"]["response"] == "accepted"

    listed = {e["event_id"]: e for e in world.events("carl@seller.io")}
    assert listed["weekly-1"]["title"] == "Weekly sync"

    r = world.api.post(
        "/sandbox/calendars/carl@seller.io/events/weekly-1/responses",
        json={"attendee": "zed@zeta.com", "response": "tentative"},
    )
    assert r.status_code == 200, r.text
    moved_to = paris(2026, 11, 19, 14)
    r = world.api.post(
        "/sandbox/calendars/carl@seller.io/events/weekly-1/move",
        params={"start": moved_to.isoformat()},
    )
    assert r.status_code == 200, r.text
    listed = {e["event_id"]: e for e in world.events("carl@seller.io")}
    assert parse(listed["weekly-1"]["start"]) == moved_to
    assert parse(listed["weekly-1"]["end"]) == moved_to + timedelta(hours=1)
    att = {a["email"]: a for a in listed["weekly-1"]["attendees"]}
    assert att["zed@zeta.com"]["response"] == "tentative"

    bad = world.api.post(
        "/sandbox/calendars/carl@seller.io/events/weekly-1/responses",
        json={"attendee": "zed@zeta.com", "response": "proposed"},
    )
    assert bad.status_code == 422, "proposed needs proposed_start and proposed_end"
    assert "proposed_start" in bad.text

    assert world.api.delete("/sandbox/calendars/carl@seller.io/events/weekly-1").status_code == 204
    assert "weekly-1" not in {e["event_id"] for e in world.live("carl@seller.io")}


# --- trial clock ----------------------------------------------------------------------


def test_trial_clock_reads_settles_and_refuses_backwards(world: World) -> None:
    r = world.api.get("/sandbox/clock")
    assert r.status_code == 200
    assert set(r.json()) == {"now"}
    assert parse(r.json()["now"]) == START
    world.clock(START)  # `to` equal to now settles
    back = world.api.post("/sandbox/clock", json={"to": (START - timedelta(seconds=1)).isoformat()})
    assert back.status_code == 409
    assert back.json()["detail"]
    assert parse(world.api.get("/sandbox/clock").json()["now"]) == START


# --- reps, accounts, policies -----------------------------------------------------------


def test_reps_with_policies_and_accounts(world: World) -> None:
    api = world.api
    anne = api.post(
        "/v1/reps", json={"email": ANNE, "provider": "sandbox", "timezone": "Europe/Paris"}
    )
    assert anne.status_code == 201, anne.text
    assert anne.json()["id"]
    assert anne.json()["working_hours"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "18:00",
    }
    bob = api.post(
        "/v1/reps",
        json={
            "email": BOB,
            "provider": "sandbox",
            "timezone": "Europe/Paris",
            "policy": "two-hours",
            "manager_email": "boss@seller.io",
        },
    )
    assert bob.status_code == 201, bob.text
    assert bob.json()["policy"] == "two-hours"
    unknown = api.post(
        "/v1/reps",
        json={
            "email": "x@seller.io",
            "provider": "sandbox",
            "timezone": "Europe/Paris",
            "policy": "nope",
        },
    )
    assert unknown.status_code == 422 and "policy" in unknown.text
    world.reps = {ANNE: anne.json()["id"], BOB: bob.json()["id"]}

    for domain, body in {
        "acme.com": {"name": "Acme", "timezone": "America/New_York"},
        "initech.com": {"name": "Initech", "timezone": "Europe/London"},
        "umbrella.com": {"name": "Umbrella", "stage": "customer", "timezone": "Europe/Paris"},
        "hooli.com": {"name": "Hooli"},
    }.items():
        r = api.put(f"/v1/accounts/{domain}", json=body)
        assert r.status_code == 200, r.text

    acme = api.get("/v1/accounts/acme.com").json()
    assert (acme["timezone"], acme["timezone_source"]) == ("America/New_York", "crm")


def test_friday_meetings_and_calendar_timezone(world: World) -> None:
    # Anne: ends Friday 17:00, P1D of working days -> Monday 17:00.
    world.event(
        ANNE,
        event_id="acme-friday",
        title="Acme Friday",
        start=paris(2026, 11, 20, 16).isoformat(),
        end=paris(2026, 11, 20, 17).isoformat(),
        attendees=[
            {"email": "dana@acme.com", "response": "accepted"},
            {"email": "carl@seller.io", "response": "accepted"},
        ],
    )
    # Bob: ends Friday 17:30 (working day to 18:00), PT2H -> Monday 10:30.
    world.event(
        BOB,
        event_id="initech-friday",
        title="Initech Friday",
        start=paris(2026, 11, 20, 16, 30).isoformat(),
        end=paris(2026, 11, 20, 17, 30).isoformat(),
        attendees=[{"email": "ivy@initech.com", "response": "accepted"}],
    )
    # A customer: the "customers" policy's.
    world.event(
        ANNE,
        title="Umbrella QBR",
        start=paris(2026, 11, 20, 10).isoformat(),
        end=paris(2026, 11, 20, 11).isoformat(),
        attendees=[{"email": "eve@umbrella.com", "response": "accepted"}],
    )
    # Organised by the prospect's own person in their zone.
    world.event(
        ANNE,
        title="Globex intro",
        start=paris(2026, 11, 20, 9, 30).isoformat(),
        end=paris(2026, 11, 20, 9, 45).isoformat(),
        organizer_email="pat@globex.com",
        time_zone="America/Los_Angeles",
        attendees=[
            {"email": "pat@globex.com", "response": "accepted"},
            {"email": ANNE, "response": "accepted"},
        ],
    )
    world.clock(START)  # settles: the pushes are synced
    assert world.meeting("Acme Friday")["state"] == "upcoming"
    globex = world.api.get("/v1/accounts/globex.com").json()
    assert (globex["timezone"], globex["timezone_source"]) == ("America/Los_Angeles", "calendar")

    world.clock(datetime(2026, 11, 20, 17, 0, tzinfo=UTC))  # Friday 18:00 Paris
    meeting = world.meeting("Acme Friday")
    assert meeting["state"] == "needs_next_step"
    for key in (
        "id",
        "rep_id",
        "event_id",
        "title",
        "start",
        "end",
        "account_domain",
        "external_attendees",
        "state",
        "follow_up",
    ):
        assert key in meeting, key
    assert meeting["event_id"] == "acme-friday"
    assert meeting["external_attendees"] == ["dana@acme.com"]
    assert meeting["follow_up"] is None


def test_business_time_windows(world: World) -> None:
    world.clock(datetime(2026, 11, 23, 9, 29, tzinfo=UTC))  # Monday 10:29 Paris
    assert world.nudges("Initech Friday") == []
    world.clock(datetime(2026, 11, 23, 9, 31, tzinfo=UTC))
    (bob,) = world.nudges("Initech Friday")
    assert bob["kind"] == "no_next_step"
    assert parse(bob["window"]["closed_at"]) == paris(2026, 11, 23, 10, 30)

    world.clock(datetime(2026, 11, 23, 15, 59, tzinfo=UTC))  # Monday 16:59 Paris
    assert world.nudges("Acme Friday") == []
    world.clock(datetime(2026, 11, 23, 16, 1, tzinfo=UTC))
    (anne,) = world.nudges("Acme Friday")
    assert anne["kind"] == "no_next_step"
    assert parse(anne["window"]["closed_at"]) == paris(2026, 11, 23, 17)
    assert world.receiver.of("no_next_step", "Acme Friday")
    # created_at follows the trial clock: decided when the window closed.
    closed = paris(2026, 11, 23, 17)
    assert closed <= parse(anne["created_at"]) <= closed + timedelta(minutes=1)
    # Slots: after the meeting, within the horizon, working days and hours of both sides
    # (Paris 09:00-18:00, New York 09:00-17:00), 30 minutes, free on the rep's calendar.
    new_york = ZoneInfo("America/New_York")
    assert anne["suggested_slots"]
    for slot in anne["suggested_slots"]:
        start, end = parse(slot["start"]), parse(slot["end"])
        assert end - start == timedelta(minutes=30)
        assert paris(2026, 11, 20, 17) <= start and end <= paris(2026, 12, 4, 17)
        for zone, last in ((PARIS, 18), (new_york, 17)):
            s_, e_ = start.astimezone(zone), end.astimezone(zone)
            assert s_.weekday() < 5 and s_.hour >= 9, (slot, zone)
            assert e_.hour < last or (e_.hour == last and e_.minute == 0), (slot, zone)
    assert anne["draft_invite"]["attendees"] == ["dana@acme.com"]
    assert anne["message"]
    # A customer's meeting: Anne's policy covers prospects only, so it follows the first
    # policy that covers customers (calendar time, PT1H: Friday 12:00 Paris).
    (qbr,) = world.nudges("Umbrella QBR")
    assert qbr["kind"] == "no_next_step"
    assert parse(qbr["window"]["closed_at"]) == paris(2026, 11, 20, 12)


def test_nudge_payload_and_actions(world: World) -> None:
    (nudge,) = world.receiver.of("no_next_step", "Initech Friday")
    for key in (
        "id",
        "kind",
        "created_at",
        "rep",
        "meeting",
        "suggested_slots",
        "draft_invite",
        "message",
        "actions",
    ):
        assert key in nudge, key
    assert set(nudge["rep"]) >= {"id", "email"} and nudge["rep"]["email"] == BOB
    assert set(nudge["meeting"]) >= {
        "id",
        "title",
        "start",
        "end",
        "account_domain",
        "external_attendees",
    }
    assert set(nudge["draft_invite"]) >= {"subject", "body", "attendees"}
    slots = nudge["suggested_slots"]
    assert slots
    for slot in slots:
        assert parse(slot["end"]) - parse(slot["start"]) == timedelta(minutes=30)
        start = parse(slot["start"]).astimezone(PARIS)
        assert start.weekday() < 5 and 9 <= start.hour < 18
    actions = nudge["actions"]
    kinds = [a["kind"] for a in actions]
    assert kinds.count("send_invite") == len(slots)
    assert kinds.count("snooze") == 1 and kinds.count("waive") == 1
    for a in actions:
        assert a["url"].startswith(world.public_url + "/"), a
        assert a["label"]
    invite_slots = [a["slot"] for a in actions if a["kind"] == "send_invite"]
    assert [(parse(s["start"]), parse(s["end"])) for s in invite_slots] == [
        (parse(s["start"]), parse(s["end"])) for s in slots
    ]


def test_hold_is_placed_at_the_first_slot(world: World) -> None:
    (nudge,) = world.nudges("Initech Friday")
    first = nudge["suggested_slots"][0]
    holds = [e for e in world.live(BOB) if e["title"].startswith("Hold:")]
    assert len(holds) == 1, holds
    (hold,) = holds
    assert hold["title"] == "Hold: follow-up with Initech"
    assert hold["attendees"] == [] or all(a["email"] == BOB for a in hold["attendees"])
    assert hold["status"] == "tentative"
    assert parse(hold["start"]) == parse(first["start"])


def test_action_get_changes_nothing_post_acts_once(world: World) -> None:
    (nudge,) = world.nudges("Initech Friday")
    # The last slot: the clock has passed the first ones since Monday 10:30.
    action = [a for a in nudge["actions"] if a["kind"] == "send_invite"][-1]
    before = world.events(BOB)
    page = httpx.get(action["url"], timeout=30)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "<form" in page.text.lower() and "post" in page.text.lower()
    assert "ivy@initech.com" in page.text
    assert "CET" in page.text and "GMT" in page.text, (
        "the slot in the rep's and the prospect's zone"
    )
    assert world.events(BOB) == before
    assert world.meeting("Initech Friday")["state"] == "needs_next_step"

    forged = action["url"][:-4] + ("AAAA" if not action["url"].endswith("AAAA") else "BBBB")
    for url in (forged, world.public_url + "/actions/not-a-token"):
        bad = httpx.get(url, timeout=30)
        assert 400 <= bad.status_code < 500, (url, bad.status_code)
        assert "text/html" in bad.headers["content-type"]
        bad = httpx.post(url, timeout=30)
        assert 400 <= bad.status_code < 500
    assert world.events(BOB) == before

    done = httpx.post(action["url"], timeout=30)
    assert done.status_code == 200, done.text
    meeting = world.meeting("Initech Friday")
    assert meeting["state"] == "invited"
    fu = meeting["follow_up"]
    assert parse(fu["start"]) == parse(action["slot"]["start"])
    assert fu["responses"] == {"ivy@initech.com": "needs_action"}
    after = world.events(BOB)
    follow_ups = [e for e in after if e["event_id"] == fu["event_id"]]
    assert len(follow_ups) == 1
    (created,) = follow_ups
    assert "ivy@initech.com" in {a["email"] for a in created["attendees"]}
    assert created["description"] and "Initech Friday" in created["description"]
    assert "work for you" not in created["description"].lower()
    assert created["video_link"]
    assert not [
        e for e in after if e["title"].startswith("Hold:") and e["status"] != "cancelled"
    ], "the hold is gone"

    again = httpx.post(action["url"], timeout=30)
    assert again.status_code in (200, 409), again.status_code
    assert world.events(BOB) == after
    assert world.meeting("Initech Friday")["follow_up"]["event_id"] == fu["event_id"]


def test_schedule_guards_and_idempotency(world: World) -> None:
    api = world.api
    meeting = world.meeting("Acme Friday")
    mid = meeting["id"]
    # Saturday: outside the rep's working time.
    saturday = paris(2026, 11, 28, 16)
    r = api.post(f"/v1/meetings/{mid}/schedule", json={"start": saturday.isoformat()})
    assert r.status_code == 409 and r.json()["detail"]
    # 10:00 Paris is 04:00 in New York: outside the prospect's working hours.
    r = api.post(
        f"/v1/meetings/{mid}/schedule", json={"start": paris(2026, 11, 25, 10).isoformat()}
    )
    assert r.status_code == 409 and r.json()["detail"]
    # Busy.
    world.event(
        ANNE,
        title="Dentist",
        start=paris(2026, 11, 25, 15).isoformat(),
        end=paris(2026, 11, 25, 16).isoformat(),
    )
    world.clock(datetime(2026, 11, 23, 16, 2, tzinfo=UTC))
    r = api.post(
        f"/v1/meetings/{mid}/schedule", json={"start": paris(2026, 11, 25, 15, 15).isoformat()}
    )
    assert r.status_code == 409 and r.json()["detail"]
    # In the past.
    r = api.post(
        f"/v1/meetings/{mid}/schedule", json={"start": paris(2026, 11, 23, 15).isoformat()}
    )
    assert r.status_code == 409 and r.json()["detail"]

    slot = paris(2026, 12, 2, 15)
    headers = {"Idempotency-Key": "acme-once"}
    first = api.post(
        f"/v1/meetings/{mid}/schedule", json={"start": slot.isoformat()}, headers=headers
    )
    assert first.status_code == 201, first.text
    assert first.json()["state"] == "invited"
    second = api.post(
        f"/v1/meetings/{mid}/schedule", json={"start": slot.isoformat()}, headers=headers
    )
    assert second.status_code == 201
    assert second.json() == first.json()
    fus = [e for e in world.events(ANNE) if e["title"] != "Dentist" and parse(e["start"]) == slot]
    assert len(fus) == 1
    assert {"dana@acme.com", "carl@seller.io"} <= {a["email"] for a in fus[0]["attendees"]}
    assert not [e for e in world.live(ANNE) if e["title"].startswith("Hold:")]

    # Waived: refused.
    world.event(
        ANNE,
        title="Hooli chat",
        start=paris(2026, 11, 23, 9).isoformat(),
        end=paris(2026, 11, 23, 9, 30).isoformat(),
        attendees=[{"email": "gil@hooli.com", "response": "accepted"}],
    )
    world.clock(datetime(2026, 11, 23, 16, 3, tzinfo=UTC))
    hooli = world.meeting("Hooli chat")
    account = api.get("/v1/accounts/hooli.com").json()
    assert (account["timezone"], account["timezone_source"]) == ("Europe/Paris", "rep")
    w = api.post(f"/v1/meetings/{hooli['id']}/waive", json={"reason": "not a fit"})
    assert w.status_code == 200 and w.json()["state"] == "waived"
    r = api.post(
        f"/v1/meetings/{hooli['id']}/schedule", json={"start": paris(2026, 11, 26, 10).isoformat()}
    )
    assert r.status_code == 409 and r.json()["detail"]


def test_saturday_decline_delivered_at_next_working_period(world: World) -> None:
    mid = world.meeting("Acme Friday")["id"]
    fu = world.api.get(f"/v1/meetings/{mid}").json()["follow_up"]
    world.clock(datetime(2026, 11, 28, 10, 0, tzinfo=UTC))  # Saturday 11:00 Paris
    r = world.api.post(
        f"/sandbox/calendars/{ANNE}/events/{fu['event_id']}/responses",
        json={"attendee": "dana@acme.com", "response": "declined"},
    )
    assert r.status_code == 200, r.text
    world.acme_follow_up = fu["event_id"]
    world.clock(datetime(2026, 11, 28, 10, 1, tzinfo=UTC))
    m = world.api.get(f"/v1/meetings/{mid}").json()
    assert m["state"] == "needs_next_step"
    assert world.nudges("Acme Friday", "follow_up_declined")
    world.clock(datetime(2026, 11, 30, 7, 59, tzinfo=UTC))
    assert world.receiver.of("follow_up_declined", "Acme Friday") == []
    world.clock(datetime(2026, 11, 30, 8, 1, tzinfo=UTC))  # Monday 09:01 Paris
    assert len(world.receiver.of("follow_up_declined", "Acme Friday")) == 1
    (declined,) = world.nudges("Acme Friday", "follow_up_declined")
    delivered = parse(declined["deliveries"][0]["delivered_at"])
    nine = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert nine <= delivered <= nine + timedelta(minutes=1)


def test_crm_events_and_stripe_signatures(world: World) -> None:
    changes = world.receiver.of_type("meeting.state_changed")
    assert changes
    for ev in changes:
        assert set(ev) >= {"type", "id", "occurred_at", "meeting", "previous_state"}
    mid = world.meeting("Acme Friday")["id"]
    mine = [e for e in changes if e["meeting"]["id"] == mid]
    pairs = [(e["previous_state"], e["meeting"]["state"]) for e in mine]
    assert ("upcoming", "needs_next_step") in pairs
    assert ("needs_next_step", "invited") in pairs
    assert ("invited", "needs_next_step") in pairs

    # Every body verifies as Stripe verifies its webhooks; `t` is real time.
    for body, sig, _ in world.receiver.received:
        stripe.WebhookSignature.verify_header(body.decode(), sig, SECRET, tolerance=600)
        t = int(dict(p.split("=", 1) for p in sig.split(","))["t"])
        assert abs(t - time.time()) < 600

    listed = world.api.get("/v1/events", params={"limit": 1000}).json()
    items = listed["items"]
    assert {e["id"] for e in items} >= {e["id"] for e in changes}
    after = world.api.get("/v1/events", params={"after": items[0]["id"], "limit": 1000}).json()
    assert [e["id"] for e in after["items"]] == [e["id"] for e in items[1:]]
    only = world.api.get("/v1/events", params={"type": "meeting.state_changed"}).json()["items"]
    assert all(e["type"] == "meeting.state_changed" for e in only)


def test_patch_and_resync_reps(world: World) -> None:
    rid = world.reps[BOB]
    r = world.api.patch(f"/v1/reps/{rid}", json={"locale": "fr", "timezone": "Europe/Berlin"})
    assert r.status_code == 200, r.text
    assert (r.json()["locale"], r.json()["timezone"]) == ("fr", "Europe/Berlin")
    assert world.api.get(f"/v1/reps/{rid}").json()["timezone"] == "Europe/Berlin"
    for field, value in (("email", "other@seller.io"), ("provider", "google")):
        bad = world.api.patch(f"/v1/reps/{rid}", json={field: value})
        assert bad.status_code == 422 and field in bad.text
    assert world.api.get(f"/v1/reps/{rid}").json()["email"] == BOB
    r = world.api.post(f"/v1/reps/{rid}/resync")
    assert r.status_code == 202
    assert world.api.post("/v1/reps/nope/resync").status_code == 404


def test_errors(world: World) -> None:
    assert httpx.get(world.public_url + "/v1/reps").status_code == 401
    assert world.api.get("/v1/meetings/does-not-exist").status_code == 404
    r = world.api.post(
        "/v1/reps", json={"email": "z@seller.io", "provider": "sandbox", "timezone": "Mars/Olympus"}
    )
    assert r.status_code == 422 and "timezone" in r.text


# --- what a prospect meeting is ---------------------------------------------------------


def test_prospect_meeting_rules(world: World) -> None:
    day = (2026, 11, 30)

    def ev(title: str, hour: int, **body: Any) -> None:
        body.setdefault("attendees", [])
        world.event(
            ANNE,
            title=title,
            start=paris(*day, hour).isoformat(),
            end=paris(*day, hour, 30).isoformat(),
            **body,
        )

    ev("Organiser only", 10, organizer_email="kim@kappa.com")
    ev("Out of office", 11, event_type="out_of_office", attendees=[{"email": "x@omega.com"}])
    ev("Room only", 12, attendees=[{"email": "room@lambda.com", "is_resource": True}])
    ev("Rep declined", 13, rep_response="declined", attendees=[{"email": "y@rho.com"}])
    ev(
        "All declined",
        14,
        attendees=[{"email": "z@sigma.com", "response": "declined"}],
    )
    ev("Cancelled", 15, status="cancelled", attendees=[{"email": "w@tau.com"}])
    world.event(
        ANNE,
        title="All day",
        start=paris(*day).isoformat(),
        end=paris(2026, 12, 1).isoformat(),
        all_day=True,
        attendees=[{"email": "v@upsilon.com"}],
    )
    ev("Two accounts", 16, attendees=[{"email": "a@mu.com"}, {"email": "b@nu.com"}])
    ev("Shown as away", 17, attendees=[{"email": "c@phi.com", "response": "accepted"}])
    world.clock(datetime(2026, 11, 30, 8, 5, tzinfo=UTC))
    items = world.api.get("/v1/meetings").json()["items"]
    titles = [m["title"] for m in items]
    assert "Organiser only" in titles, "the organiser is an attendee, listed or not"
    (kappa,) = [m for m in items if m["title"] == "Organiser only"]
    assert kappa["account_domain"] == "kappa.com"
    for title in (
        "Out of office",
        "Room only",
        "Rep declined",
        "All declined",
        "Cancelled",
        "All day",
    ):
        assert title not in titles, title


def test_a_meeting_with_two_accounts_is_tracked_for_each(world: World) -> None:
    items = world.api.get("/v1/meetings").json()["items"]
    assert sorted(m["account_domain"] for m in items if m["title"] == "Two accounts") == [
        "mu.com",
        "nu.com",
    ]


def test_recurring_instances_and_follow_up_acceptance(world: World) -> None:
    for i, d in enumerate((1, 3)):
        world.event(
            ANNE,
            event_id=f"pi-weekly_{i}",
            title="Pi weekly",
            start=paris(2026, 12, d, 11).isoformat(),
            end=paris(2026, 12, d, 11, 30).isoformat(),
            recurring_event_id="pi-weekly",
            attendees=[{"email": "pia@pi.com", "response": "accepted"}],
        )
    world.clock(datetime(2026, 11, 30, 8, 6, tzinfo=UTC))
    pis = sorted(
        (m for m in world.api.get("/v1/meetings").json()["items"] if m["title"] == "Pi weekly"),
        key=lambda m: m["start"],
    )
    assert [m["event_id"] for m in pis] == ["pi-weekly_0", "pi-weekly_1"]
    assert pis[0]["follow_up"]["event_id"] == "pi-weekly_1"
    assert pis[0]["follow_up"]["responses"] == {"pia@pi.com": "accepted"}


def test_send_invite_moves_the_declined_follow_up_then_supersedes(world: World) -> None:
    mid = world.meeting("Acme Friday")["id"]
    old = {"event_id": world.acme_follow_up}
    (declined,) = world.nudges("Acme Friday", "follow_up_declined")
    invites = [a for a in declined["actions"] if a["kind"] == "send_invite"]
    assert invites
    action = invites[-1]
    done = httpx.post(action["url"], timeout=30)
    assert done.status_code == 200, done.text
    m = world.api.get(f"/v1/meetings/{mid}").json()
    assert m["state"] == "invited"
    assert m["follow_up"]["event_id"] == old["event_id"], "moved, never two follow-ups"
    assert parse(m["follow_up"]["start"]) == parse(action["slot"]["start"])
    again = httpx.post(action["url"], timeout=30)
    assert again.status_code < 500
    assert "already" in again.text.lower()
    r = world.api.post(
        f"/sandbox/calendars/{ANNE}/events/{old['event_id']}/responses",
        json={"attendee": "dana@acme.com", "response": "accepted"},
    )
    assert r.status_code == 200
    world.clock(datetime(2026, 11, 30, 8, 7, tzinfo=UTC))
    assert world.meeting("Acme Friday")["state"] == "secured"
    other = invites[0]
    page = httpx.get(other["url"], timeout=30)
    assert 400 <= page.status_code < 500
    assert "text/html" in page.headers["content-type"]
    assert httpx.post(other["url"], timeout=30).status_code >= 400
    assert world.meeting("Acme Friday")["follow_up"]["event_id"] == old["event_id"]


def test_holds_waive_snooze_and_the_held_slot(world: World) -> None:
    world.clock(datetime(2026, 12, 1, 16, 31, tzinfo=UTC))  # each one working day later

    def holds(domain: str) -> list[dict[str, Any]]:
        return [e for e in world.live(ANNE) if e["title"] == f"Hold: follow-up with {domain}"]

    def actions(title: str) -> dict[str, dict[str, Any]]:
        (nudge,) = world.nudges(title, "no_next_step")
        return {a["kind"]: a for a in nudge["actions"]}

    for domain in ("kappa.com", "phi.com"):
        assert len(holds(domain)) == 1, domain
        assert holds(domain)[0]["status"] == "tentative"

    # waive: GET shows, changes nothing; POST waives and removes the hold.
    waive = actions("Organiser only")["waive"]
    assert httpx.get(waive["url"], timeout=30).status_code == 200
    assert world.meeting("Organiser only")["state"] == "needs_next_step"
    assert len(holds("kappa.com")) == 1
    done = httpx.post(waive["url"], timeout=30)
    assert done.status_code == 200, done.text
    assert world.meeting("Organiser only")["state"] == "waived"
    world.clock(datetime(2026, 12, 1, 16, 31, tzinfo=UTC))  # settles the hold's removal
    assert holds("kappa.com") == [], "a waived meeting's hold is removed"

    # snooze: one day.
    snooze = actions("Shown as away")["snooze"]
    done = httpx.post(snooze["url"], timeout=30)
    assert done.status_code == 200, done.text
    until = world.meeting("Shown as away")["snoozed_until"]
    assert until is not None
    assert parse(until) - datetime(2026, 12, 1, 16, 31, tzinfo=UTC) >= timedelta(hours=23)

    # send_invite for the held slot: the hold becomes the follow-up or is replaced.
    (nudge,) = world.nudges("Shown as away", "no_next_step")
    first = next(a for a in nudge["actions"] if a["kind"] == "send_invite")
    assert parse(first["slot"]["start"]) == parse(nudge["suggested_slots"][0]["start"])
    done = httpx.post(first["url"], timeout=30)
    assert done.status_code == 200, done.text
    at_slot = [e for e in world.live(ANNE) if parse(e["start"]) == parse(first["slot"]["start"])]
    assert len(at_slot) == 1, at_slot
    assert "c@phi.com" in {a["email"] for a in at_slot[0]["attendees"]}
    assert holds("phi.com") == []
    assert world.meeting("Shown as away")["state"] == "invited"


def test_state_change_events_carry_the_meeting(world: World) -> None:
    for ev in world.receiver.of_type("meeting.state_changed"):
        assert set(ev["meeting"]) >= {
            "id",
            "rep_id",
            "event_id",
            "title",
            "start",
            "end",
            "account_domain",
            "external_attendees",
            "state",
            "follow_up",
        }
        assert ev["previous_state"] != ev["meeting"]["state"]


def test_not_accepted_and_idempotency_key_reuse(world: World) -> None:
    (late,) = world.nudges("Initech Friday", "not_accepted")
    assert late["window"]["name"] == "accept_within"
    mid = world.meeting("Pi weekly")["id"]
    headers = {"Idempotency-Key": "acme-once"}  # already used for another request
    r = world.api.post(
        f"/v1/meetings/{mid}/schedule",
        json={"start": paris(2026, 12, 4, 15).isoformat()},
        headers=headers,
    )
    assert 400 <= r.status_code < 500 and r.status_code != 404, r.text
    assert r.json()["detail"]


def test_provider_webhooks_refuse_forgeries(world: World) -> None:
    before = world.api.get("/v1/meetings").json()["items"]
    g = httpx.post(
        world.public_url + "/webhooks/google",
        headers={
            "X-Goog-Channel-ID": "forged",
            "X-Goog-Channel-Token": "forged",
            "X-Goog-Resource-State": "exists",
            "X-Goog-Resource-ID": "x",
            "X-Goog-Message-Number": "2",
        },
        timeout=30,
    )
    assert 400 <= g.status_code < 500
    for path in ("/webhooks/microsoft", "/webhooks/microsoft/lifecycle"):
        v = httpx.post(world.public_url + path, params={"validationToken": "hello there"})
        assert v.status_code == 200 and v.text == "hello there"
        assert v.headers["content-type"].startswith("text/plain")
    m = httpx.post(
        world.public_url + "/webhooks/microsoft",
        json={
            "value": [
                {
                    "subscriptionId": "forged",
                    "clientState": "wrong",
                    "changeType": "updated",
                    "resource": "users/x/events/y",
                }
            ]
        },
        timeout=30,
    )
    assert 400 <= m.status_code < 500
    assert world.api.get("/v1/meetings").json()["items"] == before
    assert httpx.get(world.public_url + "/healthz").status_code == 200


# --- counter-proposals (the cycles branch) -------------------------------------------


def test_counter_proposal_shows_as_proposed(world: World) -> None:
    fu = world.meeting("Initech Friday")["follow_up"]
    start, end = paris(2026, 12, 3, 15), paris(2026, 12, 3, 15, 30)
    r = world.api.post(
        f"/sandbox/calendars/{BOB}/events/{fu['event_id']}/responses",
        json={
            "attendee": "ivy@initech.com",
            "response": "proposed",
            "proposed_start": start.isoformat(),
            "proposed_end": end.isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    world.clock(world.now() + timedelta(minutes=1))
    m = world.meeting("Initech Friday")
    assert m["follow_up"]["responses"] == {"ivy@initech.com": "proposed"}


def test_counter_proposal_nudge(world: World) -> None:
    world.clock(world.now() + timedelta(minutes=1))
    (nudge,) = world.nudges("Initech Friday", "counter_proposed")
    assert parse(nudge["suggested_slots"][0]["start"]) == paris(2026, 12, 3, 15)


def test_a_new_cycle_after_secured_nudges_again(world: World) -> None:
    # Acme is secured; its follow-up cancelled sends it back to needs_next_step, and a new
    # cycle's no_next_step comes one working day later (Wednesday 09:00 -> Thursday 09:00).
    world.clock(datetime(2026, 12, 2, 8, 0, tzinfo=UTC))
    assert world.meeting("Acme Friday")["state"] == "secured"
    assert (
        world.api.delete(f"/sandbox/calendars/{ANNE}/events/{world.acme_follow_up}").status_code
        == 204
    )
    world.clock(datetime(2026, 12, 2, 8, 1, tzinfo=UTC))
    assert world.meeting("Acme Friday")["state"] == "needs_next_step"
    world.clock(datetime(2026, 12, 3, 8, 2, tzinfo=UTC))
    assert len(world.nudges("Acme Friday", "no_next_step")) == 2


def test_one_meeting_on_two_reps_calendars_is_one_meeting(world: World) -> None:
    r = world.api.post(
        "/v1/reps",
        json={"email": "dave@seller.io", "provider": "sandbox", "timezone": "Europe/Paris"},
    )
    assert r.status_code == 201, r.text
    for cal in (ANNE, "dave@seller.io"):
        world.event(
            cal,
            event_id=f"shared-{cal}",
            title="Shared demo",
            ical_uid="shared-demo@omicron.com",
            organizer_email=ANNE,
            start=paris(2026, 12, 3, 10).isoformat(),
            end=paris(2026, 12, 3, 10, 30).isoformat(),
            attendees=[
                {"email": ANNE, "response": "accepted"},
                {"email": "dave@seller.io", "response": "accepted"},
                {"email": "olga@omicron.com", "response": "accepted"},
            ],
        )
    world.clock(datetime(2026, 12, 3, 8, 3, tzinfo=UTC))
    shared = [
        m for m in world.api.get("/v1/meetings").json()["items"] if m["title"] == "Shared demo"
    ]
    # Once per rep, with the same state; only one of them (the organiser's) nudges.
    assert sorted(m["rep_id"] for m in shared) == sorted([world.reps[ANNE], r.json()["id"]]), shared
    assert len({m["state"] for m in shared}) == 1
    assert sum(m["due_at"] is not None for m in shared) <= 1


def test_patch_policy_and_country(world: World) -> None:
    rid = world.reps[ANNE]
    r = world.api.patch(f"/v1/reps/{rid}", json={"policy": "two-hours", "country": "BE"})
    assert r.status_code == 200, r.text
    assert (r.json()["policy"], r.json()["country"]) == ("two-hours", "BE")
    r = world.api.patch(f"/v1/reps/{rid}", json={"policy": "one-day", "country": "FR"})
    assert (r.json()["policy"], r.json()["country"]) == ("one-day", "FR")
    bad = world.api.patch(f"/v1/reps/{rid}", json={"policy": "nope"})
    assert bad.status_code == 422 and "policy" in bad.text


def test_actions_expire_and_holds_go_when_the_horizon_ends(world: World) -> None:
    (nudge,) = world.nudges("Initech Friday", "no_next_step")
    snooze = next(a for a in nudge["actions"] if a["kind"] == "snooze")
    assert [e for e in world.live(ANNE) if e["title"] == "Hold: follow-up with mu.com"]
    world.clock(datetime(2026, 12, 15, 9, 0, tzinfo=UTC))  # past both horizons
    page = httpx.get(snooze["url"], timeout=30)
    assert 400 <= page.status_code < 500
    assert "text/html" in page.headers["content-type"]
    assert [e for e in world.live(ANNE) if e["title"] == "Hold: follow-up with mu.com"] == []


def test_video_false_and_sandbox_needs_the_key(world: World) -> None:
    r = world.api.post(
        "/v1/reps",
        json={
            "email": "erin@seller.io",
            "provider": "sandbox",
            "timezone": "Europe/Paris",
            "policy": "no-video",
        },
    )
    assert r.status_code == 201, r.text
    world.event(
        "erin@seller.io",
        title="Sigma call",
        start=paris(2026, 12, 15, 9).isoformat(),
        end=paris(2026, 12, 15, 9, 30).isoformat(),
        attendees=[{"email": "sam@sigma.io", "response": "accepted"}],
    )
    world.clock(datetime(2026, 12, 15, 9, 1, tzinfo=UTC))
    mid = world.meeting("Sigma call")["id"]
    done = world.api.post(
        f"/v1/meetings/{mid}/schedule", json={"start": paris(2026, 12, 16, 11).isoformat()}
    )
    assert done.status_code == 201, done.text
    (fu,) = [e for e in world.live("erin@seller.io") if e["title"] != "Sigma call"]
    assert fu["video_link"] is None
    assert "sam@sigma.io" in {a["email"] for a in fu["attendees"]}

    assert httpx.get(world.public_url + "/sandbox/clock").status_code == 401
    bad = world.api.post(
        "/sandbox/calendars/erin@seller.io/events", json={"title": "x", "end": "2026-12-16T10:00Z"}
    )
    assert bad.status_code == 422 and "start" in bad.json()["detail"]


def test_the_same_decline_twice_is_one_nudge_within_a_minute(world: World) -> None:
    fu = world.meeting("Sigma call")["follow_up"]
    for minute in (2, 3):
        r = world.api.post(
            f"/sandbox/calendars/erin@seller.io/events/{fu['event_id']}/responses",
            json={"attendee": "sam@sigma.io", "response": "declined"},
        )
        assert r.status_code == 200, r.text
        world.clock(datetime(2026, 12, 15, 9, minute, tzinfo=UTC))
    assert world.meeting("Sigma call")["state"] == "needs_next_step"
    (declined,) = world.nudges("Sigma call", "follow_up_declined")
    assert len(world.receiver.of("follow_up_declined", "Sigma call")) == 1
    delivered = parse(declined["deliveries"][0]["delivered_at"])
    assert delivered - datetime(2026, 12, 15, 9, 1, tzinfo=UTC) <= timedelta(minutes=1, seconds=1)


def test_meeting_filters(world: World) -> None:
    rid = world.reps[ANNE]
    for state in ("needs_next_step", "invited", "secured", "waived", "upcoming"):
        r = world.api.get("/v1/meetings", params={"rep_id": rid, "state": state})
        assert r.status_code == 200
        assert all(m["state"] == state and m["rep_id"] == rid for m in r.json()["items"])
    assert world.api.get("/v1/meetings", params={"state": "waived"}).json()["items"]
    bad = world.api.get("/v1/meetings", params={"state": "sleeping"})
    assert bad.status_code == 422 and "state" in bad.json()["detail"]
    nudges = world.api.get("/v1/nudges", params={"rep_id": rid}).json()["items"]
    assert nudges and all(n["rep"]["id"] == rid for n in nudges)


# --- last: it ends the world's rep ---------------------------------------------------


def test_delete_rep(world: World) -> None:
    rid = world.reps[BOB]
    mine = world.api.get("/v1/meetings", params={"rep_id": rid}).json()["items"]
    assert mine
    assert world.api.delete(f"/v1/reps/{rid}").status_code == 204
    assert world.api.get(f"/v1/reps/{rid}").status_code == 404
    assert world.api.get(f"/v1/meetings/{mine[0]['id']}").status_code == 404
    assert world.api.delete(f"/v1/reps/{rid}").status_code == 404
