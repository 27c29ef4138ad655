"""Graph subscriptions: validation handshake, lifetime cap, renew, delete, notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.base import CalendarRef, ProviderError, WatchChannel
from connectors.microsoft import MicrosoftConnector
from connectors.microsoft.notifications import (
    ChangeNotification,
    LifecycleNotification,
    as_lifecycle_event,
    as_notification,
    parse_change_notifications,
    parse_lifecycle_notifications,
)
from tests.emulators.microsoft.emulator import GraphEmulator
from tests.emulators.microsoft.harness import (
    CertPair,
    RunningEmulator,
    WebhookReceiver,
    generate_self_signed_cert,
    run_emulator,
    ssl_context,
    trust_env,
)

REP = "rep@contoso.com"
CAL = CalendarRef(rep_id="rep-1", email=REP)
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    return generate_self_signed_cert(tmp_path_factory.mktemp("ms-cert"))


@pytest.fixture
def ms(cert: CertPair, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    for key, value in trust_env(cert).items():
        monkeypatch.setenv(key, value)
    emulator = GraphEmulator(validation_timeout=0.5)
    with run_emulator(cert, emulator) as running:
        running.emulator.add_user(REP)
        yield running


@pytest.fixture
async def connector(ms: RunningEmulator) -> AsyncIterator[MicrosoftConnector]:
    conn = MicrosoftConnector(
        ms.tenant_id,
        ms.client_id,
        ms.client_secret,
        authority=ms.authority,
        graph_root=ms.graph_root,
        backoff_base=0.001,
        backoff_cap=0.005,
    )
    yield conn
    await conn.aclose()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


async def test_watch_validates_both_urls_then_creates(ms, connector, hook) -> None:
    channel = await connector.watch(CAL, hook.url)
    assert hook.validations() == ["/webhooks/microsoft", "/webhooks/microsoft/lifecycle"]
    sub = ms.emulator.subscriptions[channel.channel_id]
    assert sub.notification_url == hook.url
    assert sub.lifecycle_url == hook.url + "/lifecycle"
    assert sub.change_types == {"created", "updated", "deleted"}
    assert sub.resource == f"users/{REP}/events"
    assert channel.token == sub.client_state and 32 <= len(channel.token) <= 128
    assert channel.resource_id == f"users/{REP}/events"
    left = channel.expires_at - datetime.now(UTC)
    assert timedelta(minutes=9_900) < left <= timedelta(minutes=10_080)


@pytest.mark.parametrize("mode", ["wrong", "json", "error", "slow"])
async def test_failed_handshake_creates_nothing(ms, connector, hook, mode) -> None:
    hook.mode, hook.delay = mode, 1.0
    with pytest.raises(ProviderError, match="ValidationError"):
        await connector.watch(CAL, hook.url)
    assert ms.emulator.subscriptions == {}


async def test_lifetime_cap_is_enforced_like_graph(ms, connector, hook, cert) -> None:
    token = await connector.client.token()
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": hook.url,
        "resource": f"users/{REP}/events",
        "expirationDateTime": (datetime.now(UTC) + timedelta(minutes=10_081)).isoformat(),
        "clientState": "x",
    }
    async with httpx.AsyncClient(verify=ssl_context(cert)) as http:
        resp = await http.post(
            f"{ms.graph_root}/subscriptions",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "ExtensionError"
    assert "10080 minutes" in error["message"]
    assert hook.validations() == []  # refused before the handshake


async def test_https_notification_url_required_when_strict(ms, connector, hook) -> None:
    ms.emulator.require_https_notification_url = True
    with pytest.raises(ProviderError, match="https"):
        await connector.watch(CAL, hook.url)


async def test_renew_patches_and_recreates_when_gone(ms, connector, hook) -> None:
    channel = await connector.watch(CAL, hook.url)
    ms.emulator.subscriptions[channel.channel_id].expires = datetime.now(UTC) + timedelta(hours=1)
    renewed = await connector.renew(CAL, channel, hook.url)
    assert (renewed.channel_id, renewed.token) == (channel.channel_id, channel.token)
    assert renewed.expires_at > datetime.now(UTC) + timedelta(days=6)
    assert ms.emulator.calls["PATCH subscriptions"] == 1
    assert len(hook.validations()) == 2  # a renewal is not re-validated
    # Graph lost it (expired while we were down): renew creates a new one.
    ms.emulator.subscriptions[channel.channel_id].expires = datetime.now(UTC) - timedelta(seconds=1)
    fresh = await connector.renew(CAL, renewed, hook.url)
    assert fresh.channel_id != channel.channel_id and fresh.token != channel.token
    assert set(ms.emulator.subscriptions) == {fresh.channel_id}
    assert len(hook.validations()) == 4


async def test_unwatch_deletes_and_tolerates_gone(ms, connector, hook) -> None:
    channel = await connector.watch(CAL, hook.url)
    await connector.unwatch(CAL, channel)
    assert ms.emulator.subscriptions == {}
    await connector.unwatch(CAL, channel)  # 404: fine
    ghost = WatchChannel(channel_id="nope", token="t", expires_at=NOW)
    await connector.unwatch(CAL, ghost)
    assert ms.emulator.calls["DELETE subscriptions"] == 3


async def test_change_notifications_real_bodies(ms, connector, hook) -> None:
    channel = await connector.watch(CAL, hook.url)
    em = ms.emulator
    event_id = em.add_event(REP, subject="x", start=NOW, end=NOW + timedelta(hours=1))
    em.update_event(REP, event_id, subject="y")
    em.duplicate_next_notifications(1)
    em.delete_event(REP, event_id)
    em.drop_next_notifications(1)
    em.add_event(REP, subject="lost", start=NOW, end=NOW + timedelta(hours=1))
    em.wait_for_deliveries()
    items = [n for body in hook.notifications() for n in parse_change_notifications(body)]
    assert [n.change_type for n in items] == ["created", "updated", "deleted", "deleted"]
    first = items[0]
    assert isinstance(first, ChangeNotification)
    assert first.subscription_id == channel.channel_id
    assert as_notification(first, NOW).matches(channel)
    assert not as_notification(first, NOW).matches(replace(channel, token="someone-else"))
    assert first.resource_id == event_id
    assert first.odata_type == "#Microsoft.Graph.Event"
    mailbox_id = em.mailboxes[REP].id
    # the resource names the user by object id, not by the e-mail we subscribed with
    assert first.resource == f"Users/{mailbox_id}/Events/{event_id}"
    assert REP not in first.resource
    assert first.tenant_id == em.tenant_id
    assert first.subscription_expires_at is not None


async def test_lifecycle_notifications(ms, connector, hook) -> None:
    channel = await connector.watch(CAL, hook.url)
    em = ms.emulator
    for event in ("reauthorizationRequired", "missed", "subscriptionRemoved"):
        em.send_lifecycle(channel.channel_id, event)
    em.wait_for_deliveries()
    bodies = hook.notifications("/webhooks/microsoft/lifecycle")
    items = [n for body in bodies for n in parse_lifecycle_notifications(body)]
    assert [n.lifecycle_event for n in items] == [
        "reauthorizationRequired",
        "missed",
        "subscriptionRemoved",
    ]
    assert all(isinstance(n, LifecycleNotification) and n.known for n in items)
    assert all(as_lifecycle_event(n).matches(channel) for n in items)
    assert em.subscriptions == {}  # subscriptionRemoved: gone; renew makes a new one
    fresh = await connector.renew(CAL, channel, hook.url)
    assert fresh.channel_id in em.subscriptions
