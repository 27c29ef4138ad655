"""`nextstep serve` as a process, driven over HTTP like a CRM would, on the sandbox.

The policy uses second-long windows so a real clock shows the whole life of a meeting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.receiver import Receiver
from tests.helpers.serve import serve, wait_for

POLICY = """\
policies:
  - name: fast
    invite_within: PT3S
    accept_within: PT3S
    horizon: P14D
    follow_up_duration: PT15M
    escalate_after: PT4S
"""


@pytest.fixture
def receiver():
    r = Receiver("s3cret")
    yield r
    r.close()


def iso(dt: datetime) -> str:
    return dt.isoformat()


def test_a_meeting_lives_its_whole_life_over_http(tmp_path, receiver):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    env = {
        "NEXTSTEP_SANDBOX": "true",
        "NEXTSTEP_INTERNAL_DOMAINS": "seller.io",
        "NEXTSTEP_POLICY_FILE": str(policy),
        "NEXTSTEP_NUDGE_WEBHOOK_URL": receiver.url,
        "NEXTSTEP_NUDGE_WEBHOOK_SECRET": "s3cret",
    }
    with serve(env, tmp_path) as srv, srv.client() as api:
        assert api.get("/healthz").status_code == 200
        rep = api.post(
            "/v1/reps",
            json={
                "email": "anne@seller.io",
                "provider": "sandbox",
                "timezone": "Europe/Paris",
                "manager_email": "boss@seller.io",
            },
        )
        assert rep.status_code == 201, rep.text
        rep_id = rep.json()["id"]
        assert rep.json()["status"] == "active"
        assert rep.json()["calendar"]["watch"], "the calendar is watched right away"
        assert (
            api.put(
                "/v1/accounts/acme.com", json={"name": "Acme", "timezone": "America/New_York"}
            ).status_code
            == 200
        )

        now = datetime.now(UTC)
        ev = api.post(
            "/sandbox/calendars/anne@seller.io/events",
            json={
                "title": "Acme discovery",
                "start": iso(now - timedelta(minutes=30)),
                "end": iso(now + timedelta(seconds=1)),
                "attendees": [{"email": "dana.smith@acme.com", "response": "accepted"}],
            },
        )
        assert ev.status_code == 201, ev.text

        meeting = wait_for(
            lambda: next(
                iter(api.get("/v1/meetings", params={"rep_id": rep_id}).json()["items"]), None
            )
        )
        assert meeting["account_domain"] == "acme.com"
        wait_for(
            lambda: api.get(f"/v1/meetings/{meeting['id']}").json()["state"] == "needs_next_step"
        )
        wait_for(lambda: "no_next_step" in receiver.kinds())
        nudge = receiver.nudges[0]
        assert nudge["meeting"]["id"] == meeting["id"]
        assert nudge["suggested_slots"], nudge
        wait_for(lambda: "escalation" in receiver.kinds(), timeout=20)

        slot = nudge["suggested_slots"][0]
        sched = api.post(f"/v1/meetings/{meeting['id']}/schedule", json={"start": slot["start"]})
        assert sched.status_code == 201, sched.text
        assert sched.json()["state"] == "invited"
        fu_id = sched.json()["follow_up"]["event_id"]
        again = api.post(f"/v1/meetings/{meeting['id']}/schedule", json={"start": slot["start"]})
        assert again.status_code == 201, "its own follow-up is never busy for it"
        assert again.json()["follow_up"]["event_id"] == fu_id, "moved in place, not doubled"

        r = api.post(
            f"/sandbox/calendars/anne@seller.io/events/{fu_id}/responses",
            json={"attendee": "dana.smith@acme.com", "response": "accepted"},
        )
        assert r.status_code == 200
        wait_for(lambda: api.get(f"/v1/meetings/{meeting['id']}").json()["state"] == "secured")

        listed = api.get("/v1/nudges", params={"rep_id": rep_id}).json()["items"]
        assert {n["kind"] for n in listed} >= {"no_next_step", "escalation"}
        assert all(
            n["id"] in {x["id"] for x in receiver.nudges}
            for n in listed
            if n["deliveries"][0]["status"] == "delivered"
        )
        assert receiver.bad_signatures == 0

        assert api.delete(f"/v1/reps/{rep_id}").status_code == 204
        assert api.get(f"/v1/reps/{rep_id}").status_code == 404
        assert api.get(f"/v1/meetings/{meeting['id']}").status_code == 404
