"""Graph's side of webhooks: the validation handshake, change and lifecycle notifications.

- ``validate(url)``: before a subscription exists (and when its URL changes) Graph POSTs
  ``?validationToken=...`` and wants ``200``, ``text/plain`` and the exact token back
  within ``validation_timeout`` (``change-notifications-delivery-webhooks.md``).
- ``changed(...)``: one ``{"value": [...]}`` POST per live subscription that asked for
  the change type (``outlook-change-notifications-overview.md``).
- ``lifecycle(...)``: ``reauthorizationRequired`` / ``missed`` / ``subscriptionRemoved``
  to the lifecycle URL (``change-notifications-lifecycle-events.md``).

POSTs go out from a ``PushQueue`` thread; ``drop``/``duplicate`` apply to change
notifications only, and a dropped one is still listed (``error="dropped"``).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from tests.emulators.common.push import PushQueue, client_verify
from tests.emulators.microsoft.state import Mailbox, Subscription
from tests.emulators.microsoft.times import fmt7


@dataclass
class Delivery:
    url: str
    body: dict[str, Any]
    status: int | None = None
    error: str | None = None
    kind: str = "change"


def _post(client: httpx.Client, delivery: Delivery) -> httpx.Response:
    return client.post(delivery.url, json=delivery.body)


class GraphNotifier:
    """Validation handshakes and notification POSTs for one tenant's subscriptions."""

    def __init__(self, *, tenant_id: str, validation_timeout: float, ca_file: str | None) -> None:
        self.tenant_id = tenant_id
        self.validation_timeout = validation_timeout
        self.ca_file = ca_file  # the emulator's CA, trusted when a receiver serves HTTPS
        # Graph wants a 2xx within about 3 seconds; a slower endpoint is a failed delivery.
        self.push: PushQueue[Delivery] = PushQueue(
            _post, name="graph-emulator-notifier", timeout=3.0, log_dropped=True
        )

    def start(self) -> None:
        self.push.start(verify=self.ca_file)

    def changed(
        self, subscriptions: list[Subscription], mb: Mailbox, event_id: str, change_type: str,
        now: datetime,
    ) -> None:  # fmt: skip
        """Notify every live subscription on ``mb`` that asked for ``change_type``."""
        for sub in subscriptions:
            if sub.mailbox != mb.email.lower() or change_type not in sub.change_types:
                continue
            if sub.expires <= now:
                continue
            resource = f"Users/{mb.id}/Events/{event_id}"
            item = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": sub.expires.isoformat(timespec="microseconds"),
                "changeType": change_type,
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": f'W/"{secrets.token_urlsafe(18)}"',
                    "id": event_id,
                },
                "clientState": sub.client_state,
                "tenantId": self.tenant_id,
            }
            self.push.submit(Delivery(sub.notification_url, {"value": [item]}))

    def lifecycle(self, sub: Subscription, lifecycle_event: str) -> None:
        """POST one lifecycle notification (to the notification URL when none was given)."""
        body = {
            "value": [
                {
                    "subscriptionId": sub.id,
                    "subscriptionExpirationDateTime": fmt7(sub.expires),
                    "tenantId": self.tenant_id,
                    "clientState": sub.client_state,
                    "lifecycleEvent": lifecycle_event,
                }
            ]
        }
        delivery = Delivery(sub.lifecycle_url or sub.notification_url, body, kind="lifecycle")
        self.push.submit(delivery, knobs=False)

    async def validate(self, url: str) -> str | None:
        """Graph's validation handshake; returns an error message or None."""
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        try:
            async with httpx.AsyncClient(
                timeout=self.validation_timeout, verify=client_verify(self.ca_file)
            ) as client:
                resp = await client.post(
                    url,
                    params={"validationToken": token},
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                    content=b"",
                )
        except httpx.TimeoutException:
            return "Subscription validation request timed out."
        except httpx.HTTPError as err:
            return f"Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ({err!r})"
        if resp.status_code != 200:
            return f"Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. Got {resp.status_code}."
        if "text/plain" not in resp.headers.get("content-type", ""):
            return "Subscription validation request failed. Response must be text/plain."
        if resp.text != token:
            return "Subscription validation request failed. Response must exactly match validationToken query parameter."
        return None
