"""Webhook requests in neutral terms: each provider's reader, and the one proof check.

The readers are pure; the engine's intake (app/webhooks) takes what they return. End to
end, through `nextstep serve`, tests/e2e covers both providers' webhooks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import (
    CalendarProvider,
    LifecycleEvent,
    Notification,
    WatchChannel,
    WebhookRequest,
)
from connectors.google.connector import GoogleConnector
from connectors.microsoft import MicrosoftConnector
from connectors.sandbox.provider import SandboxProvider
from tests.emulators.google import samples

MS_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "provider-samples" / "msgraph"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CHANNEL = WatchChannel(channel_id="c1", token="s3cret", resource_id="r1", expires_at=NOW)


def request(path: str = "", *, headers=None, query=None, body: bytes = b"") -> WebhookRequest:
    return WebhookRequest(
        path=path, headers=headers or {}, query=query or {}, body=body, received_at=NOW
    )


def ms_sample(name: str) -> bytes:
    path = MS_SAMPLES / name
    if not path.exists():
        pytest.skip(f"provider sample {name} not available")
    return path.read_bytes()


# --- the proof ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "proves"),
    [
        (Notification(channel_id="c1", secret="s3cret", resource_id="r1", dedupe_key="k"), True),
        (Notification(channel_id="c1", secret="s3cret", dedupe_key="k"), True),  # id unknown
        (Notification(channel_id="c2", secret="s3cret", resource_id="r1", dedupe_key="k"), False),
        (Notification(channel_id="c1", secret="s3cre", resource_id="r1", dedupe_key="k"), False),
        (Notification(channel_id="c1", secret="", resource_id="r1", dedupe_key="k"), False),
        (Notification(channel_id="c1", secret="s3cret", resource_id="r2", dedupe_key="k"), False),
    ],
)
def test_a_notification_proves_its_channel_only_exactly(note: Notification, proves: bool) -> None:
    assert note.matches(CHANNEL) is proves


def test_an_empty_secret_never_matches_even_an_empty_stored_one() -> None:
    blank = replace(CHANNEL, token="")
    assert not Notification(channel_id="c1", secret="", dedupe_key="k").matches(blank)
    assert not LifecycleEvent(channel_id="c1", secret="", event="missed").matches(blank)
    assert LifecycleEvent(channel_id="c1", secret="s3cret", event="missed").matches(CHANNEL)
    assert not LifecycleEvent(channel_id="c1", secret="other", event="x").matches(CHANNEL)


def test_a_notification_names_its_channel_and_message() -> None:
    with pytest.raises(ValueError, match="channel id"):
        Notification(channel_id="", secret="s", dedupe_key="k")
    with pytest.raises(ValueError, match="dedupe key"):
        Notification(channel_id="c", secret="s", dedupe_key="")


# --- what each provider declares -----------------------------------------------------------


def test_each_provider_declares_renewal_and_webhooks() -> None:
    declared = {
        p.name: (p.renewal, sorted(p.webhooks.paths) if p.webhooks else None)
        for p in (GoogleConnector, MicrosoftConnector, SandboxProvider)
    }
    assert declared == {
        "google": ("replace", [""]),
        "microsoft": ("in_place", ["", "/lifecycle"]),
        "sandbox": ("replace", None),  # pushes in-process instead
    }
    assert isinstance(SandboxProvider(), CalendarProvider)


# --- Google ----------------------------------------------------------------------------------


def test_google_reads_the_headers_into_one_notification() -> None:
    reader = GoogleConnector.webhooks
    assert reader is not None and reader.accepted_status == 200
    headers = samples.http_headers("push_exists_message.http")
    inbound = reader.read(request(headers=headers))
    assert inbound.handshake is None and inbound.lifecycle == ()
    assert inbound.notifications == (
        Notification(
            channel_id="4ba78bf0-6a47-11e2-bcfd-0800200c9a66",
            secret="398348u3tu83ut8uu38",
            resource_id="ret08u3rv24htgh289g",
            dedupe_key="4ba78bf0-6a47-11e2-bcfd-0800200c9a66:10",
            kind="change",
        ),
    )
    sync = reader.read(request(headers=samples.http_headers("push_sync_message.http")))
    assert sync.notifications[0].kind == "sync"
    del headers["X-Goog-Channel-Token"]  # optional on the wire: then it proves nothing
    assert reader.read(request(headers=headers)).notifications[0].secret == ""
    with pytest.raises(ValueError, match="X-Goog-Resource-ID"):
        reader.read(request(headers={"X-Goog-Channel-ID": "c"}))


# --- Microsoft Graph -------------------------------------------------------------------------


def test_graph_answers_the_handshake_on_both_paths_before_reading_a_body() -> None:
    reader = MicrosoftConnector.webhooks
    assert reader is not None and reader.accepted_status == 202
    for path in ("", "/lifecycle"):
        inbound = reader.read(request(path, query={"validationToken": "a <b> é"}, body=b"x"))
        assert inbound.handshake == "a <b> é" and inbound.notifications == ()


def test_graph_change_notifications_dedupe_by_etag() -> None:
    reader = MicrosoftConnector.webhooks
    assert reader is not None
    body = json.loads(ms_sample("change_notification_webhooks_doc.json"))
    [note] = reader.read(request(body=json.dumps(body).encode())).notifications
    assert (note.channel_id, note.secret, note.resource_id, note.kind) == (
        "{subscription_guid}",
        "secretClientValue",
        None,  # Graph names the user by object id: nothing stored to compare with
        "change",
    )
    item = body["value"][0]
    item["resourceData"]["@odata.etag"] = 'W/"1"'
    first = reader.read(request(body=json.dumps(body).encode())).notifications[0]
    again = reader.read(request(body=json.dumps(body).encode())).notifications[0]
    item["resourceData"]["@odata.etag"] = 'W/"2"'
    second = reader.read(request(body=json.dumps(body).encode())).notifications[0]
    assert first.dedupe_key == again.dedupe_key != second.dedupe_key
    with pytest.raises(ValueError, match="lifecycleEvent"):
        reader.read(request(body=ms_sample("lifecycle_notification.json")))


@pytest.mark.parametrize(
    ("event", "renew", "resync"),
    [
        ("reauthorizationRequired", True, False),
        ("missed", False, True),
        ("subscriptionRemoved", True, True),
        ("somethingNew", False, False),  # acknowledged, otherwise ignored
    ],
)
def test_graph_lifecycle_events_say_what_to_do(event: str, renew: bool, resync: bool) -> None:
    reader = MicrosoftConnector.webhooks
    assert reader is not None
    body = json.loads(ms_sample("lifecycle_notification.json"))
    body["value"][0]["lifecycleEvent"] = event
    inbound = reader.read(request("/lifecycle", body=json.dumps(body).encode()))
    assert inbound.lifecycle == (
        LifecycleEvent(
            channel_id="<subscription_guid>",
            secret="<secretClientState>",
            event=event,
            renew=renew,
            resync=resync,
        ),
    )
