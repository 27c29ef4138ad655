"""The /v1 API's answers, especially to bad input: 401/404/409/422 with a detail that
names the problem, never a 500."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from app.main import create_app
from tests.conftest import START
from tests.helpers.calendar import REP, event

H = timedelta(hours=1)


@pytest.fixture
async def api(rt):
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": "Bearer test-key"}
    ) as client:
        yield client


async def _rep(api, **kw):
    body = {"email": REP, "provider": "sandbox", "timezone": "Europe/Paris", **kw}
    r = await api.post("/v1/reps", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_every_v1_call_needs_a_valid_key(api):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dGVzdA=="}):
        r = await api.get("/v1/reps", headers={**headers} if headers else {"Authorization": ""})
        assert r.status_code == 401
        assert r.json()["detail"]
    assert (await api.get("/healthz", headers={"Authorization": ""})).status_code == 200


async def test_no_configured_keys_refuses_everything(rt):
    from dataclasses import replace as _  # noqa: F401

    rt.settings = rt.settings.model_copy(update={"api_keys": ()})
    app = create_app(runtime=rt, start_scheduler=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/v1/reps", headers={"Authorization": "Bearer test-key"})
    assert r.status_code == 401
    assert "NEXTSTEP_API_KEYS" in r.json()["detail"]


async def test_register_rep_and_read_it_back(api):
    rep = await _rep(
        api,
        locale="fr",
        manager_email="Boss@Seller.io",
        working_hours={"days": ["mon", "tue"], "start": "08:30", "end": "17:00"},
    )
    assert (
        rep["email"] == REP and rep["locale"] == "fr" and rep["manager_email"] == "boss@seller.io"
    )
    assert rep["working_hours"] == {"days": ["mon", "tue"], "start": "08:30", "end": "17:00"}
    got = (await api.get(f"/v1/reps/{rep['id']}")).json()
    assert got["id"] == rep["id"] and got["status"] == "active"
    assert [r["id"] for r in (await api.get("/v1/reps")).json()["items"]] == [rep["id"]]
    default = await _rep(api, email="paul@seller.io")
    assert default["working_hours"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "18:00",
    }


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"provider": "sandbox", "timezone": "Europe/Paris"}, "email"),
        ({"email": "not-an-email", "provider": "sandbox", "timezone": "Europe/Paris"}, "email"),
        ({"email": REP, "provider": "sandbox", "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": REP, "provider": "exchange2003", "timezone": "UTC"}, "provider"),
        (
            {"email": REP, "provider": "google", "timezone": "UTC"},
            "NEXTSTEP_GOOGLE_SERVICE_ACCOUNT_FILE",
        ),
        ({"email": REP, "provider": "microsoft", "timezone": "UTC"}, "NEXTSTEP_MS_TENANT_ID"),
        ({"email": REP, "provider": "sandbox", "timezone": "UTC", "locale": "de"}, "locale"),
        (
            {
                "email": REP,
                "provider": "sandbox",
                "timezone": "UTC",
                "working_hours": {"days": ["mon", "fun"]},
            },
            "working_hours.days[1]",
        ),
        (
            {
                "email": REP,
                "provider": "sandbox",
                "timezone": "UTC",
                "working_hours": {"start": "18:00", "end": "09:00"},
            },
            "working_hours",
        ),
        ({"email": REP, "provider": "sandbox", "timezone": "UTC", "policy": "nope"}, "policy"),
        ({"email": REP, "provider": "sandbox", "timezone": "UTC", "colour": "red"}, "colour"),
    ],
)
async def test_bad_rep_bodies_are_refused_naming_the_field(api, body, names):
    r = await api.post("/v1/reps", json=body)
    assert r.status_code == 422, r.text
    assert names in r.json()["detail"]
    assert (await api.get("/v1/reps")).json()["items"] == []  # nothing half-written


async def test_bad_json_is_a_422_not_a_500(api):
    r = await api.post(
        "/v1/reps", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert "JSON" in r.json()["detail"]


async def test_duplicate_rep_is_a_409(api):
    await _rep(api)
    r = await api.post(
        "/v1/reps", json={"email": REP.upper(), "provider": "sandbox", "timezone": "UTC"}
    )
    assert r.status_code == 409 and REP in r.json()["detail"]


async def test_unknown_ids_are_404(api):
    for path in ("/v1/reps/nope", "/v1/meetings/nope", "/v1/accounts/unknown.com"):
        r = await api.get(path)
        assert (
            r.status_code == 404
            and "nope" in r.json()["detail"]
            or "unknown.com" in r.json()["detail"]
        )
    assert (await api.delete("/v1/reps/nope")).status_code == 404
    assert (await api.post("/v1/meetings/nope/waive", json={"reason": "x"})).status_code == 404
    assert (await api.get("/v1/meetings", params={"rep_id": "nope"})).status_code == 404


async def test_accounts_put_and_validation(api):
    r = await api.put(
        "/v1/accounts/Acme.COM",
        json={"name": "Acme", "timezone": "America/New_York", "crm_id": "0011"},
    )
    assert r.status_code == 200 and r.json()["domain"] == "acme.com"
    r = await api.put("/v1/accounts/acme.com", json={"crm_id": "0012"})
    assert r.json()["name"] == "Acme" and r.json()["crm_id"] == "0012"  # only given fields change
    assert (
        await api.put("/v1/accounts/acme.com", json={"timezone": "EST5EDTX"})
    ).status_code == 422
    assert (
        "timezone"
        in (await api.put("/v1/accounts/acme.com", json={"timezone": "Nowhere/Land"})).json()[
            "detail"
        ]
    )
    assert (await api.put("/v1/accounts/not a domain", json={})).status_code == 422
    r = await api.put("/v1/accounts/jane.doe@gmail.com", json={"timezone": "America/Chicago"})
    assert r.json()["domain"] == "jane.doe@gmail.com"
    r = await api.put(
        "/v1/accounts/acme.com", json={"contacts": [{"email": "dana@acme.com", "role": "boss"}]}
    )
    assert r.status_code == 422 and "role" in r.json()["detail"]


async def _meeting(api, rt, sim):
    rep = await _rep(api)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 3 * H)
    items = (await api.get("/v1/meetings", params={"rep_id": rep["id"]})).json()["items"]
    assert len(items) == 1
    return rep, items[0]


async def test_meeting_shape_and_filters(api, rt, sim):
    rep, m = await _meeting(api, rt, sim)
    assert set(m) >= {
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
    assert m["state"] == "needs_next_step" and m["follow_up"] is None
    assert m["start"].endswith("+00:00")
    assert (await api.get("/v1/meetings", params={"state": "secured"})).json()["items"] == []
    r = await api.get("/v1/meetings", params={"state": "lost"})
    assert r.status_code == 422 and "state" in r.json()["detail"]


async def test_waive_snooze_validation(api, rt, sim):
    _, m = await _meeting(api, rt, sim)
    assert (await api.post(f"/v1/meetings/{m['id']}/waive", json={})).status_code == 422
    assert (await api.post(f"/v1/meetings/{m['id']}/waive", json={"reason": ""})).status_code == 422
    r = await api.post(
        f"/v1/meetings/{m['id']}/snooze", json={"until": "2026-11-20T10:00:00+00:00"}
    )
    assert r.status_code == 422 and "until" in r.json()["detail"]
    r = await api.post(f"/v1/meetings/{m['id']}/snooze", json={"until": "2026-11-30T10:00:00"})
    assert r.status_code == 422 and "until" in r.json()["detail"]  # no offset: ambiguous
    r = await api.post(f"/v1/meetings/{m['id']}/snooze", json={"until": "2026-11-30T10:00:00Z"})
    assert r.status_code == 200 and r.json()["snoozed_until"].startswith("2026-11-30T10:00")
    r = await api.post(f"/v1/meetings/{m['id']}/waive", json={"reason": "existing customer"})
    assert r.status_code == 200 and r.json()["state"] == "waived"


async def test_schedule_creates_the_follow_up_and_refuses_bad_slots(api, rt, sim):
    rep, m = await _meeting(api, rt, sim)
    sb = rt.providers["sandbox"]
    r = await api.post(
        f"/v1/meetings/{m['id']}/schedule", json={"start": "2026-11-20T15:00:00+00:00"}
    )
    assert r.status_code == 409 and "past" in r.json()["detail"]
    r = await api.post(
        f"/v1/meetings/{m['id']}/schedule", json={"start": "2027-01-20T15:00:00+00:00"}
    )
    assert r.status_code == 409 and "horizon" in r.json()["detail"]
    sb.put_event(REP, event(START + 30 * H, guests=("bob@seller.io",), title="Internal"))
    await sim.run_until(sim.clock.now())
    busy = (START + 30 * H + timedelta(minutes=15)).isoformat()
    r = await api.post(f"/v1/meetings/{m['id']}/schedule", json={"start": busy})
    assert r.status_code == 409 and "busy" in r.json()["detail"]
    r = await api.post(f"/v1/meetings/{m['id']}/schedule", json={"start": "nonsense"})
    assert r.status_code == 422 and "start" in r.json()["detail"]
    late = (START + 33 * H).isoformat()  # Tuesday 18:00 in Paris: after the rep's day
    r = await api.post(f"/v1/meetings/{m['id']}/schedule", json={"start": late})
    assert r.status_code == 409 and "working hours" in r.json()["detail"]
    free = (START + 28 * H).isoformat()
    r = await api.post(
        f"/v1/meetings/{m['id']}/schedule", json={"start": free, "subject": "Proposal review"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "invited"
    assert body["follow_up"]["start"] == free
    assert body["follow_up"]["responses"] == {"dana.smith@acme.com": "needs_action"}
    created = [e for e in sb.events(REP) if e.title == "Proposal review"]
    assert len(created) == 1
    assert {a.email for a in created[0].attendees} == {REP, "dana.smith@acme.com"}
    # A retried request (same slot) finds its own follow-up: no second event.
    r2 = await api.post(
        f"/v1/meetings/{m['id']}/schedule", json={"start": free, "subject": "Proposal review"}
    )
    assert r2.status_code == 201, r2.text
    assert len([e for e in sb.events(REP) if e.title == "Proposal review"]) == 1


async def test_nudges_list(api, rt, sim):
    rep, m = await _meeting(api, rt, sim)
    await sim.run_until(START + 5 * H)
    items = (await api.get("/v1/nudges", params={"rep_id": rep["id"]})).json()["items"]
    assert [n["kind"] for n in items] == ["no_next_step"]
    assert items[0]["meeting"]["id"] == m["id"]
    assert items[0]["deliveries"][0]["status"] == "delivered"
    assert (await api.get("/v1/nudges", params={"kind": "bogus"})).status_code == 422


async def test_delete_rep_stops_the_channel_and_deletes_data(api, rt, sim):
    rep, m = await _meeting(api, rt, sim)
    sb = rt.providers["sandbox"]
    assert sb.calendar(REP).channels
    assert (await api.delete(f"/v1/reps/{rep['id']}")).status_code == 204
    assert sb.calendar(REP).channels == {}
    assert (await api.get(f"/v1/meetings/{m['id']}")).status_code == 404
    assert (await api.get("/v1/nudges")).json()["items"] == []


async def test_openapi_docs_are_served(api):
    assert (await api.get("/docs")).status_code == 200
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/meetings/{meeting_id}/schedule" in spec["paths"]


async def test_rep_whose_mailbox_is_refused_is_marked_not_failed(api, rt):
    rt.providers["sandbox"].refused.add("locked@seller.io")
    r = await api.post(
        "/v1/reps", json={"email": "locked@seller.io", "provider": "sandbox", "timezone": "UTC"}
    )
    assert r.status_code == 201
    assert r.json()["status"] == "auth_failed"
    assert "refused" in r.json()["status_detail"]
    ok = await _rep(api)
    assert ok["status"] == "active"


async def test_a_refused_rep_recovers_and_is_watched_once_access_is_granted(api, rt, sim):
    from app.sync.service import want_sync

    sb = rt.providers["sandbox"]
    sb.refused.add("locked@seller.io")
    r = await api.post(
        "/v1/reps", json={"email": "locked@seller.io", "provider": "sandbox", "timezone": "UTC"}
    )
    rep_id = r.json()["id"]
    assert r.json()["status"] == "auth_failed" and r.json()["calendar"]["watch"] == []
    sb.refused.clear()  # the admin granted access
    await rt.db.run(want_sync, rep_id, sim.clock.now())  # what the safety net does
    await sim.run_until(sim.clock.now())
    rep = (await api.get(f"/v1/reps/{rep_id}")).json()
    assert rep["status"] == "active" and rep["status_detail"] is None
    assert len(rep["calendar"]["watch"]) == 1
