"""``/v1.0/subscriptions``: create (after the validation handshake), get, renew, delete,
reauthorize, as ``subscription-post-subscriptions.md`` and ``subscription-update.md`` say.

Event subscriptions last at most 10,080 minutes; an expired subscription is gone (404).
``Mailbox.subscription_seconds`` shortens what is granted (a test knob, not Graph's).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.emulators.microsoft.auth import App
from tests.emulators.microsoft.errors import GraphHTTPError
from tests.emulators.microsoft.http import SUBSCRIBE_ROLES, mailbox_for, read_json
from tests.emulators.microsoft.notifier import GraphNotifier
from tests.emulators.microsoft.state import GraphState, Mailbox, Subscription
from tests.emulators.microsoft.times import parse_dt

EVENT_SUBSCRIPTION_MAX_MINUTES = 10_080


def _parse_resource(resource: str) -> str:
    """The user of ``users/{id}/events`` (or ``users('{id}')/events``)."""
    path = resource.strip().lstrip("/")
    parts = path.split("/")
    if len(parts) == 3 and parts[0].lower() == "users" and parts[2].lower() == "events":
        user = parts[1]
    elif len(parts) == 2 and parts[0].lower().startswith("users(") and parts[1].lower() == "events":
        user = parts[0][6:].strip("')")
    else:
        raise GraphHTTPError(
            400,
            "InvalidRequest",
            f"Resource '{resource}' is not supported by this emulator (users/{{id}}/events).",
        )
    return user


class SubscriptionEndpoints:
    """The subscription handlers; the router in ``handlers.py`` wraps each one."""

    def __init__(self, *, state: GraphState, notifier: GraphNotifier, require_https: bool) -> None:
        self.state = state
        self._lock = state.lock
        self.notifier = notifier
        self.require_https_notification_url = require_https

    def _expiry(self, raw: Any) -> datetime:
        if not isinstance(raw, str):
            raise GraphHTTPError(
                400,
                "InvalidRequest",
                "expirationDateTime is a required property for subscription creation.",
            )
        try:
            expires = parse_dt(raw)
        except ValueError as err:
            raise GraphHTTPError(
                400,
                "InvalidRequest",
                "Could not process subscription creation payload. Are all property names spelled and camelCased properly?",
            ) from err
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        now = self.state.now()
        if expires <= now:
            raise GraphHTTPError(
                400,
                "InvalidRequest",
                "Subscription expiration can only be 10080 minutes in the future.",
            )
        if expires > now + timedelta(minutes=EVENT_SUBSCRIPTION_MAX_MINUTES):
            raise GraphHTTPError(
                400, "ExtensionError",
                f"Subscription expiration can only be {EVENT_SUBSCRIPTION_MAX_MINUTES} minutes in the future.",
            )  # fmt: skip
        return expires

    def _granted(self, mb: Mailbox, asked: datetime) -> datetime:
        """The expiry granted: what was asked, shortened by the mailbox's test knob."""
        if mb.subscription_seconds is None:
            return asked
        return min(asked, self.state.now() + timedelta(seconds=mb.subscription_seconds))

    def _live(self, sid: str, app: App) -> Subscription:
        subscriptions = self.state.subscriptions
        sub = subscriptions.get(sid)
        if sub is not None and sub.expires <= self.state.now():
            del subscriptions[sid]  # Graph deletes expired subscriptions
            sub = None
        if sub is None:
            raise GraphHTTPError(404, "ResourceNotFound", "The object was not found.")
        if sub.app_id != app.client_id:
            raise GraphHTTPError(
                403,
                "ExtensionError",
                "Operation: Get; Exception: [Status Code: Forbidden; Reason: The subscription belongs to another application.]",
            )
        return sub

    async def create(self, request: Request, app: App) -> Response:
        body = await read_json(request)
        with self._lock:
            for name in ("changeType", "notificationUrl", "resource"):
                if not body.get(name):
                    raise GraphHTTPError(
                        400,
                        "InvalidRequest",
                        f"{name} is a required property for subscription creation.",
                    )
            change_types = {c.strip() for c in str(body["changeType"]).split(",") if c.strip()}
            if not change_types or not change_types <= {"created", "updated", "deleted"}:
                raise GraphHTTPError(
                    400, "InvalidRequest", f"Invalid changeType '{body['changeType']}'."
                )
            url = str(body["notificationUrl"])
            lifecycle = body.get("lifecycleNotificationUrl")
            for u in filter(None, [url, lifecycle]):
                if self.require_https_notification_url and not str(u).startswith("https://"):
                    raise GraphHTTPError(
                        400,
                        "InvalidRequest",
                        "The Uri scheme is not https; notificationUrl must be https.",
                    )
            client_state = body.get("clientState")
            if client_state is not None and len(str(client_state)) > 128:
                raise GraphHTTPError(
                    400, "InvalidRequest", "clientState must not exceed 128 characters."
                )
            expires = self._expiry(body.get("expirationDateTime"))
            user = _parse_resource(str(body["resource"]))
            if not (app.roles & SUBSCRIBE_ROLES):
                raise GraphHTTPError(
                    403,
                    "ExtensionError",
                    "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. Check credentials and try again.]",
                )
            mb = mailbox_for(self.state, user, app, SUBSCRIBE_ROLES)
        # The handshake happens before the subscription exists, outside the lock.
        for target in filter(None, [url, lifecycle]):
            problem = await self.notifier.validate(str(target))
            if problem is not None:
                raise GraphHTTPError(400, "ValidationError", problem)
        with self._lock:
            sub = Subscription(
                id=str(uuid.uuid4()),
                app_id=app.client_id,
                resource=str(body["resource"]),
                mailbox=mb.email.lower(),
                change_types=change_types,
                notification_url=url,
                lifecycle_url=str(lifecycle) if lifecycle else None,
                client_state=str(client_state) if client_state is not None else None,
                expires=self._granted(mb, expires),
                creator_id=app.object_id,
                tls=body.get("latestSupportedTlsVersion"),
            )
            self.state.subscriptions[sub.id] = sub
            return JSONResponse(sub.to_json(), status_code=201)

    async def get(self, request: Request, app: App) -> Response:
        with self._lock:
            return JSONResponse(self._live(request.path_params["sid"], app).to_json())

    async def renew(self, request: Request, app: App) -> Response:
        body = await read_json(request)
        with self._lock:
            sub = self._live(request.path_params["sid"], app)
            extra = set(body) - {"expirationDateTime", "notificationUrl"}
            if extra:
                raise GraphHTTPError(
                    400,
                    "InvalidRequest",
                    f"Only expirationDateTime and notificationUrl can be updated; got {sorted(extra)}.",
                )
            expires = self._expiry(body.get("expirationDateTime"))
            new_url = str(body["notificationUrl"]) if body.get("notificationUrl") else None
        if new_url is not None and new_url != sub.notification_url:
            problem = await self.notifier.validate(new_url)  # a new URL is validated again
            if problem is not None:
                raise GraphHTTPError(400, "ValidationError", problem)
        with self._lock:
            sub.expires = self._granted(self.state.mailboxes[sub.mailbox], expires)
            if new_url is not None:
                sub.notification_url = new_url
            return JSONResponse(sub.to_json())

    async def delete(self, request: Request, app: App) -> Response:
        with self._lock:
            sub = self._live(request.path_params["sid"], app)
            del self.state.subscriptions[sub.id]
        return Response(status_code=204)

    async def reauthorize(self, request: Request, app: App) -> Response:
        with self._lock:
            self._live(request.path_params["sid"], app)
        return Response(status_code=200)
