"""Business time over /v1: countries, account hours, the account's zone and its source,
working hours from the provider; bad values refused naming the field, nothing written."""

from __future__ import annotations

from dataclasses import replace
from datetime import time, timedelta

import httpx
import pytest

from app.main import create_app
from connectors.base import ProviderHours
from tests.conftest import START
from tests.helpers.calendar import REP, event

H = timedelta(hours=1)


@pytest.fixture
async def api(rt):  # type: ignore[no-untyped-def]
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": "Bearer test-key"}
    ) as client:
        yield client


async def test_a_reps_country_is_given_or_comes_from_its_zone(api) -> None:  # type: ignore[no-untyped-def]
    r = await api.post(
        "/v1/reps", json={"email": REP, "provider": "sandbox", "timezone": "America/New_York"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["country"] == "US"
    r = await api.post(
        "/v1/reps",
        json={
            "email": "luc@seller.io",
            "provider": "sandbox",
            "timezone": "Europe/Paris",
            "country": "be",
        },
    )
    assert r.json()["country"] == "BE"


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "France"}, "country"),
        ({"working_hours": {"start": "17:00", "end": "09:00"}}, "working_hours.end"),
    ],
)
async def test_bad_rep_values_name_the_field(api, body, names) -> None:  # type: ignore[no-untyped-def]
    r = await api.post(
        "/v1/reps", json={"email": REP, "provider": "sandbox", "timezone": "UTC", **body}
    )
    assert r.status_code == 422, r.text
    assert names in r.json()["detail"]
    assert (await api.get("/v1/reps")).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"country": "ZZ"}, "country"),
        ({"working_hours": {"start": "17:00", "end": "09:00"}}, "working_hours.end"),
        ({"working_hours": {"days": ["fri", "caturday"]}}, "working_hours.days[1]"),
        ({"working_hours": "9-5"}, "working_hours"),
    ],
)
async def test_bad_account_values_name_the_field(api, body, names) -> None:  # type: ignore[no-untyped-def]
    r = await api.put("/v1/accounts/emaar.ae", json={"name": "Emaar", **body})
    assert r.status_code == 422, r.text
    assert names in r.json()["detail"]
    assert (await api.get("/v1/accounts/emaar.ae")).status_code == 404  # nothing half-written


async def test_account_hours_country_and_zone(api) -> None:  # type: ignore[no-untyped-def]
    r = await api.put(
        "/v1/accounts/emaar.ae",
        json={"timezone": "Asia/Dubai", "working_hours": {"days": ["sun", "mon", "tue"]}},
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["country"] == "AE"
    assert got["timezone"] == "Asia/Dubai" and got["timezone_source"] == "crm"
    assert got["working_hours"] == {"days": ["mon", "tue", "sun"], "start": "09:00", "end": "17:00"}
    plain = (await api.put("/v1/accounts/acme.com", json={"name": "Acme"})).json()
    assert plain["working_hours"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
    }
    assert plain["timezone"] is None and plain["timezone_source"] is None


async def test_an_account_without_a_crm_zone_takes_the_reps_then_its_peoples(api, rt, sim) -> None:  # type: ignore[no-untyped-def]
    r = await api.post(
        "/v1/reps", json={"email": REP, "provider": "sandbox", "timezone": "Europe/Paris"}
    )
    assert r.status_code == 201
    rt.providers["sandbox"].put_event(REP, event(START + H))  # with someone of acme.com
    await sim.run_until(START + 2 * H)
    acme = await api.get("/v1/accounts/acme.com")  # the CRM never spoke of it
    assert acme.status_code == 200, acme.text
    assert acme.json()["timezone"] == "Europe/Paris"
    assert acme.json()["timezone_source"] == "rep"
    assert (await api.get("/v1/accounts/unknown.com")).status_code == 404
    theirs = replace(
        event(START + 5 * H), organizer_email="dana.smith@acme.com", time_zone="America/Chicago"
    )
    rt.providers["sandbox"].put_event(REP, theirs)
    await sim.run_until(START + 6 * H)
    acme = (await api.get("/v1/accounts/acme.com")).json()
    assert (acme["timezone"], acme["timezone_source"]) == ("America/Chicago", "calendar")
    await api.put("/v1/accounts/acme.com", json={"timezone": "America/New_York"})
    acme = (await api.get("/v1/accounts/acme.com")).json()
    assert (acme["timezone"], acme["timezone_source"]) == ("America/New_York", "crm")


async def test_working_hours_come_from_the_provider_when_none_are_given(api, rt) -> None:  # type: ignore[no-untyped-def]
    rt.providers["sandbox"].hours[REP] = ProviderHours(
        days=(0, 1, 2, 3), start=time(8), end=time(16), time_zone="Europe/London"
    )
    r = await api.post(
        "/v1/reps", json={"email": REP, "provider": "sandbox", "timezone": "Europe/Paris"}
    )
    assert r.json()["working_hours"] == {
        "days": ["mon", "tue", "wed", "thu"],
        "start": "09:00",
        "end": "17:00",
    }
    rt.providers["sandbox"].hours["luc@seller.io"] = ProviderHours(
        days=(0,), start=time(8), end=time(16), time_zone="Europe/Paris"
    )
    given = {"days": ["mon", "tue"], "start": "10:00", "end": "18:00"}
    r = await api.post(
        "/v1/reps",
        json={
            "email": "luc@seller.io",
            "provider": "sandbox",
            "timezone": "Europe/Paris",
            "working_hours": given,
        },
    )
    assert r.json()["working_hours"] == given  # what the CRM gave wins
