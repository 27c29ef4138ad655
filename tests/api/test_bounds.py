"""Inputs are bounded at the edge: out-of-range dates and integers are a 422 naming the
field, never a 500, and nothing is half-written before the refusal."""

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


async def _meeting(api, rt, sim):
    r = await api.post(
        "/v1/reps", json={"email": REP, "provider": "sandbox", "timezone": "Europe/Paris"}
    )
    assert r.status_code == 201, r.text
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 3 * H)
    return (await api.get("/v1/meetings")).json()["items"][0]


HUGE = str(2**64)


@pytest.mark.parametrize("path", ["/v1/accounts", "/v1/meetings", "/v1/nudges"])
@pytest.mark.parametrize("param", ["limit", "offset"])
async def test_huge_integers_in_a_query_are_a_422_naming_the_parameter(api, path, param):
    r = await api.get(path, params={param: HUGE})
    assert r.status_code == 422, r.text
    assert param in r.json()["detail"]


async def test_schedule_far_in_the_future_is_refused_before_any_invite(api, rt, sim):
    m = await _meeting(api, rt, sim)
    before = len(rt.providers["sandbox"].events(REP))
    start = (START + 30 * H).isoformat()
    r = await api.post(
        f"/v1/meetings/{m['id']}/schedule",
        json={"start": start, "end": "9999-12-31T23:59:59+00:00"},
    )
    assert r.status_code == 422, r.text
    assert "end" in r.json()["detail"]
    assert len(rt.providers["sandbox"].events(REP)) == before


async def test_snooze_at_the_end_of_time_is_a_422(api, rt, sim):
    m = await _meeting(api, rt, sim)
    r = await api.post(
        f"/v1/meetings/{m['id']}/snooze", json={"until": "9999-12-31T23:00:00-05:00"}
    )
    assert r.status_code == 422, r.text
    assert "until" in r.json()["detail"]


async def test_a_signal_dated_year_one_is_a_422(api):
    r = await api.post(
        "/v1/accounts/acme.com/signals",
        json={"kind": "small_talk_gone", "occurred_at": "0001-01-01T00:00:00+14:00"},
    )
    assert r.status_code == 422, r.text
    assert "occurred_at" in r.json()["detail"]


async def test_a_follow_up_longer_than_a_day_is_refused_before_any_invite(api, rt, sim):
    m = await _meeting(api, rt, sim)
    before = len(rt.providers["sandbox"].events(REP))
    start = START + 30 * H
    r = await api.post(
        f"/v1/meetings/{m['id']}/schedule",
        json={"start": start.isoformat(), "end": (start + 25 * H).isoformat()},
    )
    assert r.status_code == 422, r.text
    assert "end" in r.json()["detail"]
    assert len(rt.providers["sandbox"].events(REP)) == before


@pytest.mark.parametrize(
    "value", ["1899-12-31T23:59:59+00:00", "2201-01-01T00:00:00+00:00", "2200-12-31T23:00:00-05:00"]
)
async def test_dates_outside_1900_2200_are_refused_naming_the_field(api, value):
    r = await api.post(
        "/v1/accounts/acme.com/signals", json={"kind": "small_talk_gone", "occurred_at": value}
    )
    assert r.status_code == 422, r.text
    assert "occurred_at" in r.json()["detail"] and "1900" in r.json()["detail"]


@pytest.mark.parametrize("value", ["1899-12-31", "2201-01-01", "0001-01-01", "9999-12-31"])
async def test_calendar_dates_outside_1900_2200_are_refused_naming_the_field(api, value):
    r = await api.put("/v1/accounts/acme.com", json={"renewal_date": value})
    assert r.status_code == 422, r.text
    assert "renewal_date" in r.json()["detail"]
