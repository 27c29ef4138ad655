"""PATCH /v1/reps/{id}, POST /v1/reps/{id}/resync, and a sync that one bad event never stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.main import create_app
from tests.conftest import START
from tests.helpers.calendar import REP, event, register

H = timedelta(hours=1)


@pytest.fixture
async def api(rt):
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": "Bearer test-key"}
    ) as client:
        yield client


async def test_patch_changes_what_was_registered_but_email_and_provider(rt, sim, api):
    rep = await register(rt)
    r = await api.patch(
        f"/v1/reps/{rep['id']}",
        json={
            "manager_email": "New.Boss@seller.io",
            "timezone": "America/New_York",
            "locale": "fr",
            "working_hours": {"days": ["mon", "tue"], "start": "08:00", "end": "16:00"},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["manager_email"] == "new.boss@seller.io"
    assert body["timezone"] == "America/New_York" and body["locale"] == "fr"
    assert body["working_hours"] == {"days": ["mon", "tue"], "start": "08:00", "end": "16:00"}
    assert body["email"] == REP and body["provider"] == "sandbox"
    assert (await api.get(f"/v1/reps/{rep['id']}")).json() == body
    # Only the fields given change; null resets the manager.
    r = await api.patch(f"/v1/reps/{rep['id']}", json={"manager_email": None})
    assert r.json()["manager_email"] is None and r.json()["timezone"] == "America/New_York"
    for bad, field in (
        ({"email": "other@seller.io"}, "email"),
        ({"provider": "google"}, "provider"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"policy": "no-such-policy"}, "policy"),
        ({"working_hours": {"days": ["someday"]}}, "working_hours"),
        ({"colour": "blue"}, "colour"),
    ):
        r = await api.patch(f"/v1/reps/{rep['id']}", json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert field in r.json()["detail"]
    assert (await api.get(f"/v1/reps/{rep['id']}")).json()["manager_email"] is None  # unchanged
    assert (await api.patch("/v1/reps/nope", json={"locale": "en"})).status_code == 404


async def test_patch_changes_the_country_given_at_registration(rt, sim, api):
    # CONTRACT v2: PATCH changes any field given at registration; `country` is one.
    rep = await register(rt)
    zone_country = rep["country"]
    r = await api.patch(f"/v1/reps/{rep['id']}", json={"country": "be"})
    assert r.status_code == 200, r.text
    assert r.json()["country"] == "BE"
    assert (await api.get(f"/v1/reps/{rep['id']}")).json()["country"] == "BE"
    bad = await api.patch(f"/v1/reps/{rep['id']}", json={"country": "Belgium"})
    assert bad.status_code == 422 and "country" in bad.json()["detail"]
    r = await api.patch(f"/v1/reps/{rep['id']}", json={"country": None})
    assert r.json()["country"] == zone_country, "null: the country of the time zone again"


async def test_a_new_manager_gets_the_escalations(rt, sim, api, channel):
    rep = await register(rt)  # no manager: no escalation is possible
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 4 * H)
    assert channel.kinds() == ["no_next_step"]
    await api.patch(f"/v1/reps/{rep['id']}", json={"manager_email": "boss@seller.io"})
    await sim.run_until(START + timedelta(days=5))
    escalations = [o for o in channel.sent if o.payload["kind"] == "escalation"]
    assert [o.payload["recipient"] for o in escalations] == ["boss@seller.io"]


async def test_resync_runs_a_full_sync_now(rt, sim, api):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    await sim.settle()
    before = (await api.get(f"/v1/reps/{rep['id']}")).json()["calendar"]["synced_at"]
    sb.put_event(REP, event(START + H))
    sb.expire_cursors(REP)  # a change the incremental cursor would not show either way
    sim.clock.advance(timedelta(minutes=1))
    r = await api.post(f"/v1/reps/{rep['id']}/resync")
    assert r.status_code == 202, r.text
    assert r.json()["calendar"]["sync_pending"] is True
    await sim.settle()
    after = (await api.get(f"/v1/reps/{rep['id']}")).json()
    assert after["calendar"]["synced_at"] != before and after["status"] == "active"
    assert len((await api.get("/v1/meetings")).json()["items"]) == 1
    assert (await api.post("/v1/reps/nope/resync")).status_code == 404


async def test_one_absurd_event_is_skipped_named_and_never_stops_the_sync(rt, sim, api):
    sb = rt.providers["sandbox"]
    good = sb.put_event(REP, event(START + H))
    far = datetime(9999, 12, 31, 22, 0, tzinfo=UTC)
    sb.put_event(REP, event(far, event_id="typo-9999"))  # a year typed wrong
    rep = await register(rt)
    await sim.settle()
    shown = (await api.get(f"/v1/reps/{rep['id']}")).json()
    assert shown["status"] == "active"
    assert (
        "typo-9999" in shown["status_detail"]
        and "skipped 1 calendar event" in shown["status_detail"]
    )
    ids = [m["event_id"] for m in (await api.get("/v1/meetings")).json()["items"]]
    assert ids == [good.event_id]
    # Later changes still sync.
    later = sb.put_event(REP, event(START + 3 * H))
    await sim.settle()
    ids = [m["event_id"] for m in (await api.get("/v1/meetings")).json()["items"]]
    assert later.event_id in ids
