"""CRM write-back: a task on the account's HubSpot company / Salesforce record for each
nudge, completed when the meeting is secured or waived, the deal's next step kept current;
through the outbox, so a CRM that answers 429 and 5xx for a while, or loses an answer,
still ends with exactly one task per nudge. Emulators over loopback."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.accounts.schemas import AccountIn
from app.accounts.service import upsert as put_account
from app.delivery.channels import HubSpotChannel, SalesforceChannel
from app.meetings.service import waive
from tests.conftest import START
from tests.emulators.crm.hubspot import HubSpotEmulator
from tests.emulators.crm.salesforce import SalesforceEmulator
from tests.helpers.calendar import REP, event, meeting_of, register

H = timedelta(hours=1)
COMPANY = "9876543210"


@pytest.fixture
def hubspot():
    emu = HubSpotEmulator().start()
    emu.owners[REP] = "77001"
    emu.add_company(COMPANY, ("Acme expansion", False), ("Acme pilot", True))
    yield emu
    emu.stop()


@pytest.fixture
def salesforce():
    emu = SalesforceEmulator().start()
    yield emu
    emu.stop()


async def _meeting_without_next_step(rt, sim, crm_id: str, **rep: object):
    registered = await register(rt, **rep)
    await rt.db.run(put_account, rt, "acme.com", AccountIn(name="Acme", crm_id=crm_id))
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    await sim.run_until(START + 5 * H)
    return registered, sb, m


async def test_hubspot_task_per_nudge_completed_when_secured(rt, sim, channel, hubspot):
    rt.channels["hubspot"] = HubSpotChannel(hubspot.token, api_root=hubspot.api_root)
    _, sb, m = await _meeting_without_next_step(rt, sim, COMPANY)
    (nudge,) = [o.payload for o in channel.sent if o.payload["kind"] == "no_next_step"]
    (task,) = hubspot.tasks.values()
    props = task["props"]
    assert task["companies"] == [COMPANY]
    assert props["hs_task_status"] == "NOT_STARTED"
    assert props["hubspot_owner_id"] == "77001"  # HubSpot knows the rep by e-mail
    assert datetime.fromisoformat(props["hs_timestamp"]) == datetime.fromisoformat(
        nudge["window"]["closed_at"]
    )
    assert nudge["message"] in props["hs_task_body"]
    open_deal = next(d for d in hubspot.deals.values() if d["hs_is_closed"] == "false")
    closed_deal = next(d for d in hubspot.deals.values() if d["hs_is_closed"] == "true")
    assert open_deal["hs_next_step"].startswith("Book the follow-up")
    assert closed_deal["hs_next_step"] == ""  # a closed deal is left alone

    fu = sb.put_event(REP, event(START + 30 * H))
    sb.respond(REP, fu.event_id, "dana.smith@acme.com", "accepted")
    await sim.settle()
    (task,) = hubspot.tasks.values()
    assert task["props"]["hs_task_status"] == "COMPLETED"
    assert "accepted" in open_deal["hs_next_step"]


async def test_hubspot_down_for_a_while_and_a_lost_answer_make_one_task(rt, sim, hubspot):
    hubspot.rate_limit(times=3)
    hubspot.http_error(503, times=3)
    hubspot.lose_next_create()
    rt.channels["hubspot"] = HubSpotChannel(hubspot.token, api_root=hubspot.api_root)
    await _meeting_without_next_step(rt, sim, COMPANY)
    await sim.run_until(START + 10 * H)
    assert len(hubspot.tasks) == 1
    creates = [r for r in hubspot.requests if r == ("POST", "/crm/v3/objects/tasks")]
    assert len(creates) == 1  # the retry found the task it had made


async def test_escalations_add_no_task_and_foreign_ids_are_left_alone(rt, sim, hubspot, channel):
    rt.channels["hubspot"] = HubSpotChannel(hubspot.token, api_root=hubspot.api_root)
    await _meeting_without_next_step(rt, sim, COMPANY, manager_email="boss@seller.io")
    await sim.run_until(START + timedelta(days=6))
    assert "escalation" in channel.kinds()
    assert len(hubspot.tasks) == 1  # the rep's task stays open; the manager gets no task
    # An account whose crm_id is not a HubSpot company id gets no write at all.
    await rt.db.run(put_account, rt, "acme.com", AccountIn(crm_id="001000000000001AAA"))
    rt.providers["sandbox"].put_event(REP, event(START + 6 * 24 * H + H))
    before = len(hubspot.requests)
    await sim.run_until(START + timedelta(days=7))
    assert len(hubspot.requests) == before


async def test_salesforce_task_completed_when_waived_and_next_step_kept(
    rt, sim, channel, salesforce
):
    account = salesforce.add_account(("Acme renewal", False))
    rt.channels["salesforce"] = SalesforceChannel(
        salesforce.instance_url, salesforce.client_id, salesforce.client_secret
    )
    rep, sb, m = await _meeting_without_next_step(rt, sim, account)
    (nudge,) = [o.payload for o in channel.sent if o.payload["kind"] == "no_next_step"]
    (task,) = salesforce.tasks.values()
    assert task["WhatId"] == account and task["Status"] == "Not Started"
    assert task["ActivityDate"] == nudge["window"]["closed_at"][:10]
    assert nudge["message"] in task["Description"]
    (opp,) = salesforce.opportunities.values()
    assert opp["NextStep"].startswith("Book the follow-up")

    row = await meeting_of(rt, rep["id"], m.event_id)
    await rt.db.run(waive, rt, row.id, "they chose a competitor")
    await sim.settle()
    assert task["Status"] == "Completed" and task["IsClosed"] is True
    assert opp["NextStep"] == "No follow-up planned after Acme discovery: they chose a competitor"


async def test_salesforce_limits_outages_expired_tokens_and_lost_answers(rt, sim, salesforce):
    account = salesforce.add_account()
    salesforce.limit_exceeded(times=2)
    salesforce.http_error(503, times=2)
    salesforce.lose_next_create()
    rt.channels["salesforce"] = SalesforceChannel(
        salesforce.instance_url, salesforce.client_id, salesforce.client_secret
    )
    await _meeting_without_next_step(rt, sim, account)
    await sim.run_until(START + 10 * H)
    assert len(salesforce.tasks) == 1
    creates = [
        r for r in salesforce.requests if r == ("POST", "/services/data/v60.0/sobjects/Task")
    ]
    assert len(creates) == 1
    # A token that expired is replaced at the next write.
    salesforce.expire_tokens()
    signed_in = salesforce.token_requests
    m2 = rt.providers["sandbox"].put_event(REP, event(START + 11 * H))
    await sim.run_until(START + 16 * H)
    assert len(salesforce.tasks) == 2 and salesforce.token_requests == signed_in + 1
    assert m2


async def test_wrong_salesforce_credentials_are_final_not_retried(rt, sim, salesforce):
    from sqlalchemy import select

    from app.db.models import Delivery

    account = salesforce.add_account()
    rt.channels["salesforce"] = SalesforceChannel(salesforce.instance_url, "nope", "nope")
    await _meeting_without_next_step(rt, sim, account)
    (row,) = await rt.db.run(
        lambda s: list(s.scalars(select(Delivery).where(Delivery.channel == "salesforce")))
    )
    assert row.status == "failed" and "invalid_client" in row.last_error


async def test_a_crm_down_for_an_hour_loses_nothing(rt, sim, hubspot):
    hubspot.http_error(503, times=10_000)  # down from the start …
    rt.channels["hubspot"] = HubSpotChannel(hubspot.token, api_root=hubspot.api_root)
    await register(rt)
    await rt.db.run(put_account, rt, "acme.com", AccountIn(crm_id=COMPANY))
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 4 * H)  # the nudge is due at START + 4h
    await sim.run_until(START + 5 * H + 5 * 60 * timedelta(seconds=1))  # … for an hour
    assert hubspot.tasks == {}
    hubspot._faults.clear()  # back
    await sim.run_until(START + 8 * H)
    assert len(hubspot.tasks) == 1
