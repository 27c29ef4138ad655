"""Events for the CRM: meeting.state_changed and rep.status_changed through the outbox,
signed so that Stripe's and Standard Webhooks' own verifiers accept them, and listed by
``GET /v1/events`` for CRMs that poll."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import httpx
import pytest
import standardwebhooks
import stripe

from app.delivery.channels import WebhookChannel
from app.main import create_app
from connectors.base import AuthFailed
from tests.conftest import START
from tests.helpers.calendar import REP, event, register

H = timedelta(hours=1)
SECRET = "s3cret-of-the-crm"


class Receiver:
    """The CRM's webhook endpoint: keeps every request it gets."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200)

    def bodies(self, type_: str | None = None) -> list[dict]:
        out = [json.loads(r.content) for r in self.requests]
        return [b for b in out if type_ is None or b.get("type") == type_]


@pytest.fixture
async def crm(rt):
    receiver = Receiver()
    rt.channels["webhook"] = WebhookChannel(
        "https://crm.example/hook", SECRET, client=receiver.client
    )
    yield receiver
    await receiver.client.aclose()


@pytest.fixture
async def api(rt):
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": "Bearer test-key"}
    ) as client:
        yield client


async def test_every_state_change_reaches_the_crm_signed(rt, sim, crm, api):
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    m = sb.put_event(REP, event(START + H))
    await sim.run_until(START + 3 * H)  # the meeting ended, nothing booked
    fu = sb.put_event(REP, event(START + 30 * H))
    await sim.settle()
    sb.respond(REP, fu.event_id, "dana.smith@acme.com", "accepted")
    await sim.settle()

    changes = [
        (b["previous_state"], b["meeting"]["state"])
        for b in crm.bodies("meeting.state_changed")
        if b["meeting"]["event_id"] == m.event_id
    ]
    assert changes == [
        ("upcoming", "needs_next_step"),
        ("needs_next_step", "invited"),
        ("invited", "secured"),
    ]
    last = crm.bodies("meeting.state_changed")[-1]
    assert set(last) >= {"type", "id", "occurred_at", "meeting", "previous_state"}
    # The meeting is the one GET /v1/meetings/{id} shows.
    shown = (await api.get(f"/v1/meetings/{last['meeting']['id']}")).json()
    assert last["meeting"] == shown
    assert last["meeting"]["rep_id"] == rep["id"]
    assert last["meeting"]["follow_up"]["responses"] == {"dana.smith@acme.com": "accepted"}


async def test_waiving_is_a_state_change_too(rt, sim, crm, api):
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 3 * H)
    mid = (await api.get("/v1/meetings")).json()["items"][0]["id"]
    r = await api.post(f"/v1/meetings/{mid}/waive", json={"reason": "they bought already"})
    assert r.status_code == 200, r.text
    await sim.settle()
    last = crm.bodies("meeting.state_changed")[-1]
    assert (last["previous_state"], last["meeting"]["state"]) == ("needs_next_step", "waived")


async def test_stripe_and_standard_webhooks_libraries_verify_what_nextstep_sends(rt, sim, crm):
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 3 * H)
    assert crm.requests
    for req in crm.requests:
        body = json.loads(req.content)
        # Stripe's verifier, with the secret as configured.
        assert stripe.WebhookSignature.verify_header(
            req.content.decode(), req.headers["X-NextStep-Signature"], SECRET, tolerance=300
        )
        parsed = stripe.Webhook.construct_event(
            req.content, req.headers["X-NextStep-Signature"], SECRET
        )
        assert parsed["id"] == body["id"]
        # Standard Webhooks' verifier, with the secret's bytes.
        verified = standardwebhooks.Webhook(SECRET.encode()).verify(req.content, dict(req.headers))
        assert verified == body
        assert req.headers["webhook-id"] == body["id"] == req.headers["Idempotency-Key"]
        # Both signatures carry the same real time.
        t = req.headers["X-NextStep-Signature"].split(",")[0].removeprefix("t=")
        assert req.headers["webhook-timestamp"] == t


async def test_a_whsec_secret_verifies_as_is_with_both_libraries():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    got: list[httpx.Request] = []
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: got.append(r) or httpx.Response(204))
    )
    channel = WebhookChannel("https://crm.example/hook", secret, client=client)
    from app.delivery.channels import Outbound

    result = await channel.send(Outbound(nudge_id="evt-1", payload={"id": "evt-1", "x": "é"}))
    assert result.ok
    req = got[0]
    assert standardwebhooks.Webhook(secret).verify(req.content, dict(req.headers))
    assert stripe.WebhookSignature.verify_header(
        req.content.decode(), req.headers["X-NextStep-Signature"], secret
    )
    # A forged body fails both.
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(req.content + b" ", dict(req.headers))
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(
            req.content.decode() + " ", req.headers["X-NextStep-Signature"], secret
        )
    await client.aclose()


async def test_events_are_listed_in_order_with_cursor_pages(rt, sim, api):
    # No webhook at all: a CRM that polls still sees every event.
    sb = rt.providers["sandbox"]
    await register(rt)
    for i in range(3):
        sb.put_event(REP, event(START + (i + 1) * H, guests=(f"p{i}@acme{i}.com",)))
    await sim.run_until(START + 8 * H)
    everything = (await api.get("/v1/events")).json()
    assert everything["next"] is None
    kinds = [e["type"] for e in everything["items"]]
    assert kinds.count("meeting.state_changed") == 3 and "rep.status_changed" in kinds
    page1 = (await api.get("/v1/events", params={"limit": 2})).json()
    assert len(page1["items"]) == 2 and page1["next"]
    page2 = (await api.get(page1["next"])).json()
    page3 = (await api.get(page2["next"])).json() if page2["next"] else {"items": []}
    ids = [e["id"] for e in page1["items"] + page2["items"] + page3["items"]]
    assert ids == [e["id"] for e in everything["items"]]
    # after = the last id: nothing new yet; a new change shows up after it.
    last = ids[-1]
    assert (await api.get("/v1/events", params={"after": last})).json() == {
        "items": [],
        "next": None,
    }
    only = (await api.get("/v1/events", params={"type": "rep.status_changed"})).json()
    assert {e["type"] for e in only["items"]} == {"rep.status_changed"}
    # Events are not nudges.
    assert all(
        n["kind"] != "meeting.state_changed" for n in (await api.get("/v1/nudges")).json()["items"]
    )
    r = await api.get("/v1/events", params={"after": "no-such-event"})
    assert r.status_code == 404 and "after" in r.json()["detail"]
    r = await api.get("/v1/events", params={"type": "nudge"})
    assert r.status_code == 422 and "type" in r.json()["detail"]
    assert (await api.get("/v1/events", headers={"Authorization": ""})).status_code == 401


async def test_revoked_access_mid_run_tells_the_manager_once_and_the_crm(rt, sim, crm, channel):
    sb = rt.providers["sandbox"]
    anne = await register(rt, manager_email="boss@seller.io")
    bob = await register(rt, "bob@seller.io")
    sb.put_event(REP, event(START + H))
    sb.put_event("bob@seller.io", event(START + H, rep="bob@seller.io"))
    await sim.settle()
    sb.refused.add(REP)  # Anne's access is revoked by her workspace admin
    for _ in range(3):  # several rounds fail while the access stays revoked
        sb.put_event(REP, event(START + 2 * H))
        sb.put_event("bob@seller.io", event(START + 2 * H, rep="bob@seller.io"))
        await sim.run_until(sim.clock.now() + 2 * H)
    lost = [o for o in channel.sent if o.payload["kind"] == "connection_lost"]
    assert len(lost) == 1
    assert lost[0].payload["recipient"] == "boss@seller.io"
    assert lost[0].payload["rep"]["email"] == REP and REP in lost[0].payload["message"]
    status = [b for b in crm.bodies("rep.status_changed") if b["rep"]["status"] == "auth_failed"]
    assert len(status) == 1
    assert status[0]["rep"]["id"] == anne["id"] and status[0]["previous_status"] == "active"
    # Bob went on: his meetings still get their nudges, his status is untouched.
    bob_nudges = [o for o in channel.sent if o.payload["rep"]["email"] == "bob@seller.io"]
    assert {o.payload["kind"] for o in bob_nudges} >= {"no_next_step"}
    assert not [b for b in crm.bodies("rep.status_changed") if b["rep"]["id"] == bob["id"]][1:]
    # The access comes back: the rep recovers; the next outage tells again.
    sb.refused.discard(REP)
    sb.put_event(REP, event(START + 20 * H))
    await sim.run_until(sim.clock.now() + 2 * H)
    statuses = [
        b["rep"]["status"] for b in crm.bodies("rep.status_changed") if b["rep"]["id"] == anne["id"]
    ]
    assert statuses[-1] == "active"
    sb.fail_next.append(AuthFailed("sandbox: consent withdrawn"))
    sb.put_event(REP, event(START + 30 * H))
    await sim.run_until(sim.clock.now() + 2 * H)
    assert [o.payload["kind"] for o in channel.sent].count("connection_lost") == 2


async def test_without_a_manager_the_admin_hears_of_it(database_url, clock, channel):
    from app.config import load_settings
    from app.main import build_runtime, close_runtime
    from app.simulation import Simulation

    settings = load_settings(
        database_url=database_url,
        sandbox=True,
        internal_domains="seller.io",
        api_keys="test-key",
        sync_min_interval_seconds=0,
        admin_email="it@seller.io",
    )
    if not database_url.startswith("sqlite"):
        from app.db import migrate
        from app.db.engine import make_engine

        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
    rt = build_runtime(settings, clock=clock, channels={"recording": channel})
    try:
        sb = rt.providers["sandbox"]
        sb.refused.add(REP)
        rep = await register(rt)
        await Simulation(rt).settle()
        assert rep["status"] == "auth_failed"
        lost = [o for o in channel.sent if o.payload["kind"] == "connection_lost"]
        assert [o.payload["recipient"] for o in lost] == ["it@seller.io"]
    finally:
        await close_runtime(rt)


async def test_a_watch_that_cannot_be_renewed_tells_the_manager_once(rt, sim, channel):
    from connectors.base import Unavailable

    sb = rt.providers["sandbox"]
    rep = await register(rt, manager_email="boss@seller.io")
    expires = rep["calendar"]["watch"][0]["expires_at"]
    sb.fail_next.extend(Unavailable("sandbox: push service down") for _ in range(5000))
    await sim.run_until(expires + 2 * H)
    lost = [o for o in channel.sent if o.payload["kind"] == "connection_lost"]
    assert len(lost) == 1
    assert lost[0].payload["recipient"] == "boss@seller.io"
    assert "watch could not be renewed" in lost[0].payload["message"]


async def test_the_log_order_is_the_commit_order_so_a_poller_never_skips(rt, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite runs one write transaction at a time: nothing can overtake")
    from app.nudges import events as nudge_events
    from app.nudges import service as nudge_service

    now = START
    first, second = rt.db.sessions(), rt.db.sessions()
    try:
        first.begin()
        second.begin()

        def emit(session, name: str) -> str:
            return nudge_service.emit_risk_changed(
                session,
                rt,
                health={"domain": f"{name}.com", "level": "watch"},
                previous=None,
                now=now,
            )

        early = emit(first, "early")  # begun first …
        late = emit(second, "late")
        second.commit()  # … but the other one commits first
        seen = await rt.db.run(nudge_events.list_events, after=None, type=None, limit=10)
        assert [e["id"] for e in seen[0]] == [late]
        first.commit()
        after_late = await rt.db.run(nudge_events.list_events, after=late, type=None, limit=10)
        assert [e["id"] for e in after_late[0]] == [early]  # not skipped
    finally:
        first.close()
        second.close()
