"""A Google Calendar v3 + OAuth token endpoint emulator for tests, served on loopback.

The real google-auth and google-api-python-client talk to it over HTTP. See README.md
beside this file for what it reproduces and which Google pages it follows.

    with GoogleEmulator.start() as emu:
        key_file = write_service_account(emu, tmp_path)       # harness.py
        emu.add_user("rep@corp.test")
        connector = GoogleConnector(str(key_file), emu.api_root, ...)
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import queue
import random
import secrets
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import httpx
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.google import recurrence
from tests.emulators.google.errors import error_response, insufficient_scopes, oauth_error
from tests.emulators.google.tls import write_loopback_certificate

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"

# Scopes each method accepts, from the Calendar v3 discovery document.
_EVENT_READ = {
    "calendar", "calendar.readonly", "calendar.events", "calendar.events.readonly",
    "calendar.events.owned", "calendar.events.owned.readonly", "calendar.app.created",
    "calendar.events.freebusy", "calendar.events.public.readonly",
}  # fmt: skip
METHOD_SCOPES: dict[str, set[str]] = {
    "events.list": _EVENT_READ,
    "events.get": _EVENT_READ,
    "events.watch": _EVENT_READ,
    "events.insert": {
        "calendar",
        "calendar.events",
        "calendar.events.owned",
        "calendar.app.created",
    },
    "channels.stop": _EVENT_READ
    | {"calendar.settings.readonly", "calendar.acls", "calendar.calendarlist"},
    "freebusy.query": {
        "calendar",
        "calendar.readonly",
        "calendar.freebusy",
        "calendar.events.freebusy",
    },
}
_RPC_NAMES = {
    "events.list": "calendar.v3.Events.List",
    "events.get": "calendar.v3.Events.Get",
    "events.watch": "calendar.v3.Events.Watch",
    "events.insert": "calendar.v3.Events.Insert",
    "channels.stop": "calendar.v3.Channels.Stop",
    "freebusy.query": "calendar.v3.Freebusy.Query",
}
SYNC_TOKEN_FORBIDDEN = (
    "iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty",
    "timeMin", "timeMax", "updatedMin",
)  # fmt: skip
_ID_CHARS = set("abcdefghijklmnopqrstuv0123456789")
MAX_CHANNEL_TTL = 30 * 24 * 3600
EXPANSION_DAYS = 730


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def _parse_time(value: str) -> datetime:
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(value)
    return parsed


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.lower() == "true"


@dataclass
class Override:
    """What differs on one instance of a series: an exception (moved) or a cancellation."""

    seq: int
    updated: str
    cancelled: bool = False
    patch: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoredEvent:
    """One event (single or series master) on a calendar, as Google stores it."""

    body: dict[str, Any]
    seq: int
    deleted: bool = False
    overrides: dict[str, Override] = field(default_factory=dict)

    @property
    def recurring(self) -> bool:
        return bool(self.body.get("recurrence"))


@dataclass
class Channel:
    id: str
    token: str | None
    address: str
    resource_id: str
    resource_uri: str
    calendar: str
    subject: str
    expiration_ms: int
    stopped: bool = False
    message_number: int = 0

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expiration_ms / 1000, tz=UTC)


@dataclass
class Calendar:
    email: str
    time_zone: str
    resource_id: str
    events: dict[str, StoredEvent] = field(default_factory=dict)
    token_epoch: int = 0


@dataclass
class Fault:
    status: int
    reason: str | None
    method: str | None
    body: str | None
    retry_after: float | None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    subject: str | None


@dataclass
class Delivery:
    channel_id: str
    address: str
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None


class _Deliverer:
    """Sends push notifications from its own thread, with test knobs for misbehaviour."""

    def __init__(self, emulator: GoogleEmulator, *, verify: str | bool = True) -> None:
        self._emulator = emulator
        self._queue: queue.Queue[tuple[Delivery, threading.Event] | None] = queue.Queue()
        context: ssl.SSLContext | bool = (
            verify if isinstance(verify, bool) else ssl.create_default_context(cafile=verify)
        )
        self._client = httpx.Client(timeout=5.0, verify=context, trust_env=False)
        self._lock = threading.Lock()
        self.drop = 0
        self.duplicate = 0
        self.held: list[tuple[Delivery, threading.Event]] | None = None
        self.log: list[Delivery] = []
        self._thread = threading.Thread(target=self._run, name="google-emu-push", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery) -> threading.Event:
        done = threading.Event()
        with self._lock:
            if self.drop > 0:
                self.drop -= 1
                done.set()
                return done
            copies = 1
            if self.duplicate > 0:
                self.duplicate -= 1
                copies = 2
            for _ in range(copies):
                item = (copy.deepcopy(delivery), done)
                if self.held is not None:
                    self.held.append(item)
                else:
                    self._queue.put(item)
        return done

    def hold(self) -> None:
        with self._lock:
            if self.held is None:
                self.held = []

    def release(self, *, reverse: bool = False) -> None:
        with self._lock:
            held, self.held = self.held or [], None
            for item in reversed(held) if reverse else held:
                self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            delivery, done = item
            try:
                response = self._client.post(
                    delivery.address, headers=delivery.headers, content=b""
                )
                delivery.status = response.status_code
            except httpx.HTTPError as err:
                delivery.error = repr(err)
            with self._lock:
                self.log.append(delivery)
            done.set()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._client.close()


class _Server(uvicorn.Server):
    """uvicorn that stops at once when asked, instead of polling every 100 ms."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._stop_loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await super().startup(sockets=sockets)

    async def main_loop(self) -> None:
        await self._stop_event.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own shutdown sleeps a fixed 100 ms; poll instead (tests stop it a lot).
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + 2.0
        while (
            self.server_state.connections or self.server_state.tasks
        ) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for task in self.server_state.tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()

    def request_stop(self) -> None:
        self.should_exit = True
        self._stop_loop.call_soon_threadsafe(self._stop_event.set)


class GoogleEmulator:
    """In-memory Google Calendar v3 with an OAuth 2.0 JWT-bearer token endpoint."""

    def __init__(self, *, seed: int = 0) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._last_seq = 0
        self.api_root = ""
        self.token_uri = ""
        self.calendars: dict[str, Calendar] = {}
        self.service_accounts: dict[str, dict[str, Any]] = {}  # client_email -> info
        self.delegations: dict[str, set[str]] = {}  # client_id -> scopes granted
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, Channel] = {}
        self.sync_tokens: dict[str, tuple[str, int, int]] = {}  # token -> (calendar, seq, epoch)
        self.page_states: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.calls: Counter[str] = Counter()
        self.gates: dict[str, threading.Event] = {}  # method -> calls wait until it is set
        self.waiting: Counter[str] = Counter()  # calls now held at a gate, per method
        self.requests: list[RecordedRequest] = []
        self.sent_updates: list[tuple[str, str | None]] = []
        self.sink: dict[str, list[dict[str, str]]] = {}
        self.sync_before_watch_response = False
        self.empty_first_page = False
        self.token_lifetime = 3600
        self.ca_file: Path | None = None
        self._deliverer: _Deliverer | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.app = self._build_app()

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    def start(cls, *, seed: int = 0, tls_dir: Path | None = None) -> GoogleEmulator:
        """Serve a new emulator on 127.0.0.1 on a free port, in a background thread.

        With ``tls_dir`` it serves HTTPS with a certificate from a throw-away CA written
        there; ``ca_file`` is the CA to trust (e.g. through ``SSL_CERT_FILE``).
        """
        emu = cls(seed=seed)
        emu._serve(tls_dir)
        return emu

    def _serve(self, tls_dir: Path | None = None) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._socket = sock
        tls: dict[str, Any] = {}
        scheme = "http"
        if tls_dir is not None:
            ca, cert, key = write_loopback_certificate(tls_dir)
            self.ca_file = ca
            tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
            scheme = "https"
        self.api_root = f"{scheme}://127.0.0.1:{port}/"
        self.token_uri = f"{self.api_root}token"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            **tls,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="google-emu", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("Google emulator did not start")
            time.sleep(0.005)
        self._deliverer = _Deliverer(self, verify=str(self.ca_file) if self.ca_file else True)

    def stop(self) -> None:
        """Stop deliveries and the server; joins every thread it started."""
        self.unblock()
        if self._deliverer is not None:
            self._deliverer.close()
            self._deliverer = None
        if self._server is not None and self._thread is not None:
            self._server.request_stop()
            self._thread.join(timeout=10)
            self._server = None
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> GoogleEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- admin: identities -------------------------------------------------------------

    def register_service_account(
        self, *, client_email: str, client_id: str, private_key_id: str, public_key_pem: bytes
    ) -> None:
        """Know a service account's public key (what Google holds for a created key)."""
        with self._lock:
            self.service_accounts[client_email] = {
                "client_id": client_id,
                "private_key_id": private_key_id,
                "public_key": public_key_pem,
            }

    def authorize_client(self, client_id: str, scopes: Iterable[str]) -> None:
        """Admin console: Security > API controls > Domain-wide delegation > Add new."""
        with self._lock:
            self.delegations[client_id] = set(scopes)

    def revoke_client(self, client_id: str) -> None:
        """Remove the delegation; new token requests get ``unauthorized_client``."""
        with self._lock:
            self.delegations.pop(client_id, None)

    def revoke_tokens(self, subject: str | None = None) -> None:
        """Invalidate issued access tokens (all, or a subject's): next API call → 401."""
        with self._lock:
            for token in [
                t for t, info in self.access_tokens.items() if subject in (None, info["subject"])
            ]:
                del self.access_tokens[token]

    def add_user(self, email: str, *, time_zone: str = "UTC") -> Calendar:
        """A Workspace user with a primary calendar whose id is the e-mail."""
        email = email.lower()
        with self._lock:
            if email not in self.calendars:
                self.calendars[email] = Calendar(
                    email=email, time_zone=time_zone, resource_id=self._opaque(19)
                )
            return self.calendars[email]

    # --- admin: events (as the organizer / attendees would change them) ----------------

    def create_event(
        self,
        calendar: str,
        *,
        start: datetime | date,
        end: datetime | date,
        summary: str = "",
        time_zone: str = "UTC",
        attendees: Iterable[str | dict[str, Any]] = (),
        organizer: str | None = None,
        recurrence: list[str] | None = None,
        event_type: str = "default",
        event_id: str | None = None,
        description: str | None = None,
        transparency: str | None = None,
        status: str = "confirmed",
    ) -> str:
        """Put an event on ``calendar``; the rep organizes it unless ``organizer`` is set."""
        cal = self._calendar(calendar)
        organizer = (organizer or cal.email).lower()
        people: list[dict[str, Any]] = []
        for item in attendees:
            entry = {"email": item} if isinstance(item, str) else dict(item)
            entry["email"] = entry["email"].lower()
            entry.setdefault("responseStatus", "needsAction")
            people.append(entry)
        emails = {p["email"] for p in people}
        if people and organizer not in emails:
            people.insert(0, {"email": organizer, "organizer": True, "responseStatus": "accepted"})
        for p in people:
            if p["email"] == organizer:
                p["organizer"] = True
        if organizer != cal.email and cal.email not in emails:
            people.append({"email": cal.email, "responseStatus": "needsAction"})
        now = _now()
        body: dict[str, Any] = {
            "kind": "calendar#event",
            "id": event_id or self._event_id(),
            "status": status,
            "summary": summary,
            "created": _stamp(now),
            "updated": _stamp(now),
            "creator": {"email": organizer},
            "organizer": {"email": organizer},
            "start": self._when(start, time_zone),
            "end": self._when(end, time_zone),
            "sequence": 0,
            "eventType": event_type,
            "reminders": {"useDefault": True},
        }
        body["iCalUID"] = f"{body['id']}@google.com"
        if people:
            body["attendees"] = people
        if recurrence:
            body["recurrence"] = list(recurrence)
        if description is not None:
            body["description"] = description
        if transparency:
            body["transparency"] = transparency
        with self._lock:
            seq = self._next_seq()
            body["etag"] = self._etag(seq)
            cal.events[body["id"]] = StoredEvent(body=body, seq=seq)
        self._notify(cal.email)
        return body["id"]

    def update_event(self, calendar: str, event_id: str, **changes: Any) -> None:
        """Change fields of an event or series (``start``/``end`` move it; a move is an update)."""
        cal = self._calendar(calendar)
        with self._lock:
            ev = cal.events[event_id]
            tz = ev.body["start"].get("timeZone", "UTC")
            for key, value in changes.items():
                if key in ("start", "end"):
                    ev.body[key] = self._when(value, changes.get("time_zone", tz))
                elif key == "time_zone":
                    continue
                elif key == "event_type":
                    ev.body["eventType"] = value
                elif key == "attendees":
                    ev.body["attendees"] = [
                        {"email": p.lower(), "responseStatus": "needsAction"}
                        if isinstance(p, str)
                        else dict(p)
                        for p in value
                    ]
                else:
                    ev.body[key] = value
            self._touch(ev)
        self._notify(cal.email)

    def move_event(self, calendar: str, event_id: str, start: datetime, end: datetime) -> None:
        """Reschedule: Google reports it as an update carrying the new start/end."""
        self.update_event(calendar, event_id, start=start, end=end)

    def cancel_event(self, calendar: str, event_id: str) -> None:
        """The organizer deletes/cancels the event (or the whole series)."""
        cal = self._calendar(calendar)
        with self._lock:
            ev = cal.events[event_id]
            ev.deleted = True
            ev.body["status"] = "cancelled"
            self._touch(ev)
        self._notify(cal.email)

    def set_response(self, calendar: str, event_id: str, attendee: str, response: str) -> None:
        """An attendee answers (``accepted``/``declined``/``tentative``/``needsAction``).

        ``event_id`` may be a series (all instances) or one instance id (an exception).
        """
        cal = self._calendar(calendar)
        attendee = attendee.lower()
        with self._lock:
            if event_id in cal.events:
                ev = cal.events[event_id]
                self._set_response(ev.body.setdefault("attendees", []), attendee, response)
                self._touch(ev)
            else:
                series_id, _, _suffix = event_id.rpartition("_")
                ev = cal.events[series_id]
                inst = self._instance_by_id(ev, event_id)
                override = self._override(ev, event_id)
                people = override.patch.get("attendees") or copy.deepcopy(inst.get("attendees", []))
                self._set_response(people, attendee, response)
                override.patch["attendees"] = people
        self._notify(cal.email)

    def move_instance(
        self, calendar: str, series_id: str, original_start: datetime | date,
        start: datetime | date, end: datetime | date,
    ) -> str:  # fmt: skip
        """Move one occurrence: it becomes an exception (originalStartTime ≠ start)."""
        cal = self._calendar(calendar)
        with self._lock:
            ev = cal.events[series_id]
            iid = f"{series_id}_{recurrence.instance_suffix(original_start)}"
            self._instance_by_id(ev, iid)
            tz = ev.body["start"].get("timeZone", "UTC")
            override = self._override(ev, iid)
            override.patch["start"] = self._when(start, tz)
            override.patch["end"] = self._when(end, tz)
        self._notify(cal.email)
        return iid

    def cancel_instance(
        self, calendar: str, series_id: str, original_start: datetime | date
    ) -> str:
        """Delete one occurrence of a series."""
        cal = self._calendar(calendar)
        with self._lock:
            ev = cal.events[series_id]
            iid = f"{series_id}_{recurrence.instance_suffix(original_start)}"
            self._instance_by_id(ev, iid)
            self._override(ev, iid).cancelled = True
        self._notify(cal.email)
        return iid

    def invalidate_sync_tokens(self, calendar: str) -> None:
        """Every sync token issued so far for the calendar now gets ``410 fullSyncRequired``."""
        with self._lock:
            self._calendar(calendar).token_epoch += 1

    # --- admin: faults, channels, notifications ---------------------------------------

    def fail_next(
        self,
        count: int,
        status: int,
        reason: str | None = None,
        *,
        method: str | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next ``count`` API calls (of ``method``, or any) fail with Google's error JSON.

        ``body`` replaces the generated JSON verbatim (e.g. a documented sample).
        """
        with self._lock:
            for _ in range(count):
                self.faults.append(Fault(status, reason, method, body, retry_after))

    def block(self, method: str) -> None:
        """Hold every call of ``method`` (e.g. ``"events.list"``) until ``unblock``.

        ``waiting[method]`` tells how many calls are held: a test can see a sync in flight.
        """
        with self._lock:
            self.gates.setdefault(method, threading.Event())

    def unblock(self, method: str | None = None) -> None:
        """Let held calls of ``method`` (or of every method) through."""
        with self._lock:
            names = [method] if method is not None else list(self.gates)
            for name in names:
                gate = self.gates.pop(name, None)
                if gate is not None:
                    gate.set()

    def expire_channel(self, channel_id: str) -> None:
        """Make a channel reach its expiration now: no more notifications."""
        with self._lock:
            self.channels[channel_id].expiration_ms = int(_now().timestamp() * 1000) - 1

    def send_stale_notification(self, channel_id: str, state: str = "exists") -> threading.Event:
        """Deliver on a stopped/expired channel, as Google may do for a little while."""
        with self._lock:
            channel = self.channels[channel_id]
            return self._send(channel, state)

    def drop_next_notifications(self, count: int) -> None:
        assert self._deliverer is not None
        self._deliverer.drop += count

    def duplicate_next_notifications(self, count: int) -> None:
        assert self._deliverer is not None
        self._deliverer.duplicate += count

    def hold_notifications(self) -> None:
        """Queue notifications without sending them until ``release_notifications``."""
        assert self._deliverer is not None
        self._deliverer.hold()

    def release_notifications(self, *, reverse: bool = False) -> None:
        assert self._deliverer is not None
        self._deliverer.release(reverse=reverse)

    @property
    def deliveries(self) -> list[Delivery]:
        assert self._deliverer is not None
        return list(self._deliverer.log)

    def sink_url(self, key: str) -> str:
        """A callback address on the emulator itself that records what it receives."""
        return f"{self.api_root}_sink/{key}"

    def wait_for_sink(self, key: str, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        """Wait until ``count`` notifications reached ``sink_url(key)``; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = list(self.sink.get(key, []))
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"sink {key}: expected {count} notifications, got {len(got)}")

    def live_channels(self, calendar: str) -> list[Channel]:
        now_ms = int(_now().timestamp() * 1000)
        with self._lock:
            return [
                c for c in self.channels.values()
                if c.calendar == calendar.lower() and not c.stopped and c.expiration_ms > now_ms
            ]  # fmt: skip

    def requests_for(self, method: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method]

    # --- internals: model ------------------------------------------------------------

    def _calendar(self, email: str) -> Calendar:
        cal = self.calendars.get(email.lower())
        if cal is None:
            raise KeyError(f"unknown calendar {email}")
        return cal

    def _opaque(self, n: int) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def _event_id(self) -> str:
        return "".join(self._rng.choice("abcdefghijklmnopqrstuv0123456789") for _ in range(26))

    @staticmethod
    def _etag(seq: int) -> str:
        return f'"{3044897856406000 + seq}"'

    @staticmethod
    def _when(value: datetime | date, time_zone: str) -> dict[str, str]:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("emulator datetimes must be aware")
            return {
                "dateTime": value.astimezone(ZoneInfo(time_zone)).isoformat(),
                "timeZone": time_zone,
            }
        return {"date": value.isoformat()}

    def _touch(self, ev: StoredEvent) -> None:
        ev.seq = self._next_seq()
        ev.body["updated"] = _stamp(_now())
        ev.body["etag"] = self._etag(ev.seq)
        ev.body["sequence"] = ev.body.get("sequence", 0) + 1

    def _override(self, ev: StoredEvent, iid: str) -> Override:
        seq = self._next_seq()
        override = ev.overrides.get(iid)
        if override is None:
            override = ev.overrides[iid] = Override(seq=seq, updated=_stamp(_now()))
        override.seq = seq
        override.updated = _stamp(_now())
        return override

    @staticmethod
    def _set_response(people: list[dict[str, Any]], attendee: str, response: str) -> None:
        for person in people:
            if person["email"].lower() == attendee:
                person["responseStatus"] = response
                return
        people.append({"email": attendee, "responseStatus": response})

    @staticmethod
    def _bounds(body: dict[str, Any]) -> tuple[datetime, datetime]:
        def one(when: dict[str, Any]) -> datetime:
            if "dateTime" in when:
                return _parse_time(when["dateTime"]).astimezone(UTC)
            return datetime.fromisoformat(when["date"]).replace(tzinfo=UTC)

        return one(body["start"]), one(body["end"])

    def _instances(self, ev: StoredEvent) -> list[tuple[dict[str, Any], int, bool]]:
        """Expanded instances of a series: ``(body, seq, cancelled)``."""
        master = ev.body
        start_when = master["start"]
        all_day = "date" in start_when
        tz_name = start_when.get("timeZone") or "UTC"
        zone = ZoneInfo(tz_name) if not all_day else ZoneInfo("UTC")
        first_start, first_end = self._bounds(master)
        duration = first_end - first_start
        horizon = max(_now(), first_start) + timedelta(days=EXPANSION_DAYS)
        out = []
        for occurrence in recurrence.expand(master["recurrence"], first_start, zone, horizon):
            inst = {k: copy.deepcopy(v) for k, v in master.items() if k != "recurrence"}
            if all_day:
                day = occurrence.date()
                original: datetime | date = day
                inst["originalStartTime"] = {"date": day.isoformat()}
                inst["start"] = {"date": day.isoformat()}
                inst["end"] = {"date": (day + timedelta(days=duration.days)).isoformat()}
            else:
                original = occurrence
                inst["originalStartTime"] = {
                    "dateTime": occurrence.isoformat(),
                    "timeZone": tz_name,
                }
                inst["start"] = {"dateTime": occurrence.isoformat(), "timeZone": tz_name}
                end_at = (occurrence.astimezone(UTC) + duration).astimezone(zone)
                inst["end"] = {"dateTime": end_at.isoformat(), "timeZone": tz_name}
            iid = f"{master['id']}_{recurrence.instance_suffix(original)}"
            inst["id"] = iid
            inst["recurringEventId"] = master["id"]
            seq = ev.seq
            cancelled = ev.deleted
            override = ev.overrides.get(iid)
            if override is not None:
                seq = max(seq, override.seq)
                cancelled = cancelled or override.cancelled
                inst.update(copy.deepcopy(override.patch))
                inst["updated"] = max(inst.get("updated", ""), override.updated)
                inst["etag"] = self._etag(seq)
            if cancelled:
                inst["status"] = "cancelled"
            out.append((inst, seq, cancelled))
        return out

    def _instance_by_id(self, ev: StoredEvent, iid: str) -> dict[str, Any]:
        for inst, _seq, _cancelled in self._instances(ev):
            if inst["id"] == iid:
                return inst
        raise KeyError(f"no instance {iid}")

    def _render(self, body: dict[str, Any], calendar: str) -> dict[str, Any]:
        """The event as ``calendar``'s owner sees it (``self`` flags)."""
        out = copy.deepcopy(body)
        for key in ("organizer", "creator"):
            if key in out and out[key].get("email", "").lower() == calendar:
                out[key]["self"] = True
        for person in out.get("attendees", []):
            if person.get("email", "").lower() == calendar:
                person["self"] = True
        return out

    @staticmethod
    def _minimal(body: dict[str, Any]) -> dict[str, Any]:
        """What Google returns for a deleted event/instance: hardly more than the id."""
        out = {
            "kind": "calendar#event",
            "etag": body.get("etag"),
            "id": body["id"],
            "status": "cancelled",
        }
        for key in ("recurringEventId", "originalStartTime"):
            if key in body:
                out[key] = body[key]
        return out

    def _list_items(
        self,
        cal: Calendar,
        *,
        single_events: bool,
        show_deleted: bool,
        since_seq: int | None,
        time_min: datetime | None,
        time_max: datetime | None,
    ) -> list[dict[str, Any]]:
        incremental = since_seq is not None
        rows: list[tuple[dict[str, Any], int, bool]] = []
        for ev in cal.events.values():
            if ev.recurring and single_events:
                rows.extend(self._instances(ev))
            elif ev.recurring:
                rows.append((ev.body, ev.seq, ev.deleted))
                for inst, seq, cancelled in self._instances(ev):
                    if inst["id"] in ev.overrides and not ev.deleted:
                        rows.append((inst, seq, cancelled))
            else:
                rows.append((ev.body, ev.seq, ev.deleted or ev.body.get("status") == "cancelled"))
        items: list[tuple[datetime, str, dict[str, Any]]] = []
        for body, seq, cancelled in rows:
            if incremental:
                if seq <= since_seq:  # type: ignore[operator]
                    continue
            elif cancelled and not show_deleted:
                continue
            if not incremental:
                start, end = self._bounds(body)
                if time_min is not None and end <= time_min:
                    continue
                if time_max is not None and start >= time_max:
                    continue
            rendered = self._minimal(body) if cancelled else self._render(body, cal.email)
            items.append((self._bounds(body)[0], body["id"], rendered))
        items.sort(key=lambda row: (row[0], row[1]))
        return [row[2] for row in items]

    def _next_seq(self) -> int:
        with self._lock:
            self._last_seq += 1
            return self._last_seq

    def _notify(self, calendar: str) -> None:
        """A change on ``calendar``: every live channel gets an ``exists`` message."""
        for channel in self.live_channels(calendar):
            with self._lock:
                self._send(channel, "exists")

    def _send(self, channel: Channel, state: str) -> threading.Event:
        if channel.message_number == 0:
            channel.message_number = 1
        else:
            channel.message_number += self._rng.randint(1, 3)  # increasing, not consecutive
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": format_datetime(channel.expires_at, usegmt=True),
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(channel.message_number),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "Content-Length": "0",
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        assert self._deliverer is not None
        return self._deliverer.submit(Delivery(channel.id, channel.address, headers))

    # --- HTTP ----------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        v3 = "/calendar/v3"
        routes = [
            Route("/token", self._token, methods=["POST"]),
            Route(
                f"{v3}/calendars/{{calendarId}}/events/watch", self._events_watch, methods=["POST"]
            ),
            Route(f"{v3}/calendars/{{calendarId}}/events", self._events_list, methods=["GET"]),
            Route(f"{v3}/calendars/{{calendarId}}/events", self._events_insert, methods=["POST"]),
            Route(
                f"{v3}/calendars/{{calendarId}}/events/{{eventId}}",
                self._events_get,
                methods=["GET"],
            ),
            Route(f"{v3}/channels/stop", self._channels_stop, methods=["POST"]),
            Route(f"{v3}/freeBusy", self._freebusy, methods=["POST"]),
            Route("/_sink/{key}", self._sink, methods=["POST"]),
        ]
        return Starlette(routes=routes)

    async def _token(self, request: Request) -> Response:
        self.calls["token"] += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != JWT_BEARER:
            return oauth_error(
                400, "unsupported_grant_type", "Invalid grant_type: " + str(form.get("grant_type"))
            )
        assertion = str(form.get("assertion") or "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return oauth_error(400, "invalid_grant", "Invalid JWT: malformed assertion.")
        with self._lock:
            account = self.service_accounts.get(str(unverified.get("iss")))
        if account is None:
            return oauth_error(400, "invalid_grant", "Invalid grant: account not found")
        if header.get("kid") not in (None, account["private_key_id"]):
            return oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            claims = jwt.decode(
                assertion,
                account["public_key"],
                algorithms=["RS256"],
                # google-auth signs aud=https://oauth2.googleapis.com/token whatever the
                # key file's token_uri says; Google also accepts its own URL.
                audience=[GOOGLE_TOKEN_URL, self.token_uri],
                options={"require": ["iss", "aud", "exp", "iat"]},
                leeway=30,
            )
        except jwt.InvalidSignatureError:
            return oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        except jwt.ExpiredSignatureError:
            return oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
            )
        except jwt.PyJWTError as err:
            return oauth_error(400, "invalid_grant", f"Invalid JWT: {err}")
        if claims["exp"] - claims["iat"] > 3600 + 30:
            return oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
            )
        scopes = set(str(claims.get("scope", "")).split())
        if not scopes:
            return oauth_error(
                400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        subject = claims.get("sub")
        with self._lock:
            if subject is not None:
                subject = str(subject).lower()
                if subject not in self.calendars:
                    return oauth_error(400, "invalid_grant", "Invalid email or User ID")
                granted = self.delegations.get(account["client_id"], set())
                if not scopes <= granted:
                    return oauth_error(
                        401,
                        "unauthorized_client",
                        "Client is unauthorized to retrieve access tokens using this method, "
                        "or client not authorized for any of the scopes requested.",
                    )
            token = "ya29." + secrets.token_urlsafe(32)
            self.access_tokens[token] = {
                "subject": subject,
                "scopes": {s.removeprefix(SCOPE_PREFIX) for s in scopes},
                "expires": time.time() + self.token_lifetime,
            }
        return JSONResponse(
            {"access_token": token, "expires_in": self.token_lifetime - 1, "token_type": "Bearer"}
        )

    async def _begin(
        self, request: Request, method: str, body: Any = None
    ) -> tuple[str | None, Response | None]:
        """Count, record, authenticate, check scopes and inject faults; return subject."""
        gate = self.gates.get(method)
        if gate is not None:
            with self._lock:
                self.waiting[method] += 1
            await asyncio.to_thread(gate.wait, 30)
            with self._lock:
                self.waiting[method] -= 1
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        with self._lock:
            self.calls[method] += 1
            info = self.access_tokens.get(token or "")
            subject = info["subject"] if info else None
            self.requests.append(
                RecordedRequest(
                    method=method,
                    path=request.url.path,
                    query={
                        k: request.query_params.getlist(k)
                        for k in request.query_params.keys()
                        if k != "alt"
                    },
                    body=body,
                    subject=subject,
                )
            )
            if info is None or info["expires"] < time.time():
                return None, error_response(401, "authError")
            if not info["scopes"] & METHOD_SCOPES[method]:
                return None, insufficient_scopes(_RPC_NAMES[method])
            for index, fault in enumerate(self.faults):
                if fault.method in (None, method):
                    del self.faults[index]
                    headers = (
                        {"Retry-After": str(fault.retry_after)}
                        if fault.retry_after is not None
                        else None
                    )
                    if fault.body is not None:
                        return None, Response(
                            fault.body,
                            status_code=fault.status,
                            media_type="application/json",
                            headers=headers,
                        )
                    return None, error_response(fault.status, fault.reason, headers=headers)
        return subject, None

    def _owned_calendar(self, calendar_id: str, subject: str | None) -> Calendar | None:
        cid = calendar_id.lower()
        if cid == "primary" and subject:
            cid = subject
        if subject is None or cid != subject:
            return None
        return self.calendars.get(cid)

    async def _events_list(self, request: Request) -> Response:
        subject, failure = await self._begin(request, "events.list")
        if failure:
            return failure
        q = request.query_params
        with self._lock:
            cal = self._owned_calendar(request.path_params["calendarId"], subject)
            if cal is None:
                return error_response(404, "notFound")
            try:
                max_results = int(q.get("maxResults", "250"))
            except ValueError:
                return error_response(
                    400, "invalid", location="maxResults", locationType="parameter"
                )
            if not 1 <= max_results <= 2500:
                return error_response(
                    400, "invalid", location="maxResults", locationType="parameter"
                )
            sync_token = q.get("syncToken")
            if sync_token is not None:
                for name in SYNC_TOKEN_FORBIDDEN:
                    if name in q:
                        return error_response(
                            400, "invalid",
                            f"Sync token cannot be used together with the parameter {name}.",
                            location=name, locationType="parameter",
                        )  # fmt: skip
                if _bool(q.get("showDeleted")) is False:
                    return error_response(
                        400, "invalid", "showDeleted cannot be false with a sync token.",
                        location="showDeleted", locationType="parameter",
                    )  # fmt: skip
                known = self.sync_tokens.get(sync_token)
                if known is None or known[0] != cal.email or known[2] < cal.token_epoch:
                    return error_response(410, "fullSyncRequired")
            signature = json.dumps(
                {
                    k: q.getlist(k)
                    for k in sorted(q.keys())
                    if k not in ("pageToken", "alt", "maxResults")
                }
            )
            page_token = q.get("pageToken")
            if page_token is not None:
                state = self.page_states.get(page_token)
                if state is None or state["signature"] != signature:
                    return error_response(
                        400,
                        "invalid",
                        "Invalid page token or query changed.",
                        location="pageToken",
                        locationType="parameter",
                    )
            else:
                try:
                    time_min = _parse_time(q["timeMin"]) if "timeMin" in q else None
                    time_max = _parse_time(q["timeMax"]) if "timeMax" in q else None
                except ValueError:
                    return error_response(
                        400, "invalid", location="timeMin", locationType="parameter"
                    )
                if time_min and time_max and time_min >= time_max:
                    return error_response(400, "timeRangeEmpty")
                since_seq = self.sync_tokens[sync_token][1] if sync_token else None
                items = self._list_items(
                    cal,
                    single_events=bool(_bool(q.get("singleEvents"))),
                    show_deleted=bool(_bool(q.get("showDeleted"))),
                    since_seq=since_seq,
                    time_min=time_min,
                    time_max=time_max,
                )
                state = {
                    "signature": signature,
                    "items": items,
                    "offset": 0,
                    "seq": self._last_seq,
                    "empty_first": self.empty_first_page,
                }
            if state.pop("empty_first", False):
                chunk: list[dict[str, Any]] = []
                offset = 0
            else:
                offset = state["offset"]
                chunk = state["items"][offset : offset + max_results]
                offset += len(chunk)
            body: dict[str, Any] = {
                "kind": "calendar#events",
                "etag": f'"p{state["seq"]:015d}"',
                "summary": cal.email,
                "updated": _stamp(_now()),
                "timeZone": cal.time_zone,
                "accessRole": "owner",
                "defaultReminders": [{"method": "popup", "minutes": 10}],
                "items": chunk,
            }
            if offset < len(state["items"]):
                token = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()
                self.page_states[token] = {**state, "offset": offset}
                body["nextPageToken"] = token
            else:
                token = "C" + base64.urlsafe_b64encode(secrets.token_bytes(15)).decode().rstrip("=")
                self.sync_tokens[token] = (cal.email, state["seq"], cal.token_epoch)
                body["nextSyncToken"] = token
            return JSONResponse(body)

    async def _events_get(self, request: Request) -> Response:
        subject, failure = await self._begin(request, "events.get")
        if failure:
            return failure
        with self._lock:
            cal = self._owned_calendar(request.path_params["calendarId"], subject)
            if cal is None:
                return error_response(404, "notFound")
            event_id = request.path_params["eventId"]
            ev = cal.events.get(event_id)
            if ev is not None:
                return JSONResponse(
                    self._minimal(ev.body) if ev.deleted else self._render(ev.body, cal.email)
                )
            series_id = event_id.rpartition("_")[0]
            series = cal.events.get(series_id)
            if series is not None:
                for inst, _seq, cancelled in self._instances(series):
                    if inst["id"] == event_id:
                        return JSONResponse(
                            self._minimal(inst) if cancelled else self._render(inst, cal.email)
                        )
            return error_response(404, "notFound")

    async def _events_insert(self, request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        subject, failure = await self._begin(request, "events.insert", payload)
        if failure:
            return failure
        send_updates = request.query_params.get("sendUpdates")
        if send_updates not in (None, "all", "externalOnly", "none"):
            return error_response(400, "invalid", location="sendUpdates", locationType="parameter")
        if not isinstance(payload, dict):
            return error_response(400, "badRequest", "Invalid JSON payload received.")
        with self._lock:
            cal = self._owned_calendar(request.path_params["calendarId"], subject)
            if cal is None:
                return error_response(404, "notFound")
            for key in ("start", "end"):
                when = payload.get(key)
                if not isinstance(when, dict) or not (when.get("dateTime") or when.get("date")):
                    return error_response(400, "required", f"Missing {key} time.")
            try:
                start, end = self._bounds(payload)
            except (ValueError, KeyError):
                return error_response(400, "invalid", "Invalid start or end time.")
            if end < start:
                return error_response(400, "timeRangeEmpty")
            event_id = payload.get("id")
            if event_id is not None:
                if not (5 <= len(event_id) <= 1024) or not set(event_id) <= _ID_CHARS:
                    return error_response(400, "invalid", "Invalid resource id value.")
                if event_id in cal.events:
                    return error_response(409, "duplicate")
            else:
                event_id = self._event_id()
            now = _now()
            people = []
            for person in payload.get("attendees") or []:
                entry = dict(person)
                entry["email"] = entry["email"].lower()
                entry.setdefault(
                    "responseStatus", "accepted" if entry["email"] == cal.email else "needsAction"
                )
                people.append(entry)
            seq = self._next_seq()
            body = {
                **payload,
                "kind": "calendar#event",
                "id": event_id,
                "etag": self._etag(seq),
                "status": payload.get("status", "confirmed"),
                "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
                "created": _stamp(now),
                "updated": _stamp(now),
                "creator": {"email": cal.email},
                "organizer": {"email": cal.email},
                "iCalUID": payload.get("iCalUID") or f"{event_id}@google.com",
                "sequence": 0,
                "eventType": payload.get("eventType", "default"),
                "reminders": {"useDefault": True},
            }
            if people:
                body["attendees"] = people
            cal.events[event_id] = StoredEvent(body=body, seq=seq)
            self.sent_updates.append((event_id, send_updates))
            rendered = self._render(body, cal.email)
        self._notify(cal.email)
        return JSONResponse(rendered)

    async def _events_watch(self, request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        subject, failure = await self._begin(request, "events.watch", payload)
        if failure:
            return failure
        if not isinstance(payload, dict):
            return error_response(400, "badRequest", "Invalid JSON payload received.")
        with self._lock:
            cal = self._owned_calendar(request.path_params["calendarId"], subject)
            if cal is None:
                return error_response(404, "notFound")
            channel_id = payload.get("id")
            address = payload.get("address")
            if not channel_id:
                return error_response(400, "required", "Required channel id.")
            if payload.get("type") not in ("web_hook", "webhook"):
                return error_response(400, "invalid", "Invalid value for: type.")
            if not address:
                return error_response(400, "required", "Required address.")
            parsed = urlparse(address)
            loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
            if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
                # Google only delivers to https with a valid certificate; the emulator
                # also lets loopback http through so tests need no TLS.
                return error_response(
                    400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS: " + address
                )
            existing = self.channels.get(channel_id)
            if existing is not None and not existing.stopped:
                return error_response(
                    400, "channelIdNotUnique", f"Channel id {channel_id} not unique"
                )
            now_ms = int(_now().timestamp() * 1000)
            ttl = MAX_CHANNEL_TTL
            params = payload.get("params") or {}
            if "ttl" in params:
                try:
                    ttl = min(int(params["ttl"]), MAX_CHANNEL_TTL)
                except ValueError:
                    return error_response(400, "invalid", "Invalid ttl.")
            expiration = now_ms + ttl * 1000
            if payload.get("expiration"):
                expiration = min(expiration, int(payload["expiration"]))
            channel = Channel(
                id=channel_id,
                token=payload.get("token"),
                address=address,
                resource_id=cal.resource_id,
                resource_uri=f"{self.api_root}calendar/v3/calendars/{cal.email}/events?alt=json",
                calendar=cal.email,
                subject=subject or "",
                expiration_ms=expiration,
            )
            self.channels[channel_id] = channel
            done = self._send(channel, "sync")
        if self.sync_before_watch_response:
            await asyncio.to_thread(done.wait, 5)
        body = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "expiration": str(channel.expiration_ms),
        }
        if channel.token is not None:
            body["token"] = channel.token
        return JSONResponse(body)

    async def _channels_stop(self, request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        subject, failure = await self._begin(request, "channels.stop", payload)
        if failure:
            return failure
        if not isinstance(payload, dict) or not payload.get("id"):
            return error_response(400, "required", "Required channel id.")
        with self._lock:
            channel = self.channels.get(payload["id"])
            if (
                channel is None
                or channel.stopped
                or channel.subject != subject
                or payload.get("resourceId") not in (None, channel.resource_id)
            ):
                return error_response(
                    404,
                    "notFound",
                    f"Channel '{payload['id']}' not found for project '000000000000'",
                )
            channel.stopped = True
        return Response(status_code=204)

    async def _freebusy(self, request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        subject, failure = await self._begin(request, "freebusy.query", payload)
        if failure:
            return failure
        if not isinstance(payload, dict):
            return error_response(400, "badRequest", "Invalid JSON payload received.")
        for key in ("timeMin", "timeMax"):
            if not payload.get(key):
                return error_response(400, "required", f"Missing {key}.")
        try:
            time_min, time_max = _parse_time(payload["timeMin"]), _parse_time(payload["timeMax"])
        except ValueError:
            return error_response(400, "invalid", "Invalid timeMin/timeMax.")
        if time_min >= time_max:
            return error_response(400, "timeRangeEmpty")
        calendars: dict[str, Any] = {}
        with self._lock:
            for item in payload.get("items") or []:
                cid = str(item.get("id", ""))
                cal = self.calendars.get(subject if cid == "primary" and subject else cid.lower())
                if cal is None:
                    calendars[cid] = {
                        "errors": [{"domain": "global", "reason": "notFound"}],
                        "busy": [],
                    }
                    continue
                calendars[cid] = {"busy": self._busy(cal, time_min, time_max)}
        return JSONResponse(
            {
                "kind": "calendar#freeBusy",
                "timeMin": _stamp(time_min),
                "timeMax": _stamp(time_max),
                "calendars": calendars,
            }
        )

    def _busy(self, cal: Calendar, time_min: datetime, time_max: datetime) -> list[dict[str, str]]:
        spans: list[tuple[datetime, datetime]] = []
        items = self._list_items(
            cal,
            single_events=True,
            show_deleted=False,
            since_seq=None,
            time_min=time_min,
            time_max=time_max,
        )
        for item in items:
            if (
                item.get("transparency") == "transparent"
                or item.get("eventType") == "workingLocation"
            ):
                continue
            if any(
                p.get("self") and p.get("responseStatus") == "declined"
                for p in item.get("attendees", [])
            ):
                continue
            start, end = self._bounds(item)
            spans.append((max(start, time_min), min(end, time_max)))
        spans.sort()
        merged: list[list[datetime]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [
            {
                "start": s.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "end": e.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            }
            for s, e in merged
        ]

    async def _sink(self, request: Request) -> Response:
        with self._lock:
            self.sink.setdefault(request.path_params["key"], []).append(dict(request.headers))
        return Response(status_code=200)
