"""What a CRM integrator expects of the API: the Bearer scheme in OpenAPI, pages with a
``next`` link on every list, un-waive and un-snooze."""

from __future__ import annotations

from datetime import timedelta

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


async def test_openapi_declares_the_bearer_scheme_on_every_v1_call(api):
    doc = (await api.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["ApiKey"]["description"],
    }
    for path, ops in doc["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, op in ops.items():
            assert op.get("security") == [{"ApiKey": []}], (method, path)
            ok = next(c for c in op["responses"] if c.startswith("2"))
            assert ok == "204" or op["responses"][ok]["content"], (method, path)
    # Lists are typed, with a next link, and the meeting has an example.
    assert "next" in doc["components"]["schemas"]["MeetingList"]["properties"]
    assert doc["components"]["schemas"]["MeetingOut"].get("examples")
    assert {"/v1/meetings/{meeting_id}/unwaive", "/v1/meetings/{meeting_id}/unsnooze"} <= set(
        doc["paths"]
    )


async def test_every_list_pages_with_a_next_link_and_no_silent_stop(rt, sim, api):
    sb = rt.providers["sandbox"]
    for i in range(3):
        await register(rt, f"rep{i}@seller.io")
    for i in range(7):
        guest = (f"buyer@acme{i % 3}.com",)
        sb.put_event(REP if i % 2 else "rep1@seller.io", event(START + (i + 1) * H, guests=guest))
    await register(rt)
    await sim.run_until(START + 12 * H)
    for path in ("/v1/reps", "/v1/meetings", "/v1/nudges", "/v1/accounts"):
        everything = (await api.get(path)).json()
        assert everything["next"] is None, path
        total = everything["items"]
        assert len(total) >= 2, path
        got, url, pages = [], f"{path}?limit=1", 0
        while url:
            page = (await api.get(url)).json()
            assert len(page["items"]) == 1
            got += page["items"]
            url = page["next"]
            pages += 1
        assert got == total, path
        assert pages == len(total), path
    # Filters stay in the next link.
    page = (await api.get("/v1/meetings", params={"state": "needs_next_step", "limit": 1})).json()
    assert "state=needs_next_step" in page["next"]
    r = await api.get("/v1/meetings", params={"cursor": "not-ours"})
    assert r.status_code == 422 and "cursor" in r.json()["detail"]
    assert (await api.get("/v1/meetings", params={"limit": 0})).status_code == 422


async def test_unwaive_and_unsnooze(rt, sim, api, channel):
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 150 * timedelta(minutes=1))  # the meeting is over
    mid = (await api.get("/v1/meetings")).json()["items"][0]["id"]
    assert (await api.post(f"/v1/meetings/{mid}/waive", json={"reason": "no"})).json()[
        "state"
    ] == "waived"
    r = await api.post(f"/v1/meetings/{mid}/unwaive")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "needs_next_step" and r.json()["waived_reason"] is None
    until = (START + timedelta(days=1)).isoformat()
    assert (await api.post(f"/v1/meetings/{mid}/snooze", json={"until": until})).json()[
        "snoozed_until"
    ]
    await sim.run_until(START + 5 * H)
    assert channel.kinds() == []  # snoozed past the invite window
    r = await api.post(f"/v1/meetings/{mid}/unsnooze")
    assert r.status_code == 200 and r.json()["snoozed_until"] is None
    await sim.settle()
    assert channel.kinds() == ["no_next_step"]
    # Un-doing what is not done changes nothing; unknown ids are 404.
    assert (await api.post(f"/v1/meetings/{mid}/unsnooze")).status_code == 200
    assert (await api.post(f"/v1/meetings/{mid}/unwaive")).json()["state"] == "needs_next_step"
    assert (await api.post("/v1/meetings/nope/unwaive")).status_code == 404
    assert (await api.post("/v1/meetings/nope/unsnooze")).status_code == 404
