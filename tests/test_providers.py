"""The provider registry (app/providers.py): what it builds, counts and routes.

The runtime here has only the sandbox configured: the Google and Graph webhook endpoints
exist all the same (their readers need no credentials) and refuse what no channel matches.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from app import providers as registry
from app.db.models import Notification, WatchChannelRow
from app.errors import ProviderNotConfigured
from app.main import create_app
from app.runtime import Runtime
from connectors.base import CalendarRef
from tests.conftest import START
from tests.emulators.google import samples
from tests.helpers.calendar import REP, event, register


@pytest.fixture
async def web(rt: Runtime):
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def test_every_known_provider_names_the_settings_that_configure_it() -> None:
    assert sorted(registry.ENABLED_BY) == sorted(kind.name for kind in registry.KNOWN)
    assert sorted(registry.webhook_readers()) == ["google", "microsoft"]


async def test_only_configured_providers_are_built_and_their_calls_counted(rt: Runtime) -> None:
    assert sorted(rt.providers) == ["sandbox"]
    provider = rt.provider("sandbox")
    assert provider is rt.provider("sandbox")  # one counting wrapper a name
    before = registry.provider_calls[("sandbox", "free_busy")]
    await provider.free_busy(CalendarRef(rep_id="r", email=REP), START, START)
    assert registry.provider_calls[("sandbox", "free_busy")] == before + 1
    with pytest.raises(ProviderNotConfigured, match="'google' is not configured"):
        rt.provider("google")
    with pytest.raises(ProviderNotConfigured, match="NEXTSTEP_SANDBOX"):
        registry.sandbox({})


async def test_the_webhook_paths_are_those_of_the_contract(rt: Runtime, web) -> None:
    paths = {p for p in (await web.get("/openapi.json")).json()["paths"] if "/webhooks" in p}
    assert paths == {"/webhooks/google", "/webhooks/microsoft", "/webhooks/microsoft/lifecycle"}
    assert (await web.post("/webhooks/sandbox")).status_code == 404


async def test_webhooks_of_an_unconfigured_provider_refuse_and_change_nothing(
    rt: Runtime, web
) -> None:
    google = await web.post(
        "/webhooks/google", headers=samples.http_headers("push_exists_message.http")
    )
    assert google.status_code == 403 and "unknown channel" in google.json()["detail"]
    missing = await web.post("/webhooks/google", headers={"X-Goog-Channel-ID": "c"})
    assert missing.status_code == 422 and "X-Goog-Resource-ID" in missing.json()["detail"]
    handshake = await web.post("/webhooks/microsoft/lifecycle", params={"validationToken": "t&1"})
    assert (handshake.status_code, handshake.text) == (200, "t&1")
    assert handshake.headers["content-type"].startswith("text/plain")
    lifecycle = await web.post(
        "/webhooks/microsoft/lifecycle",
        json={"value": [{"subscriptionId": "s", "clientState": "x", "lifecycleEvent": "missed"}]},
    )
    assert lifecycle.status_code == 403
    empty = await web.post("/webhooks/microsoft", json={"value": []})
    assert empty.status_code == 202  # nothing asked, nothing refused
    count = await rt.db.run(lambda s: s.scalar(select(func.count()).select_from(Notification)))
    assert count == 0


async def test_an_in_process_push_is_verified_like_a_webhook(rt: Runtime, sim) -> None:
    await register(rt)
    sb = registry.sandbox(rt.providers)
    sb.put_event(REP, event(START))
    await sim.settle()
    ch = await rt.db.run(lambda s: s.scalars(select(WatchChannelRow)).one())

    def kept() -> int:
        return rt.db.transaction(lambda s: s.scalar(select(func.count()).select_from(Notification)))

    before = kept()
    await sb.redeliver(ch.channel_id, "forged-token", 1000)  # refused: logged, not stored
    assert kept() == before
    await sb.redeliver(ch.channel_id, ch.token, 1000)
    await sb.redeliver(ch.channel_id, ch.token, 1000)  # the same message again: kept once
    assert kept() == before + 1
