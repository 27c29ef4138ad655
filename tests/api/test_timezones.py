"""A legacy zone on the API is a 422 naming the field and the IANA name to use."""

from __future__ import annotations

import httpx
import pytest

from app.main import create_app


@pytest.fixture
async def api(rt):
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": "Bearer test-key"}
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("zone", "use"),
    [("EST", "America/New_York"), ("CET", "Europe/Paris"), ("Etc/GMT+8", "America/Los_Angeles")],
)
async def test_a_rep_in_a_legacy_zone_is_refused_naming_the_field(api, zone, use) -> None:
    body = {"email": "rep@seller.io", "provider": "sandbox", "timezone": zone}
    r = await api.post("/v1/reps", json=body)
    assert r.status_code == 422
    assert "timezone" in r.json()["detail"] and use in r.json()["detail"]
    assert (await api.get("/v1/reps")).json()["items"] == []  # nothing half-written


async def test_a_rep_in_utc_or_a_place_is_registered(api) -> None:
    for email, zone in (("a@seller.io", "UTC"), ("b@seller.io", "US/Eastern")):
        r = await api.post(
            "/v1/reps", json={"email": email, "provider": "sandbox", "timezone": zone}
        )
        assert r.status_code == 201, r.text
        assert r.json()["timezone"] == zone


async def test_an_account_in_a_legacy_zone_is_refused_naming_the_field(api) -> None:
    r = await api.put("/v1/accounts/acme.com", json={"name": "Acme", "timezone": "EST5EDT"})
    assert r.status_code == 422
    assert "timezone" in r.json()["detail"] and "America/New_York" in r.json()["detail"]
    assert (await api.get("/v1/accounts/acme.com")).status_code == 404  # nothing written
    r = await api.put("/v1/accounts/acme.com", json={"timezone": "America/New_York"})
    assert r.status_code == 200 and r.json()["timezone"] == "America/New_York"
