"""A protocol-faithful Microsoft identity platform + Microsoft Graph (calendar) emulator.

One Starlette app serves both (see README.md for the doc pages followed):

    GET  /{tenant}/v2.0/.well-known/openid-configuration     (MSAL tenant discovery)
    POST /{tenant}/oauth2/v2.0/token                          (client credentials)
    GET  /v1.0/users/{id|upn}/calendarView/delta              (+ $skiptoken / $deltatoken)
    POST /v1.0/users/{id|upn}/calendar/getSchedule
    POST /v1.0/users/{id|upn}/events                          (transactionId idempotent)
    POST /v1.0/subscriptions ; GET/PATCH/DELETE /v1.0/subscriptions/{id}
    POST /v1.0/subscriptions/{id}/reauthorize

Tests drive it through the admin methods of ``GraphEmulator`` (thread-safe).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import queue
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.microsoft.zones import emulator_zone

EVENT_SUBSCRIPTION_MAX_MINUTES = 10_080
DEFAULT_PAGE_SIZE = 10
READ_ROLES = {"Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite"}
SUBSCRIBE_ROLES = {"Calendars.Read", "Calendars.ReadWrite"}
WRITE_ROLES = {"Calendars.ReadWrite"}
RAOP_MESSAGE = (
    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
    "AccessPolicy settings."
)
_RESPONSE_IN = {
    "accepted": "accepted",
    "tentative": "tentativelyAccepted",
    "tentativelyaccepted": "tentativelyAccepted",
    "declined": "declined",
    "none": "none",
    "notresponded": "notResponded",
    "needs_action": "none",
}


def fmt7(dt: datetime) -> str:
    """Graph's Edm.DateTimeOffset with 7 fractional digits and Z."""
    dt = dt.astimezone(UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond:06d}0Z"


def fmt_local(dt: datetime) -> str:
    """Graph's dateTimeTimeZone.dateTime: wall time, 7 fractional digits, no offset."""
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond:06d}0"


def parse_dt(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, frac = text.partition(".")
        digits = "".join(itertools.takewhile(str.isdigit, frac))
        text = f"{head}.{(digits + '000000')[:6]}{frac[len(digits) :]}"
    return datetime.fromisoformat(text)


def new_graph_id(seed: bytes | None = None) -> str:
    raw = b"\x00\x00\x1b\x00" + (seed if seed is not None else secrets.token_bytes(30))
    return "AAMkAD" + base64.b64encode(hashlib.sha256(raw).digest() + raw[4:12]).decode()


class GraphHTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


# --- data --------------------------------------------------------------------------


@dataclass
class App:
    client_id: str
    secret: str
    roles: set[str]
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Attendee:
    email: str
    name: str | None = None
    type: str = "required"
    response: str = "none"  # organizer copy: none|accepted|tentativelyAccepted|declined


@dataclass
class Recurrence:
    freq: str  # "daily" | "weekly"
    count: int
    interval: int = 1


@dataclass
class Event:
    id: str
    subject: str
    start: datetime  # aware
    end: datetime
    time_zone: str  # original zone name (Windows or IANA)
    organizer: tuple[str, str | None]
    attendees: list[Attendee]
    own_response: str  # organizer|notResponded|accepted|tentativelyAccepted|declined|none
    created: datetime
    modified: datetime
    ical_uid: str
    body: str = ""
    all_day: bool = False
    show_as: str = "busy"
    is_cancelled: bool = False
    location: str | None = None
    is_private: bool = False
    transaction_id: str | None = None
    recurrence: Recurrence | None = None
    # occurrence original start -> {"deleted": True} or field overrides (an exception)
    overrides: dict[datetime, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Mailbox:
    email: str
    id: str
    display_name: str
    allowed: bool = True
    rest_enabled: bool = True
    honour_prefer_timezone: bool = True
    share_details: bool = True
    working_time_zone: str = "Pacific Standard Time"
    # Test knob: grant subscriptions on this mailbox at most this many seconds (renewal tests).
    subscription_seconds: float | None = None
    events: dict[str, Event] = field(default_factory=dict)


@dataclass
class Subscription:
    id: str
    app_id: str
    resource: str
    mailbox: str  # e-mail key
    change_types: set[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: datetime
    creator_id: str
    tls: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.app_id,
            "changeType": ",".join(sorted(self.change_types)),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": fmt7(self.expires),
            "creatorId": self.creator_id,
            "latestSupportedTlsVersion": self.tls or "v1_2",
            "notificationContentType": "application/json",
        }


@dataclass
class Fault:
    status: int
    remaining: int
    retry_after: str | None
    endpoint: str | None
    after_processing: bool = False  # do the work, then fail: a lost response


@dataclass
class DeltaRound:
    """Server-side state behind a $skiptoken / $deltatoken."""

    mailbox: str
    start: datetime
    end: datetime
    items: list[tuple[str, dict[str, Any] | None]]  # (id, instance or None = removed)
    offset: int
    page_size: int | None
    snapshot: dict[str, str]  # instance id -> etag, the state this round ends at
    generation: int


@dataclass
class Delivery:
    url: str
    body: dict[str, Any]
    status: int | None = None
    error: str | None = None
    kind: str = "change"


# --- the emulator ------------------------------------------------------------------


class GraphEmulator:
    """State + ASGI app. Admin methods are thread-safe and callable from tests."""

    def __init__(
        self,
        *,
        tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
        client_id: str = "24d3b144-21ae-4080-943f-7067b395b913",
        client_secret: str = "emulator-secret",
        roles: set[str] | None = None,
        validation_timeout: float = 10.0,
        require_https_notification_url: bool = False,
        token_lifetime: int = 3599,
        ca_file: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.validation_timeout = validation_timeout
        self.require_https_notification_url = require_https_notification_url
        self.token_lifetime = token_lifetime
        self.ca_file = ca_file
        self.base_url = ""  # set by the harness once the port is known
        self._lock = threading.RLock()
        self._signing_key = secrets.token_bytes(32)
        self.apps: dict[str, App] = {}
        self.default_client_id = client_id
        self.default_client_secret = client_secret
        self.register_app(
            client_id, client_secret, roles=roles if roles is not None else {"Calendars.ReadWrite"}
        )
        self.mailboxes: dict[str, Mailbox] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self._rounds: dict[str, DeltaRound] = {}
        self._generation: dict[str, int] = {}
        self._faults: list[Fault] = []
        self._issued: set[str] = set()
        self._revoked: set[str] = set()
        self._clock_offset = 0.0
        self._drop_next = 0
        self._duplicate_next = 0
        self.calls: Counter[str] = Counter()
        self.latency = 0.0  # seconds every Graph call takes (to observe concurrency)
        self.in_flight: Counter[str] = Counter()  # per mailbox path segment
        self.max_in_flight: Counter[str] = Counter()
        self.deliveries: list[Delivery] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, url, headers
        self._outbox: queue.Queue[Delivery | None] = queue.Queue()
        self._sender: threading.Thread | None = None
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self.app = Starlette(routes=self._routes())

    # --- lifecycle -----------------------------------------------------------------

    def start_sender(self) -> None:
        if self._sender is None:
            self._sender = threading.Thread(
                target=self._send_loop, name="graph-emulator-notifier", daemon=True
            )
            self._sender.start()

    def stop_sender(self) -> None:
        if self._sender is not None:
            self._outbox.put(None)
            self._sender.join(timeout=10)
            self._sender = None

    # --- clock ---------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._clock_offset)

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (subscription and token expiry)."""
        with self._lock:
            self._clock_offset += seconds

    # --- admin: identities -----------------------------------------------------------

    def register_app(self, client_id: str, secret: str, *, roles: set[str]) -> App:
        with self._lock:
            app = self.apps[client_id] = App(client_id, secret, set(roles))
            return app

    def add_user(
        self,
        email: str,
        *,
        display_name: str | None = None,
        allowed: bool = True,
        rest_enabled: bool = True,
        honour_prefer_timezone: bool = True,
        share_details: bool = True,
        working_time_zone: str = "Pacific Standard Time",
    ) -> Mailbox:
        """Register a mailbox; ``allowed=False`` models an application access policy."""
        with self._lock:
            mb = Mailbox(
                email=email,
                id=str(uuid.uuid4()),
                display_name=display_name or email.split("@")[0].title(),
                allowed=allowed,
                rest_enabled=rest_enabled,
                honour_prefer_timezone=honour_prefer_timezone,
                share_details=share_details,
                working_time_zone=working_time_zone,
            )
            self.mailboxes[email.lower()] = mb
            return mb

    def set_mailbox(self, email: str, **changes: Any) -> None:
        with self._lock:
            mb = self.mailboxes[email.lower()]
            for key, value in changes.items():
                setattr(mb, key, value)

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (Graph answers 401)."""
        with self._lock:
            self._revoked |= self._issued

    # --- admin: events -------------------------------------------------------------

    def add_event(
        self,
        email: str,
        *,
        subject: str,
        start: datetime,
        end: datetime,
        time_zone: str = "UTC",
        attendees: list[tuple[str, str, str]] | list[Attendee] | None = None,
        organizer: str | None = None,
        own_response: str | None = None,
        show_as: str = "busy",
        all_day: bool = False,
        is_cancelled: bool = False,
        recurrence: Recurrence | None = None,
        location: str | None = None,
        is_private: bool = False,
        body: str = "",
        transaction_id: str | None = None,
        notify: bool = True,
    ) -> str:
        """Put an event on ``email``'s calendar; returns its id.

        ``attendees``: ``(email, type, response)`` with response as Graph spells it
        (``none``, ``accepted``, ``tentativelyAccepted``, ``declined``). ``organizer``
        defaults to the mailbox; otherwise ``own_response`` defaults to ``notResponded``.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("aware datetimes please")
        with self._lock:
            mb = self.mailboxes[email.lower()]
            org = (organizer or mb.email).lower()
            org_name = self.mailboxes[org].display_name if org in self.mailboxes else None
            is_org = org == mb.email.lower()
            atts = [
                a if isinstance(a, Attendee) else Attendee(a[0], None, a[1], a[2])
                for a in (attendees or [])
            ]
            now = self.now()
            ev = Event(
                id=new_graph_id(),
                subject=subject,
                start=start,
                end=end,
                time_zone=time_zone,
                organizer=(organizer or mb.email, org_name if not is_org else mb.display_name),
                attendees=atts,
                own_response=own_response or ("organizer" if is_org else "notResponded"),
                created=now,
                modified=now,
                ical_uid="040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
                body=body,
                all_day=all_day,
                show_as=show_as,
                is_cancelled=is_cancelled,
                location=location,
                is_private=is_private,
                transaction_id=transaction_id,
                recurrence=recurrence,
            )
            mb.events[ev.id] = ev
            if notify:
                self._changed(mb, ev.id, "created")
            return ev.id

    def _event(self, email: str, event_id: str) -> tuple[Mailbox, Event]:
        mb = self.mailboxes[email.lower()]
        return mb, mb.events[event_id]

    def update_event(self, email: str, event_id: str, **changes: Any) -> None:
        """Change fields of an event (or series master): subject, start, end, show_as ..."""
        with self._lock:
            mb, ev = self._event(email, event_id)
            for key, value in changes.items():
                if not hasattr(ev, key):
                    raise AttributeError(key)
                setattr(ev, key, value)
            ev.modified = self.now()
            self._changed(mb, event_id, "updated")

    def move_event(self, email: str, event_id: str, start: datetime, end: datetime) -> None:
        self.update_event(email, event_id, start=start, end=end)

    def cancel_event(self, email: str, event_id: str) -> None:
        """The organizer cancels: attendee copies get isCancelled, the organizer's is deleted."""
        with self._lock:
            mb, ev = self._event(email, event_id)
            for copy_mb, copy in self._copies(ev.ical_uid):
                if copy is ev:
                    continue
                copy.is_cancelled = True
                copy.subject = f"Canceled: {copy.subject}"
                copy.modified = self.now()
                self._changed(copy_mb, copy.id, "updated")
            del mb.events[event_id]
            self._changed(mb, event_id, "deleted")

    def delete_event(self, email: str, event_id: str) -> None:
        with self._lock:
            mb, _ = self._event(email, event_id)
            del mb.events[event_id]
            self._changed(mb, event_id, "deleted")

    def occurrence_id(self, email: str, master_id: str, original_start: datetime) -> str:
        mb, ev = self._event(email, master_id)
        return self._occ_id(ev, original_start)

    def modify_occurrence(
        self, email: str, master_id: str, original_start: datetime, **changes: Any
    ) -> str:
        """Turn one occurrence into an exception (moved/renamed/...); returns its id."""
        with self._lock:
            mb, ev = self._event(email, master_id)
            ev.overrides.setdefault(original_start.astimezone(UTC), {}).update(changes)
            ev.modified = self.now()
            occ = self._occ_id(ev, original_start)
            self._changed(mb, occ, "updated")
            return occ

    def delete_occurrence(self, email: str, master_id: str, original_start: datetime) -> str:
        with self._lock:
            mb, ev = self._event(email, master_id)
            ev.overrides[original_start.astimezone(UTC)] = {"deleted": True}
            occ = self._occ_id(ev, original_start)
            self._changed(mb, occ, "deleted")
            return occ

    def set_response(self, email: str, event_id: str, attendee: str, response: str) -> None:
        """``attendee`` answers the event organised in ``email``'s calendar.

        The organizer's copy shows it in ``attendees[].status``; the attendee's own copy
        (when the attendee is an emulated mailbox) in ``responseStatus``.
        """
        graph_response = _RESPONSE_IN[response.lower()]
        with self._lock:
            mb, ev = self._event(email, event_id)
            for copy_mb, copy in self._copies(ev.ical_uid):
                if copy_mb.email.lower() == attendee.lower():
                    copy.own_response = graph_response
                for a in copy.attendees:
                    if a.email.lower() == attendee.lower() and copy_mb.email.lower() == (
                        copy.organizer[0].lower()
                    ):
                        a.response = graph_response
                copy.modified = self.now()
                self._changed(copy_mb, copy.id, "updated")

    def set_own_response(self, email: str, event_id: str, response: str) -> None:
        with self._lock:
            mb, ev = self._event(email, event_id)
            ev.own_response = _RESPONSE_IN[response.lower()]
            ev.modified = self.now()
            self._changed(mb, event_id, "updated")

    def _copies(self, ical_uid: str) -> list[tuple[Mailbox, Event]]:
        return [
            (mb, ev)
            for mb in self.mailboxes.values()
            for ev in mb.events.values()
            if ev.ical_uid == ical_uid
        ]

    # --- admin: faults, tokens, notifications ----------------------------------------

    def inject_fault(
        self,
        status: int,
        count: int = 1,
        *,
        retry_after: str | float | None = None,
        endpoint: str | None = None,
        after_processing: bool = False,
    ) -> None:
        """The next ``count`` Graph calls (to ``endpoint`` if given, a key of ``calls``
        such as ``"GET calendarView.delta"``) answer ``status``.

        ``after_processing``: the call takes effect and only its response is lost.
        """
        with self._lock:
            ra = None if retry_after is None else str(retry_after)
            self._faults.append(Fault(status, count, ra, endpoint, after_processing))

    def expire_delta_tokens(self, email: str | None = None) -> None:
        """Every delta/skip token of the mailbox (or all) now answers 410 SyncStateNotFound."""
        with self._lock:
            for key in [email.lower()] if email else list(self.mailboxes):
                self._generation[key] = self._generation.get(key, 0) + 1

    def drop_next_notifications(self, n: int = 1) -> None:
        with self._lock:
            self._drop_next += n

    def duplicate_next_notifications(self, n: int = 1) -> None:
        with self._lock:
            self._duplicate_next += n

    def send_lifecycle(self, subscription_id: str, lifecycle_event: str) -> None:
        """POST a lifecycle notification (reauthorizationRequired|missed|subscriptionRemoved)."""
        with self._lock:
            sub = self.subscriptions[subscription_id]
            if lifecycle_event == "subscriptionRemoved":
                del self.subscriptions[subscription_id]
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
            self._enqueue(
                Delivery(sub.lifecycle_url or sub.notification_url, body, kind="lifecycle")
            )

    def wait_for_deliveries(self, timeout: float = 5.0) -> None:
        """Block until every queued notification has been POSTed."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("notifications still pending")
                self._idle.wait(left)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests.clear()

    # --- change notifications ------------------------------------------------------

    def _changed(self, mb: Mailbox, event_id: str, change_type: str) -> None:
        for sub in list(self.subscriptions.values()):
            if sub.mailbox != mb.email.lower() or change_type not in sub.change_types:
                continue
            if sub.expires <= self.now():
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
            self._enqueue(Delivery(sub.notification_url, {"value": [item]}))

    def _enqueue(self, delivery: Delivery) -> None:
        if delivery.kind == "change" and self._drop_next:
            self._drop_next -= 1
            delivery.error = "dropped"
            self.deliveries.append(delivery)
            return
        copies = 1
        if delivery.kind == "change" and self._duplicate_next:
            self._duplicate_next -= 1
            copies = 2
        for _ in range(copies):
            self._pending += 1
            self._outbox.put(replace(delivery))

    def _send_loop(self) -> None:
        # Graph wants a 2xx within about 3 seconds; a slower endpoint is a failed delivery.
        with httpx.Client(timeout=3.0, verify=self._verify()) as client:
            while True:
                delivery = self._outbox.get()
                if delivery is None:
                    return
                try:
                    resp = client.post(delivery.url, json=delivery.body)
                    delivery.status = resp.status_code
                except httpx.HTTPError as err:
                    delivery.error = repr(err)
                with self._idle:
                    self.deliveries.append(delivery)
                    self._pending -= 1
                    self._idle.notify_all()

    def _verify(self) -> Any:
        if self.ca_file:
            import ssl

            return ssl.create_default_context(cafile=self.ca_file)
        return True

    # --- HTTP plumbing -------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self._openid, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
            Route("/v1.0/users/{user}/calendarView/delta", self._graph("GET calendarView.delta", self._delta), methods=["GET"]),
            Route("/v1.0/users/{user}/calendar/getSchedule", self._graph("POST getSchedule", self._get_schedule), methods=["POST"]),
            Route("/v1.0/users/{user}/events", self._graph("POST events", self._create_event), methods=["POST"]),
            Route("/v1.0/subscriptions", self._graph("POST subscriptions", self._create_subscription), methods=["POST"]),
            Route("/v1.0/subscriptions/{sid}", self._graph("GET subscriptions", self._get_subscription), methods=["GET"]),
            Route("/v1.0/subscriptions/{sid}", self._graph("PATCH subscriptions", self._renew_subscription), methods=["PATCH"]),
            Route("/v1.0/subscriptions/{sid}", self._graph("DELETE subscriptions", self._delete_subscription), methods=["DELETE"]),
            Route("/v1.0/subscriptions/{sid}/reauthorize", self._graph("POST subscriptions.reauthorize", self._reauthorize), methods=["POST"]),
        ]  # fmt: skip

    def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> Response:
        rid = str(uuid.uuid4())
        body = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": self.now().strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": rid,
                    "client-request-id": rid,
                },
            }
        }
        return JSONResponse(
            body, status_code=status, headers={"request-id": rid, **(headers or {})}
        )

    def _graph(self, name: str, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            with self._lock:
                self.calls[name] += 1
                self.requests.append((request.method, str(request.url), dict(request.headers)))
                fault = next(
                    (f for f in self._faults if f.remaining > 0 and f.endpoint in (None, name)),
                    None,
                )
                if fault is not None:
                    fault.remaining -= 1
            if fault is not None and not fault.after_processing:
                return self._fault_response(fault)
            who = str(request.path_params.get("user", "")).lower()
            with self._lock:
                self.in_flight[who] += 1
                self.max_in_flight[who] = max(self.max_in_flight[who], self.in_flight[who])
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                app = self._authenticate(request)
                response = await handler(request, app)
            except GraphHTTPError as err:
                response = self._error(err.status, err.code, err.message, err.headers)
            finally:
                with self._lock:
                    self.in_flight[who] -= 1
            return self._fault_response(fault) if fault is not None else response

        return endpoint

    def _fault_response(self, fault: Fault) -> Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.status == 429:
            # Verbatim shape of concepts/throttling.md.
            body = {
                "error": {
                    "code": "TooManyRequests",
                    "innerError": {
                        "code": "429",
                        "date": self.now().strftime("%Y-%m-%dT%H:%M:%S"),
                        "message": "Please retry after",
                        "request-id": str(uuid.uuid4()),
                        "status": "429",
                    },
                    "message": "Please retry again later.",
                }
            }
            return JSONResponse(body, status_code=429, headers=headers)
        if fault.status == 502:
            return Response(
                "<html><body>502 Bad Gateway</body></html>",
                502,
                headers=headers,
                media_type="text/html",
            )
        codes = {500: "generalException", 503: "serviceNotAvailable", 504: "UnknownError"}
        return self._error(
            fault.status, codes.get(fault.status, "UnknownError"), "Service unavailable.", headers
        )

    def _authenticate(self, request: Request) -> App:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise GraphHTTPError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = jwt.decode(
                auth[7:].strip(),
                self._signing_key,
                algorithms=["HS256"],
                audience="https://graph.microsoft.com",
                options={"verify_exp": False},
            )
        except jwt.PyJWTError as err:
            raise GraphHTTPError(
                401, "InvalidAuthenticationToken", f"Access token validation failure. {err}"
            ) from err
        now = self.now().timestamp()
        if claims["exp"] <= now:
            raise GraphHTTPError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        if claims.get("jti") in self._revoked:
            raise GraphHTTPError(
                401, "InvalidAuthenticationToken", "Access token has been revoked."
            )
        app = self.apps.get(claims["appid"])
        if app is None or claims.get("tid") != self.tenant_id:
            raise GraphHTTPError(
                401, "InvalidAuthenticationToken", "Access token validation failure."
            )
        return app

    def _mailbox(self, user: str, app: App, roles: set[str]) -> Mailbox:
        key = user.lower()
        mb = self.mailboxes.get(key) or next(
            (m for m in self.mailboxes.values() if m.id == key), None
        )
        if not (app.roles & roles):
            raise GraphHTTPError(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        if mb is None:
            raise GraphHTTPError(
                404, "ErrorInvalidUser", f"The requested user '{user}' is invalid."
            )
        if not mb.rest_enabled:
            raise GraphHTTPError(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        if not mb.allowed:
            raise GraphHTTPError(403, "ErrorAccessDenied", RAOP_MESSAGE)
        return mb

    @staticmethod
    def _prefer(request: Request) -> dict[str, str]:
        prefs: dict[str, str] = {}
        for header in request.headers.getlist("prefer"):
            for part in header.split(","):
                key, _, value = part.strip().partition("=")
                if key:
                    prefs[key.strip().lower()] = value.strip().strip('"')
        return prefs

    def _out_zone(self, mb: Mailbox, prefs: dict[str, str]) -> str | None:
        """Zone name to render times in; None = each event's own zone."""
        if not mb.honour_prefer_timezone:
            return None
        return prefs.get("outlook.timezone") or "UTC"

    # --- identity ------------------------------------------------------------------

    async def _openid(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        with self._lock:
            self.calls["GET openid-configuration"] += 1
        if tenant not in (self.tenant_id, "organizations", "common"):
            return JSONResponse(
                {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
                status_code=400,
            )
        base = f"{self.base_url}/{tenant}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{self.base_url}/{self.tenant_id}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
            }
        )  # fmt: skip

    async def _token(self, request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed by hand (no python-multipart needed)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        with self._lock:
            self.calls["POST token"] += 1
        tenant = request.path_params["tenant"]

        def oauth_error(status: int, error: str, desc: str) -> Response:
            return JSONResponse(
                {
                    "error": error,
                    "error_description": desc,
                    "error_codes": [int(desc.split(":")[0][6:])]
                    if desc.startswith("AADSTS")
                    else [],
                    "timestamp": self.now().strftime("%Y-%m-%d %H:%M:%SZ"),
                    "trace_id": str(uuid.uuid4()),
                    "correlation_id": str(uuid.uuid4()),
                },
                status_code=status,
            )

        if tenant != self.tenant_id:
            return oauth_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return oauth_error(
                400,
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type.",
            )
        client_id = str(form.get("client_id") or "")
        app = self.apps.get(client_id)
        if app is None:
            return oauth_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{self.tenant_id}'.",
            )
        if not secrets.compare_digest(str(form.get("client_secret") or ""), app.secret):
            return oauth_error(
                401,
                "invalid_client",
                f"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        scopes = str(form.get("scope") or "").split()
        if "https://graph.microsoft.com/.default" not in scopes:
            return oauth_error(
                400,
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
            )
        now = int(time.time() + self._clock_offset)
        jti = secrets.token_hex(8)
        with self._lock:
            self._issued.add(jti)
        token = jwt.encode(
            {
                "aud": "https://graph.microsoft.com",
                "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "iat": now,
                "nbf": now,
                "exp": now + self.token_lifetime,
                "appid": app.client_id,
                "oid": app.object_id,
                "roles": sorted(app.roles),
                "tid": self.tenant_id,
                "jti": jti,
            },
            self._signing_key,
            algorithm="HS256",
        )
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            }
        )

    # --- rendering -----------------------------------------------------------------

    def _occ_id(self, ev: Event, original_start: datetime) -> str:
        stamp = original_start.astimezone(UTC).strftime("%Y%m%dT%H%M%S").encode()
        return new_graph_id(ev.id.encode() + b"|" + stamp)

    def _instances(self, ev: Event) -> list[dict[str, Any]]:
        """calendarView instances of an event: itself, or its occurrences/exceptions."""
        base = {
            "ev": ev,
            "subject": ev.subject,
            "start": ev.start,
            "end": ev.end,
            "is_cancelled": ev.is_cancelled,
            "show_as": ev.show_as,
        }
        if ev.recurrence is None:
            return [{**base, "id": ev.id, "type": "singleInstance", "original_start": None}]
        step = timedelta(days=ev.recurrence.interval * (7 if ev.recurrence.freq == "weekly" else 1))
        out = []
        duration = ev.end - ev.start
        for k in range(ev.recurrence.count):
            orig = (ev.start + k * step).astimezone(UTC)
            ov = ev.overrides.get(orig, {})
            if ov.get("deleted"):
                continue
            inst = {
                **base,
                "id": self._occ_id(ev, orig),
                "type": "exception" if ov else "occurrence",
                "original_start": orig,
                "start": orig,
                "end": orig + duration,
            }
            inst.update({k2: v for k2, v in ov.items() if k2 in inst})
            out.append(inst)
        return out

    def _render(self, mb: Mailbox, inst: dict[str, Any], zone_name: str | None) -> dict[str, Any]:
        ev: Event = inst["ev"]
        out_zone = zone_name or ev.time_zone
        tz = emulator_zone(out_zone) or UTC

        def dtz(value: datetime) -> dict[str, str]:
            if ev.all_day:
                # All-day: the floating date at midnight, in whatever zone is shown.
                local = value.astimezone(emulator_zone(ev.time_zone) or UTC)
                return {"dateTime": f"{local:%Y-%m-%d}T00:00:00.0000000", "timeZone": out_zone}
            return {"dateTime": fmt_local(value.astimezone(tz)), "timeZone": out_zone}

        is_org = ev.organizer[0].lower() == mb.email.lower()
        attendees = []
        for a in ev.attendees:
            response = a.response if is_org else "none"  # copies show no one else's answer
            attendees.append(
                {
                    "type": a.type,
                    "status": {"response": response, "time": "0001-01-01T00:00:00Z"},
                    "emailAddress": {"name": a.name or a.email, "address": a.email},
                }
            )
        return {
            "@odata.type": "#microsoft.graph.event",
            "@odata.etag": f'W/"{self._etag(mb, inst)}"',
            "id": inst["id"],
            "createdDateTime": fmt7(ev.created),
            "lastModifiedDateTime": fmt7(ev.modified),
            "changeKey": self._etag(mb, inst),
            "categories": [],
            "transactionId": ev.transaction_id,
            "originalStartTimeZone": ev.time_zone,
            "originalEndTimeZone": ev.time_zone,
            "iCalUId": ev.ical_uid if inst["type"] == "singleInstance" else ev.ical_uid[:-16] + hashlib.md5(inst["id"].encode()).hexdigest()[:16].upper(),
            "uid": ev.ical_uid,
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": True,
            "hasAttachments": False,
            "subject": inst["subject"],
            "bodyPreview": ev.body[:255],
            "importance": "normal",
            "sensitivity": "private" if ev.is_private else "normal",
            "originalStart": fmt7(inst["original_start"]) if inst["original_start"] else None,
            "isAllDay": ev.all_day,
            "isCancelled": inst["is_cancelled"],
            "isOrganizer": is_org,
            "responseRequested": True,
            "seriesMasterId": ev.id if inst["type"] != "singleInstance" else None,
            "showAs": inst["show_as"],
            "type": inst["type"],
            "webLink": f"https://outlook.office365.com/owa/?itemid={quote(inst['id'], safe='')}&exvsurl=1&path=/calendar/item",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": False,
            "onlineMeetingProvider": "unknown",
            "allowNewTimeProposals": True,
            "isDraft": False,
            "hideAttendees": False,
            "recurrence": None,
            "responseStatus": {"response": ev.own_response, "time": "0001-01-01T00:00:00Z"},
            "body": {"contentType": "html", "content": f"<html><body>{ev.body}</body></html>"},
            "start": dtz(inst["start"]),
            "end": dtz(inst["end"]),
            "location": {"displayName": ev.location or "", "locationType": "default"},
            "locations": [],
            "attendees": attendees,
            "organizer": {"emailAddress": {"name": ev.organizer[1] or ev.organizer[0], "address": ev.organizer[0]}},
            "onlineMeeting": None,
        }  # fmt: skip

    def _etag(self, mb: Mailbox, inst: dict[str, Any]) -> str:
        ev: Event = inst["ev"]
        material = json.dumps(
            [
                inst["id"], inst["subject"], inst["start"].isoformat(), inst["end"].isoformat(),
                inst["is_cancelled"], inst["show_as"], ev.own_response, ev.time_zone, ev.all_day,
                [(a.email, a.type, a.response) for a in ev.attendees], ev.body, ev.location,
            ],
            default=str,
        )  # fmt: skip
        return base64.b64encode(hashlib.sha256(material.encode()).digest()[:18]).decode()

    # --- calendarView delta ----------------------------------------------------------

    def _all_instances(self, mb: Mailbox) -> dict[str, dict[str, Any]]:
        return {i["id"]: i for ev in mb.events.values() for i in self._instances(ev)}

    @staticmethod
    def _in_window(inst: dict[str, Any], start: datetime, end: datetime) -> bool:
        return inst["start"] < end and inst["end"] > start

    async def _delta(self, request: Request, app: App) -> Response:
        q = {k.lower(): v for k, v in request.query_params.items()}
        prefs = self._prefer(request)
        with self._lock:
            mb = self._mailbox(request.path_params["user"], app, READ_ROLES)
            key = mb.email.lower()
            generation = self._generation.get(key, 0)
            page_size = int(prefs["odata.maxpagesize"]) if "odata.maxpagesize" in prefs else None
            if "$skiptoken" in q or "$deltatoken" in q:
                token = q.get("$skiptoken") or q.get("$deltatoken") or ""
                state = self._rounds.get(token)
                if state is None or state.mailbox != key:
                    raise GraphHTTPError(
                        400, "ErrorInvalidUrlQuery", "The skip or delta token is not valid."
                    )
                if state.generation != generation:
                    raise GraphHTTPError(
                        410,
                        "SyncStateNotFound",
                        f"The sync state generation is not found; generation={state.generation};[highest={generation}].",
                    )
                if "$deltatoken" in q:
                    current = self._all_instances(mb)
                    snapshot = {i: self._etag(mb, inst) for i, inst in current.items()}
                    items: list[tuple[str, dict[str, Any] | None]] = []
                    for iid, inst in current.items():
                        if state.snapshot.get(iid) == snapshot[iid]:
                            continue
                        inside = self._in_window(inst, state.start, state.end)
                        # Graph: changes outside the window come back as @removed too.
                        items.append((iid, inst if inside else None))
                    items += [(iid, None) for iid in state.snapshot if iid not in current]
                    state = DeltaRound(
                        key,
                        state.start,
                        state.end,
                        items,
                        0,
                        page_size or state.page_size,
                        snapshot,
                        generation,
                    )
                else:
                    state = replace(state, page_size=page_size or state.page_size)
            else:
                try:
                    start = parse_dt(q["startdatetime"])
                    end = parse_dt(q["enddatetime"])
                except (KeyError, ValueError) as err:
                    raise GraphHTTPError(
                        400,
                        "ErrorInvalidParameter",
                        "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
                    ) from err
                start = start if start.tzinfo else start.replace(tzinfo=UTC)
                end = end if end.tzinfo else end.replace(tzinfo=UTC)
                if end - start > timedelta(days=1825):
                    raise GraphHTTPError(
                        400,
                        "ErrorInvalidRequest",
                        "Your request can't be completed. The range between the start and end "
                        "dates is greater than the allowed range. Maximum number of days: 1825",
                    )
                current = self._all_instances(mb)
                snapshot = {i: self._etag(mb, inst) for i, inst in current.items()}
                items = [
                    (iid, inst)
                    for iid, inst in sorted(current.items(), key=lambda kv: kv[1]["start"])
                    if self._in_window(inst, start, end)
                ]
                state = DeltaRound(key, start, end, items, 0, page_size, snapshot, generation)
            size = state.page_size or DEFAULT_PAGE_SIZE
            chunk = state.items[state.offset : state.offset + size]
            zone_name = self._out_zone(mb, prefs)
            value = [
                self._render(mb, inst, zone_name)
                if inst is not None
                else {
                    "@odata.type": "#microsoft.graph.event",
                    "id": iid,
                    "@removed": {"reason": "deleted"},
                }
                for iid, inst in chunk
            ]
            link_base = f"{self.base_url}/v1.0/users/{quote(request.path_params['user'], safe='@.')}/calendarView/delta"
            body: dict[str, Any] = {
                "@odata.context": f"{self.base_url}/v1.0/$metadata#Collection(event)"
            }
            token = secrets.token_urlsafe(24)
            if state.offset + size < len(state.items):
                self._rounds[token] = replace(state, offset=state.offset + size)
                body["@odata.nextLink"] = f"{link_base}?$skiptoken={token}"
            else:
                self._rounds[token] = replace(state, items=[], offset=0)
                body["@odata.deltaLink"] = f"{link_base}?$deltatoken={token}"
            body["value"] = value
        applied = [f"odata.maxpagesize={size}"] if "odata.maxpagesize" in prefs else []
        if zone_name:
            applied.append(f'outlook.timezone="{zone_name}"')
        return JSONResponse(
            body, headers={"Preference-Applied": ", ".join(applied)} if applied else None
        )

    # --- getSchedule ---------------------------------------------------------------

    async def _get_schedule(self, request: Request, app: App) -> Response:
        body = await self._json(request)
        prefs = self._prefer(request)
        with self._lock:
            mb = self._mailbox(request.path_params["user"], app, READ_ROLES)
            try:
                start = self._parse_dtz(body["startTime"])
                end = self._parse_dtz(body["endTime"])
                schedules = list(body["schedules"])
            except (KeyError, TypeError) as err:
                raise GraphHTTPError(
                    400, "ErrorInvalidRequest", f"Missing or invalid parameter: {err}"
                ) from err
            if end - start > timedelta(days=62):
                days = (end - start).days + (1 if (end - start) % timedelta(days=1) else 0)
                raise GraphHTTPError(
                    400,
                    "ErrorTimeIntervalTooBig",
                    "The requested time duration specified for FreeBusyViewOptions.TimeWindow "
                    f"is too long. The allowed limit = 62 days; the actual limit = {days} days.",
                )
            interval = int(body.get("availabilityViewInterval") or 30)
            if not 5 <= interval <= 1440:
                raise GraphHTTPError(
                    400,
                    "ErrorInvalidParameter",
                    "availabilityViewInterval must be between 5 and 1440.",
                )
            zone_name = prefs.get("outlook.timezone") or "UTC"
            tz = emulator_zone(zone_name) or UTC
            value = []
            for sid in schedules:
                target = self.mailboxes.get(str(sid).lower())
                if target is None or not target.allowed:
                    value.append({
                        "scheduleId": sid,
                        "availabilityView": "",
                        "error": {"message": "The specified email address is invalid or does not exist.", "responseCode": "ErrorMailRecipientNotFound"},
                    })  # fmt: skip
                    continue
                insts = sorted(
                    (
                        i
                        for ev in target.events.values()
                        for i in self._instances(ev)
                        if not i["is_cancelled"] and self._in_window(i, start, end)
                    ),
                    key=lambda i: i["start"],
                )
                items = []
                for inst in insts:
                    ev = inst["ev"]
                    item: dict[str, Any] = {}
                    if target.share_details:
                        item.update(
                            {
                                "isPrivate": ev.is_private,
                                "status": inst["show_as"],
                                "subject": inst["subject"],
                                "location": ev.location or "",
                            }
                        )
                    else:
                        item["status"] = inst["show_as"]
                    item["start"] = {
                        "dateTime": fmt_local(inst["start"].astimezone(tz)),
                        "timeZone": zone_name,
                    }
                    item["end"] = {
                        "dateTime": fmt_local(inst["end"].astimezone(tz)),
                        "timeZone": zone_name,
                    }
                    items.append(item)
                view = []
                slot = start
                rank = {"free": 0, "tentative": 1, "workingElsewhere": 1, "busy": 2, "oof": 3}
                digit = {
                    "free": "0",
                    "tentative": "1",
                    "busy": "2",
                    "oof": "3",
                    "workingElsewhere": "4",
                }
                while slot < end:
                    slot_end = slot + timedelta(minutes=interval)
                    statuses = [
                        i["show_as"] for i in insts if i["start"] < slot_end and i["end"] > slot
                    ]
                    best = max(statuses, key=lambda s: rank.get(s, 0), default="free")
                    view.append(digit.get(best, "0"))
                    slot = slot_end
                value.append({
                    "scheduleId": sid,
                    "availabilityView": "".join(view),
                    "scheduleItems": items,
                    "workingHours": {
                        "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                        "startTime": "08:00:00.0000000",
                        "endTime": "17:00:00.0000000",
                        "timeZone": {"name": target.working_time_zone},
                    },
                })  # fmt: skip
            _ = mb
        return JSONResponse(
            {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)", "value": value}
        )  # fmt: skip

    @staticmethod
    def _parse_dtz(value: dict[str, Any]) -> datetime:
        tz_name = value.get("timeZone") or "UTC"
        tz = emulator_zone(tz_name)
        if tz is None:
            raise GraphHTTPError(
                400,
                "TimeZoneNotSupportedException",
                f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{tz_name}'.",
            )
        dt = parse_dt(value["dateTime"])
        return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).astimezone(UTC)

    @staticmethod
    async def _json(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as err:
            raise GraphHTTPError(400, "BadRequest", "Unable to read JSON request payload.") from err
        if not isinstance(body, dict):
            raise GraphHTTPError(400, "BadRequest", "Unable to read JSON request payload.")
        return body

    # --- events --------------------------------------------------------------------

    async def _create_event(self, request: Request, app: App) -> Response:
        body = await self._json(request)
        prefs = self._prefer(request)
        with self._lock:
            mb = self._mailbox(request.path_params["user"], app, WRITE_ROLES)
            try:
                start_raw, end_raw = body["start"], body["end"]
                start, end = self._parse_dtz(start_raw), self._parse_dtz(end_raw)
            except (KeyError, TypeError, ValueError) as err:
                if isinstance(err, GraphHTTPError):
                    raise
                raise GraphHTTPError(
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. Start and End are required.",
                ) from err
            if end < start:
                raise GraphHTTPError(
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. The end time must be after the start time.",
                )
            tx = body.get("transactionId")
            if tx:
                existing = next((e for e in mb.events.values() if e.transaction_id == tx), None)
                if existing is not None:
                    # A retried POST with the same transactionId: the same event, no new invites.
                    inst = self._instances(existing)[0]
                    return JSONResponse(self._created_body(mb, inst, prefs), status_code=201)
            attendees = []
            for raw in body.get("attendees") or []:
                ea = (raw or {}).get("emailAddress") or {}
                if not ea.get("address"):
                    raise GraphHTTPError(
                        400, "ErrorInvalidRecipients", "At least one recipient isn't valid."
                    )
                attendees.append(
                    Attendee(
                        ea["address"], ea.get("name"), str(raw.get("type") or "required").lower()
                    )
                )
            event_id = self.add_event(
                mb.email,
                subject=str(body.get("subject") or ""),
                start=start,
                end=end,
                time_zone=start_raw.get("timeZone") or "UTC",
                attendees=attendees,
                body=str((body.get("body") or {}).get("content") or ""),
                location=(body.get("location") or {}).get("displayName"),
                show_as=str(body.get("showAs") or "busy"),
                transaction_id=tx,
            )
            ev = mb.events[event_id]
            # Exchange delivers the invitation to attendees hosted here.
            for a in attendees:
                target = self.mailboxes.get(a.email.lower())
                if target is None or target is mb:
                    continue
                copy = replace(
                    ev,
                    id=new_graph_id(),
                    own_response="notResponded",
                    attendees=[replace(x) for x in attendees],
                    transaction_id=None,
                    overrides={},
                )
                target.events[copy.id] = copy
                self._changed(target, copy.id, "created")
            inst = self._instances(ev)[0]
            return JSONResponse(self._created_body(mb, inst, prefs), status_code=201)

    def _created_body(
        self, mb: Mailbox, inst: dict[str, Any], prefs: dict[str, str]
    ) -> dict[str, Any]:
        body = self._render(mb, inst, prefs.get("outlook.timezone") or "UTC")
        body.pop("@odata.type", None)
        return {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{mb.id}')/events/$entity",
            **body,
        }

    # --- subscriptions ---------------------------------------------------------------

    def _parse_resource(self, resource: str) -> str:
        path = resource.strip().lstrip("/")
        parts = path.split("/")
        if len(parts) == 3 and parts[0].lower() == "users" and parts[2].lower() == "events":
            user = parts[1]
        elif (
            len(parts) == 2
            and parts[0].lower().startswith("users(")
            and parts[1].lower() == "events"
        ):
            user = parts[0][6:].strip("')")
        else:
            raise GraphHTTPError(
                400,
                "InvalidRequest",
                f"Resource '{resource}' is not supported by this emulator (users/{{id}}/events).",
            )
        return user

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
        now = self.now()
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
        return min(asked, self.now() + timedelta(seconds=mb.subscription_seconds))

    async def _validate_url(self, url: str) -> str | None:
        """Graph's validation handshake; returns an error message or None."""
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        try:
            async with httpx.AsyncClient(
                timeout=self.validation_timeout, verify=self._verify()
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

    async def _create_subscription(self, request: Request, app: App) -> Response:
        body = await self._json(request)
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
            user = self._parse_resource(str(body["resource"]))
            if not (app.roles & SUBSCRIBE_ROLES):
                raise GraphHTTPError(
                    403,
                    "ExtensionError",
                    "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. Check credentials and try again.]",
                )
            mb = self._mailbox(user, app, SUBSCRIBE_ROLES)
        # The handshake happens before the subscription exists, outside the lock.
        for target in filter(None, [url, lifecycle]):
            problem = await self._validate_url(str(target))
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
            self.subscriptions[sub.id] = sub
            return JSONResponse(sub.to_json(), status_code=201)

    def _live_subscription(self, sid: str, app: App) -> Subscription:
        sub = self.subscriptions.get(sid)
        if sub is not None and sub.expires <= self.now():
            del self.subscriptions[sid]  # Graph deletes expired subscriptions
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

    async def _get_subscription(self, request: Request, app: App) -> Response:
        with self._lock:
            return JSONResponse(self._live_subscription(request.path_params["sid"], app).to_json())

    async def _renew_subscription(self, request: Request, app: App) -> Response:
        body = await self._json(request)
        with self._lock:
            sub = self._live_subscription(request.path_params["sid"], app)
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
            problem = await self._validate_url(new_url)  # a new URL is validated again
            if problem is not None:
                raise GraphHTTPError(400, "ValidationError", problem)
        with self._lock:
            sub.expires = self._granted(self.mailboxes[sub.mailbox], expires)
            if new_url is not None:
                sub.notification_url = new_url
            return JSONResponse(sub.to_json())

    async def _delete_subscription(self, request: Request, app: App) -> Response:
        with self._lock:
            sub = self._live_subscription(request.path_params["sid"], app)
            del self.subscriptions[sub.id]
        return Response(status_code=204)

    async def _reauthorize(self, request: Request, app: App) -> Response:
        with self._lock:
            self._live_subscription(request.path_params["sid"], app)
        return Response(status_code=200)
