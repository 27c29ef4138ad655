"""Graph change and lifecycle notifications: pure parsing, no I/O.

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
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from connectors.microsoft.timezones import parse_graph_datetime

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


Notification = ChangeNotification | LifecycleNotification


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
        parsed = parse_graph_datetime(raw)
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


def parse_notifications(body: bytes | str | Mapping[str, Any]) -> list[Notification]:
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


def verify(client_state_received: str | None, client_state_stored: str | None) -> bool:
    """True when the echoed clientState matches ours (constant-time compare)."""
    if not client_state_received or not client_state_stored:
        return False
    return hmac.compare_digest(
        client_state_received.encode("utf-8"), client_state_stored.encode("utf-8")
    )


def validation_token(query: Mapping[str, str]) -> str | None:
    """The ``validationToken`` of a validation request (already URL-decoded), if any.

    Answer it with ``200``, ``Content-Type: text/plain`` and the token as the body.
    """
    token = query.get("validationToken")
    return token if token else None
