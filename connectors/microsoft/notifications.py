"""Graph change and lifecycle notifications: pure parsing into neutral terms, no I/O.

Graph POSTs ``{"value": [ ... ]}`` to the subscription's ``notificationUrl``:

- a change notification: ``subscriptionId, subscriptionExpirationDateTime, changeType,
  resource, resourceData {@odata.type, @odata.id, @odata.etag, id}, clientState,
  tenantId``. ``resource`` names the user by object id (``Users/{guid}/Events/{id}``)
  even when the subscription named the mailbox by e-mail address, so map notifications
  to reps by ``subscriptionId``, never by ``resource``.
- a lifecycle notification (to ``lifecycleNotificationUrl``): ``subscriptionId,
  subscriptionExpirationDateTime, tenantId, clientState, lifecycleEvent`` with
  ``reauthorizationRequired`` (renew or reauthorize now), ``missed`` (resync: some
  notifications were dropped) or ``subscriptionRemoved`` (create a new subscription
  and resync).

Before a subscription exists Graph validates both URLs with
``POST {url}?validationToken=...``: answer ``200``, ``Content-Type: text/plain``, body
the URL-decoded token, within 10 seconds (see ``validation_token``).

``GraphWebhooks.read`` turns a request into the provider-neutral ``Inbound`` the engine
takes: a handshake, notifications or lifecycle events, whose clientState the
engine checks against the stored subscription with ``matches``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from connectors.base import Inbound, LifecycleEvent, Notification, WebhookRequest
from connectors.http import parse_datetime

ChangeType = Literal["created", "updated", "deleted"]
CHANGE_TYPES: frozenset[str] = frozenset({"created", "updated", "deleted"})
KNOWN_LIFECYCLE_EVENTS: frozenset[str] = frozenset(
    {"reauthorizationRequired", "missed", "subscriptionRemoved"}
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChangeNotification:
    """One item of a change-notification POST."""

    subscription_id: str
    client_state: str | None
    change_type: ChangeType
    resource: str
    resource_id: str | None  # resourceData.id: the event id
    odata_type: str | None
    tenant_id: str | None
    subscription_expires_at: datetime | None
    # resourceData["@odata.etag"]: the version of the resource this change produced. A
    # redelivery carries the same one; two changes to one event carry different ones.
    etag: str | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class LifecycleNotification:
    """One item of a lifecycle-notification POST.

    ``lifecycle_event`` is kept as sent: Graph may add events; check ``known``.
    """

    subscription_id: str
    client_state: str | None
    lifecycle_event: str
    tenant_id: str | None
    subscription_expires_at: datetime | None

    @property
    def known(self) -> bool:
        return self.lifecycle_event in KNOWN_LIFECYCLE_EVENTS


GraphNotification = ChangeNotification | LifecycleNotification


def _items(body: bytes | str | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError as err:
            raise ValueError(f"notification body is not JSON: {err}") from err
    if not isinstance(body, Mapping):
        raise ValueError("notification body: expected a JSON object with 'value'")
    value = body.get("value")
    if not isinstance(value, list):
        raise ValueError("notification body: 'value' must be a list")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ValueError(f"value[{i}]: expected an object")
    return value


def _str(item: Mapping[str, Any], field: str, i: int, *, required: bool) -> str | None:
    raw = item.get(field)
    if raw is None:
        if required:
            raise ValueError(f"value[{i}].{field}: missing")
        return None
    if not isinstance(raw, str) or (required and not raw):
        raise ValueError(f"value[{i}].{field}: expected a non-empty string, got {raw!r}")
    return raw


def _expires(item: Mapping[str, Any], i: int) -> datetime | None:
    raw = _str(item, "subscriptionExpirationDateTime", i, required=False)
    if raw is None:
        return None
    try:
        parsed = parse_datetime(raw)
    except ValueError as err:
        raise ValueError(f"value[{i}].subscriptionExpirationDateTime: {raw!r}") from err
    if parsed.tzinfo is None:
        raise ValueError(f"value[{i}].subscriptionExpirationDateTime: no offset in {raw!r}")
    return parsed


def _change(item: Mapping[str, Any], i: int) -> ChangeNotification:
    change_type = _str(item, "changeType", i, required=True)
    if change_type not in CHANGE_TYPES:
        raise ValueError(f"value[{i}].changeType: unknown {change_type!r}")
    resource_data = item.get("resourceData")
    if resource_data is not None and not isinstance(resource_data, Mapping):
        raise ValueError(f"value[{i}].resourceData: expected an object")
    resource_data = resource_data or {}
    rid = resource_data.get("id")
    otype = resource_data.get("@odata.type")
    etag = resource_data.get("@odata.etag")
    return ChangeNotification(
        subscription_id=_str(item, "subscriptionId", i, required=True) or "",
        client_state=_str(item, "clientState", i, required=False),
        change_type=change_type,  # type: ignore[arg-type]
        resource=_str(item, "resource", i, required=True) or "",
        resource_id=rid if isinstance(rid, str) else None,
        odata_type=otype if isinstance(otype, str) else None,
        tenant_id=_str(item, "tenantId", i, required=False),
        subscription_expires_at=_expires(item, i),
        etag=etag if isinstance(etag, str) and etag else None,
    )


def _lifecycle(item: Mapping[str, Any], i: int) -> LifecycleNotification:
    return LifecycleNotification(
        subscription_id=_str(item, "subscriptionId", i, required=True) or "",
        client_state=_str(item, "clientState", i, required=False),
        lifecycle_event=_str(item, "lifecycleEvent", i, required=True) or "",
        tenant_id=_str(item, "tenantId", i, required=False),
        subscription_expires_at=_expires(item, i),
    )


def parse_notifications(body: bytes | str | Mapping[str, Any]) -> list[GraphNotification]:
    """Parse either kind of POST body; an item with ``lifecycleEvent`` is a lifecycle one.

    Raises ``ValueError`` naming the offending field on malformed input.
    """
    return [
        _lifecycle(item, i) if "lifecycleEvent" in item else _change(item, i)
        for i, item in enumerate(_items(body))
    ]


def parse_change_notifications(
    body: bytes | str | Mapping[str, Any],
) -> list[ChangeNotification]:
    """Parse a change-notification POST body (``{"value": [...]}``)."""
    out = []
    for i, item in enumerate(_items(body)):
        if "lifecycleEvent" in item:
            raise ValueError(f"value[{i}].lifecycleEvent: lifecycle item in a change body")
        out.append(_change(item, i))
    return out


def parse_lifecycle_notifications(
    body: bytes | str | Mapping[str, Any],
) -> list[LifecycleNotification]:
    """Parse a lifecycle-notification POST body (``{"value": [...]}``)."""
    return [_lifecycle(item, i) for i, item in enumerate(_items(body))]


def validation_token(query: Mapping[str, str]) -> str | None:
    """The ``validationToken`` of a validation request (already URL-decoded), if any.

    Answer it with ``200``, ``Content-Type: text/plain`` and the token as the body.
    """
    token = query.get("validationToken")
    return token if token else None


# Lifecycle events → what the engine does: (renew the subscription now, resync the calendar).
# A removed subscription is renewed, which re-creates it when Graph no longer knows it.
_LIFECYCLE_ACTIONS: dict[str, tuple[bool, bool]] = {
    "reauthorizationRequired": (True, False),
    "missed": (False, True),
    "subscriptionRemoved": (True, True),
}


def as_notification(item: ChangeNotification, received_at: datetime) -> Notification:
    """The provider-neutral form of a change notification.

    Graph has no delivery id. The resource's etag tells a redelivery (same etag) from a
    second change to the same event (new etag); without one, identical notifications
    within a second are one. ``resource`` names the user by object id, never as stored
    at subscription time, so it is not compared (``resource_id`` None).
    """
    version = (item.etag or received_at.strftime("%Y%m%dT%H%M%S"))[:120]
    return Notification(
        channel_id=item.subscription_id,
        secret=item.client_state or "",
        resource_id=None,
        dedupe_key=(
            f"{item.subscription_id}:{item.change_type}:"
            f"{item.resource_id or item.resource}:{version}"
        ),
    )


def as_lifecycle_event(item: LifecycleNotification) -> LifecycleEvent:
    """The provider-neutral form of a lifecycle notification."""
    renew, resync = _LIFECYCLE_ACTIONS.get(item.lifecycle_event, (False, False))
    return LifecycleEvent(
        channel_id=item.subscription_id,
        secret=item.client_state or "",
        event=item.lifecycle_event,
        renew=renew,
        resync=resync,
    )


class GraphWebhooks:
    """``POST /webhooks/microsoft`` (changes) and ``.../lifecycle``; both answer the
    ``validationToken`` handshake before anything else, without a body or clientState."""

    paths: Mapping[str, str] = {
        "": "Graph change notifications; also answers the validationToken handshake.",
        "/lifecycle": (
            "Graph lifecycle notifications: reauthorizationRequired, missed, subscriptionRemoved."
        ),
    }
    accepted_status: int = 202

    def read(self, request: WebhookRequest) -> Inbound:
        """The handshake, or the notifications of the body; ``ValueError`` names a bad field."""
        token = validation_token(request.query)
        if token is not None:
            return Inbound(handshake=token)
        if request.path == "/lifecycle":
            events = parse_lifecycle_notifications(request.body)
            return Inbound(lifecycle=tuple(as_lifecycle_event(e) for e in events))
        items = parse_change_notifications(request.body)
        return Inbound(notifications=tuple(as_notification(i, request.received_at) for i in items))
