"""Business time end to end: `nextstep serve` on the sandbox with a trial clock.

One scripted sales week (Paris rep, prospects in New York, Dubai and Los Angeles, a
customer), lived through with ``POST /sandbox/clock`` as an acceptance test would: the
Friday meeting nudged on Monday, the Saturday decline delivered Monday 09:00, Thanksgiving
never suggested, the Dubai week, the zone learnt from the prospect's own invite, the
customer's QBR tracked but not nudged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers.receiver import Receiver
from tests.helpers.serve import serve

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
DUBAI = ZoneInfo("Asia/Dubai")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
START = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)  # Wednesday 09:00 in Paris

POLICY = """\
policies:
  - name: business
    clock: business
    invite_within: P1D
    accept_within: P1D
    horizon: P14D
    follow_up_duration: PT30M
    escalate_after: P5D
    lunch: "12:00-13:00"
    slot_buffer: PT15M
    stages: [prospect]
"""


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    r = Receiver("s3cret")
    yield r
    r.close()


def at(zone: ZoneInfo, *args: int) -> str:
    return datetime(*args, tzinfo=zone).isoformat()  # type: ignore[misc]


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_business_week_over_the_trial_clock(tmp_path, receiver):  # type: ignore[no-untyped-def]
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    env = {
        "NEXTSTEP_SANDBOX": "true",
        "NEXTSTEP_CLOCK": START.isoformat().replace("+00:00", "Z"),
        "NEXTSTEP_INTERNAL_DOMAINS": "seller.io",
        "NEXTSTEP_POLICY_FILE": str(policy),
        "NEXTSTEP_NUDGE_WEBHOOK_URL": receiver.url,
        "NEXTSTEP_NUDGE_WEBHOOK_SECRET": "s3cret",
    }
    with serve(env, tmp_path) as srv, srv.client() as api:
        assert api.get("/sandbox/clock").json() == {"now": START.isoformat()}

        def clock(to: datetime) -> None:
            r = api.post("/sandbox/clock", json={"to": to.isoformat()})
            assert r.status_code == 200, r.text
            assert parse(r.json()["now"]) == to

        def event(**body: Any) -> dict[str, Any]:
            r = api.post("/sandbox/calendars/anne@seller.io/events", json=body)
            assert r.status_code == 201, r.text
            return r.json()

        def meeting(title: str) -> dict[str, Any]:
            items = api.get("/v1/meetings").json()["items"]
            return next(m for m in items if m["title"] == title)

        def nudges(title: str) -> list[dict[str, Any]]:
            items = api.get("/v1/nudges").json()["items"]
            return [n for n in items if (n.get("meeting") or {}).get("title") == title]

        for domain, body in {
            "acme.com": {"name": "Acme", "timezone": "America/New_York"},
            "emaar.ae": {
                "name": "Emaar",
                "timezone": "Asia/Dubai",
                "working_hours": {"days": ["sun", "mon", "tue", "wed", "thu"]},
            },
            "initech.com": {"name": "Initech", "stage": "customer"},
        }.items():
            r = api.put(f"/v1/accounts/{domain}", json=body)
            assert r.status_code == 200, r.text
        emaar = api.get("/v1/accounts/emaar.ae").json()
        assert emaar["country"] == "AE"
        assert emaar["working_hours"] == {
            "days": ["mon", "tue", "wed", "thu", "sun"],
            "start": "09:00",
            "end": "17:00",
        }

        rep = api.post(
            "/v1/reps",
            json={"email": "anne@seller.io", "provider": "sandbox", "timezone": "Europe/Paris"},
        )
        assert rep.status_code == 201, rep.text
        assert rep.json()["country"] == "FR"

        event(
            title="Acme Friday",
            start=at(PARIS, 2026, 11, 20, 15),
            end=at(PARIS, 2026, 11, 20, 16),
            attendees=[{"email": "dana@acme.com", "response": "accepted"}],
        )
        event(
            title="Globex intro",
            start=at(LOS_ANGELES, 2026, 11, 18, 7),
            end=at(LOS_ANGELES, 2026, 11, 18, 8),
            organizer_email="pat@globex.com",
            time_zone="America/Los_Angeles",
            attendees=[
                {"email": "pat@globex.com", "response": "accepted"},
                {"email": "anne@seller.io", "response": "accepted"},
            ],
        )
        event(
            title="Initech QBR",
            start=at(PARIS, 2026, 11, 18, 10),
            end=at(PARIS, 2026, 11, 18, 11),
            attendees=[{"email": "bob@initech.com", "response": "accepted"}],
        )
        event(
            title="Emaar call",
            start=at(PARIS, 2026, 11, 19, 10),
            end=at(PARIS, 2026, 11, 19, 11),
            attendees=[{"email": "ali@emaar.ae", "response": "accepted"}],
        )
        event(
            title="Umbrella demo",
            start=at(PARIS, 2026, 11, 18, 9, 0),
            end=at(PARIS, 2026, 11, 18, 9, 30),
            attendees=[{"email": "eve@umbrella.com", "response": "accepted"}],
        )
        follow_up = event(
            event_id="umbrella-follow-up",
            title="Umbrella next step",
            start=at(PARIS, 2026, 11, 30, 10),
            end=at(PARIS, 2026, 11, 30, 10, 30),
            attendees=[{"email": "eve@umbrella.com"}],
        )
        clock(START)  # `to` equal to now settles what is due: the pushes are synced

        # The prospect's zone, learnt from the invite its own person organised.
        globex = api.get("/v1/accounts/globex.com")
        assert globex.status_code == 200, globex.text
        assert globex.json()["timezone"] == "America/Los_Angeles"
        assert globex.json()["timezone_source"] == "calendar"
        assert api.get("/v1/accounts/acme.com").json()["timezone_source"] == "crm"

        # Saturday morning: the Friday meeting's one working day has not passed.
        clock(datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
        assert meeting("Acme Friday")["state"] == "needs_next_step"
        assert nudges("Acme Friday") == []

        # Globex: one working day after Wednesday 17:00 Paris is Thursday 17:00; slots in
        # Los Angeles working hours (09:00–17:00) and Paris ones, lunch kept free.
        (globex_nudge,) = nudges("Globex intro")
        assert globex_nudge["prospect_timezone"] == "America/Los_Angeles"
        assert parse(globex_nudge["window"]["closed_at"]) == local(PARIS, 2026, 11, 19, 17)
        for slot in globex_nudge["suggested_slots"]:
            la, paris = parse(slot["start"]).astimezone(LOS_ANGELES), None
            paris = parse(slot["start"]).astimezone(PARIS)
            assert 9 <= la.hour and parse(slot["end"]).astimezone(LOS_ANGELES).hour < 17
            assert paris.hour < 18
            assert la.date().isoformat() != "2026-11-26", "Thanksgiving"

        # Emaar: Dubai works Sunday–Thursday 09:00–17:00 (06:00–14:00 in Paris).
        (emaar_nudge,) = nudges("Emaar call")
        assert parse(emaar_nudge["window"]["closed_at"]) == local(PARIS, 2026, 11, 20, 11)
        assert emaar_nudge["suggested_slots"]
        for slot in emaar_nudge["suggested_slots"]:
            dubai = parse(slot["start"]).astimezone(DUBAI)
            assert dubai.weekday() in (6, 0, 1, 2, 3), slot
            assert dubai.weekday() != 6, "Sunday is not a working day in Paris"
            assert 9 <= dubai.hour and parse(slot["end"]).astimezone(DUBAI) <= dubai.replace(
                hour=17, minute=0
            )
            assert not 12 <= dubai.hour < 13, "the Dubai lunch"
            assert not 12 <= parse(slot["start"]).astimezone(PARIS).hour < 13, "the Paris lunch"

        # Saturday 11:00 in Paris the prospect declines the follow-up: decided now,
        # delivered when Anne's week starts (Monday 09:00 Paris = 08:00 UTC).
        r = api.post(
            f"/sandbox/calendars/anne@seller.io/events/{follow_up['event_id']}/responses",
            json={"attendee": "eve@umbrella.com", "response": "declined"},
        )
        assert r.status_code == 200, r.text
        clock(datetime(2026, 11, 21, 10, 0, tzinfo=UTC))
        (declined,) = [n for n in nudges("Umbrella demo") if n["kind"] == "follow_up_declined"]
        assert parse(declined["created_at"]) <= datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
        assert [d["status"] for d in declined["deliveries"]] == ["pending"]
        clock(datetime(2026, 11, 23, 7, 59, tzinfo=UTC))
        assert receiver.of("follow_up_declined", "Umbrella demo") == []
        clock(datetime(2026, 11, 23, 8, 1, tzinfo=UTC))
        assert len(receiver.of("follow_up_declined", "Umbrella demo")) == 1
        (declined,) = [n for n in nudges("Umbrella demo") if n["kind"] == "follow_up_declined"]
        delivered = parse(declined["deliveries"][0]["delivered_at"])
        monday_nine = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
        assert monday_nine <= delivered <= monday_nine + timedelta(minutes=1)

        # The Friday 16:00 meeting: P1D of working days closes Monday 16:00 Paris.
        clock(datetime(2026, 11, 23, 14, 59, tzinfo=UTC))
        assert nudges("Acme Friday") == []
        clock(datetime(2026, 11, 23, 15, 30, tzinfo=UTC))
        (acme,) = nudges("Acme Friday")
        assert acme["kind"] == "no_next_step"
        assert parse(acme["window"]["closed_at"]) == local(PARIS, 2026, 11, 23, 16)
        assert parse(acme["created_at"]) == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
        assert acme["suggested_slots"]
        for slot in acme["suggested_slots"]:
            ny = parse(slot["start"]).astimezone(NEW_YORK)
            assert ny.date().isoformat() != "2026-11-26", "Thanksgiving is never suggested"
            assert ny.weekday() < 5 and 9 <= ny.hour < 17
        assert "November 26" not in json.dumps(acme["draft_invite"])
        assert receiver.of("no_next_step", "Acme Friday")

        # The customer's QBR: tracked (its state moves) but never nudged.
        clock(datetime(2026, 11, 27, 17, 0, tzinfo=UTC))
        assert meeting("Initech QBR")["state"] == "needs_next_step"
        assert nudges("Initech QBR") == []
        assert receiver.bad_signatures == 0

        # The trial clock only moves forward.
        back = api.post("/sandbox/clock", json={"to": START.isoformat()})
        assert back.status_code == 409
        assert "only moves forward" in back.json()["detail"]
        assert parse(api.get("/sandbox/clock").json()["now"]) == datetime(
            2026, 11, 27, 17, 0, tzinfo=UTC
        )


def test_the_trial_clock_needs_the_sandbox(tmp_path):  # type: ignore[no-untyped-def]
    env = {
        "NEXTSTEP_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "NEXTSTEP_CLOCK": "2026-11-23T08:00:00Z",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", "1"],
        env={**env, "PYTHONPATH": sys.path[0]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "NEXTSTEP_CLOCK" in lines[0] and "NEXTSTEP_SANDBOX=true" in lines[0]


def test_real_time_refuses_to_move_the_clock(tmp_path):  # type: ignore[no-untyped-def]
    with serve({"NEXTSTEP_SANDBOX": "true"}, tmp_path) as srv, srv.client() as api:
        now = parse(api.get("/sandbox/clock").json()["now"])
        assert abs((now - datetime.now(UTC)).total_seconds()) < 60
        r = api.post("/sandbox/clock", json={"to": (now + timedelta(days=1)).isoformat()})
        assert r.status_code == 409
        assert "NEXTSTEP_CLOCK" in r.json()["detail"]
