"""Graph change/lifecycle notification parsing, on Microsoft's verbatim doc samples."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.base import WatchChannel
from connectors.http import parse_retry_after
from connectors.microsoft.client import GraphError
from connectors.microsoft.notifications import (
    KNOWN_LIFECYCLE_EVENTS,
    ChangeNotification,
    LifecycleNotification,
    as_notification,
    parse_change_notifications,
    parse_lifecycle_notifications,
    parse_notifications,
    validation_token,
)

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "provider-samples" / "msgraph"


def sample(name: str) -> str:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"provider sample {name} not available")
    return path.read_text(encoding="utf-8")


def http_body(name: str) -> tuple[str, dict]:
    """(head, JSON body) of a verbatim .http sample."""
    text = sample(name)
    brace = text.index("{")
    return text[:brace], json.loads(text[brace:])


def test_webhooks_doc_change_notification() -> None:
    [item] = parse_change_notifications(sample("change_notification_webhooks_doc.json"))
    assert item == ChangeNotification(
        subscription_id="{subscription_guid}",
        client_state="secretClientValue",
        change_type="created",
        resource="users/{user_guid}@{tenant_guid}/messages/{long_id_string}",
        resource_id="{long_id_string}",
        odata_type="#Microsoft.Graph.Message",
        tenant_id="84bd8158-6d4d-4958-8b9f-9d6445542f95",
        subscription_expires_at=datetime(2016, 3, 19, 22, 11, 9, 952000, tzinfo=UTC),
    )
    subscription = WatchChannel(
        channel_id="{subscription_guid}", token="secretClientValue", expires_at=datetime.now(UTC)
    )
    assert as_notification(item, datetime.now(UTC)).matches(subscription)


def test_outlook_doc_fragment_with_offset_expiry() -> None:
    # The doc fragment has no outer braces (SOURCES.md): wrap it as Graph sends it.
    body = "{" + sample("change_notification_outlook_without_resource_data.json") + "}"
    [item] = parse_notifications(body)
    assert isinstance(item, ChangeNotification)
    assert item.subscription_id == "c6126aa3-0ed8-412f-a988-71e6cee627c4"
    assert item.resource.startswith("Users/622eaaff-0683-4862-9de4-f2ec83c2bd98/")
    assert item.resource_id == "AAMkAGUwNjQ4ZjIxAAA="
    assert item.subscription_expires_at == datetime(
        2022, 1, 2, 3, 12, 18, 225776, tzinfo=timezone(timedelta(hours=5, minutes=30))
    )
    assert item.client_state == "<<--SpecifiedClientState-->>"


def test_lifecycle_doc_sample_and_each_event() -> None:
    text = sample("lifecycle_notification.json")
    [raw] = parse_lifecycle_notifications(text)
    # The doc's placeholder lists the three events in one string: kept, flagged unknown.
    assert raw.lifecycle_event == "subscriptionRemoved or missed or reauthorizationRequired"
    assert not raw.known
    for event in sorted(KNOWN_LIFECYCLE_EVENTS):
        body = json.loads(text)
        body["value"][0]["lifecycleEvent"] = event
        [item] = parse_notifications(body)
        assert isinstance(item, LifecycleNotification)
        assert item.known and item.lifecycle_event == event
        assert item.subscription_id == "<subscription_guid>"
        assert item.client_state == "<secretClientState>"
        assert item.subscription_expires_at == datetime(2019, 3, 20, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda i: i.pop("subscriptionId"), "subscriptionId"),
        (lambda i: i.update(changeType="moved"), "changeType"),
        (lambda i: i.update(resource=42), "resource"),
        (lambda i: i.update(resourceData="x"), "resourceData"),
        (
            lambda i: i.update(subscriptionExpirationDateTime="soon"),
            "subscriptionExpirationDateTime",
        ),
        (lambda i: i.update(clientState=7), "clientState"),
    ],
)
def test_malformed_change_items_name_the_field(mutate, field) -> None:
    body = json.loads(sample("change_notification_webhooks_doc.json"))
    mutate(body["value"][0])
    with pytest.raises(ValueError, match=field):
        parse_change_notifications(body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "JSON"),
        ("[]", "value"),
        ('{"value": {}}', "value"),
        ('{"value": [1]}', r"value\[0\]"),
        ('{"value": [{"subscriptionId": "s"}]}', "changeType"),
    ],
)
def test_malformed_bodies(body, field) -> None:
    with pytest.raises(ValueError, match=field):
        parse_notifications(body)


def test_lifecycle_item_in_change_body_is_refused() -> None:
    with pytest.raises(ValueError, match="lifecycleEvent"):
        parse_change_notifications(sample("lifecycle_notification.json"))


def test_validation_request_sample() -> None:
    text = sample("validation_request.http")
    url = next(line.split()[1] for line in text.splitlines() if line.startswith("POST"))
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert validation_token(query) == "{opaqueTokenCreatedByMicrosoftGraph}"
    assert validation_token({}) is None


def test_throttling_sample_parses_fractional_retry_after() -> None:
    head, body = http_body("throttling_429_response.http")
    retry_after = next(
        line.split(":", 1)[1].strip()
        for line in head.splitlines()
        if line.startswith("Retry-After")
    )
    response = httpx.Response(429, headers={"Retry-After": retry_after}, json=body)
    err = GraphError.from_response(response)
    assert (err.status, err.code, err.retry_after) == (429, "TooManyRequests", 2.128)
    assert err.inner["request-id"] == "94fb3b52-452a-4535-a601-69e0a90e3aa2"
    assert parse_retry_after("0.05") == 0.05
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date gone by: now
