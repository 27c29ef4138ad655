"""The Graph emulator's model: mailboxes, their events and occurrences, subscriptions,
the server-side state behind delta tokens, and the emulator's clock.

Admin methods change mailboxes the way Exchange would (an organizer cancels, an attendee
answers, an occurrence is moved) and report each change through ``on_change(mailbox,
event_id, change_type)`` while the lock is held; the emulator turns that into change
notifications. Instances (``instances``) and their versions (``etag``) are what
calendarView delta compares between rounds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators.microsoft.times import fmt7
from tests.emulators.microsoft.zones import emulator_zone

_RESPONSE_IN = {
    "accepted": "accepted",
    "tentative": "tentativelyAccepted",
    "tentativelyaccepted": "tentativelyAccepted",
    "declined": "declined",
    "none": "none",
    "notresponded": "notResponded",
    "needs_action": "none",
}


def new_graph_id(seed: bytes | None = None) -> str:
    raw = b"\x00\x00\x1b\x00" + (seed if seed is not None else secrets.token_bytes(30))
    return "AAMkAD" + base64.b64encode(hashlib.sha256(raw).digest() + raw[4:12]).decode()


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
    sensitivity: str = "normal"  # normal | personal | private | confidential
    transaction_id: str | None = None
    join_url: str | None = None  # isOnlineMeeting with teamsForBusiness: the Teams link
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
    # Outlook's mailboxSettings.workingHours (in working_time_zone): new mailboxes have
    # Monday–Friday 08:00–17:00.
    working_days: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday")
    working_start: str = "08:00:00.0000000"
    working_end: str = "17:00:00.0000000"
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


def occurrence_id(ev: Event, original_start: datetime) -> str:
    """The id Graph gives one occurrence of a series (stable per original start)."""
    stamp = original_start.astimezone(UTC).strftime("%Y%m%dT%H%M%S").encode()
    return new_graph_id(ev.id.encode() + b"|" + stamp)


def instances(ev: Event) -> list[dict[str, Any]]:
    """calendarView instances of an event: itself, or its occurrences/exceptions."""
    base = {
        "ev": ev,
        "subject": ev.subject,
        "start": ev.start,
        "end": ev.end,
        "is_cancelled": ev.is_cancelled,
        "show_as": ev.show_as,
        "attendees": ev.attendees,
    }
    if ev.recurrence is None:
        return [{**base, "id": ev.id, "type": "singleInstance", "original_start": None}]
    step = timedelta(days=ev.recurrence.interval * (7 if ev.recurrence.freq == "weekly" else 1))
    out = []
    duration = ev.end - ev.start
    # Occurrences keep the series' wall-clock time in its own zone (a 10:00 weekly meeting
    # stays at 10:00 across a DST change, as Exchange expands it).
    first = ev.start.astimezone(emulator_zone(ev.time_zone) or UTC)
    for k in range(ev.recurrence.count):
        orig = (first + k * step).astimezone(UTC)
        ov = ev.overrides.get(orig, {})
        if ov.get("deleted"):
            continue
        inst = {
            **base,
            "id": occurrence_id(ev, orig),
            "type": "exception" if ov else "occurrence",
            "original_start": orig,
            "start": orig,
            "end": orig + duration,
        }
        inst.update({k2: v for k2, v in ov.items() if k2 in inst})
        out.append(inst)
    return out


def etag(mb: Mailbox, inst: dict[str, Any]) -> str:
    """The version of an instance: changes whenever anything delta reports changes."""
    ev: Event = inst["ev"]
    material = json.dumps(
        [
            inst["id"], inst["subject"], inst["start"].isoformat(), inst["end"].isoformat(),
            inst["is_cancelled"], inst["show_as"], ev.own_response, ev.time_zone, ev.all_day,
            [(a.email, a.type, a.response) for a in inst.get("attendees", ev.attendees)],
            ev.body, ev.location,
        ],
        default=str,
    )  # fmt: skip
    return base64.b64encode(hashlib.sha256(material.encode()).digest()[:18]).decode()


def in_window(inst: dict[str, Any], start: datetime, end: datetime) -> bool:
    return inst["start"] < end and inst["end"] > start


class GraphState:
    """Mailboxes, subscriptions and delta rounds, with a clock tests can move forward."""

    def __init__(self, *, on_change: Callable[[Mailbox, str, str], None]) -> None:
        self._lock = threading.RLock()
        self._on_change = on_change
        self._clock_offset = 0.0
        self.mailboxes: dict[str, Mailbox] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.delta_rounds: dict[str, DeltaRound] = {}
        self._generation: dict[str, int] = {}

    @property
    def lock(self) -> threading.RLock:
        """The one lock every part takes (re-entrant: admin calls nest)."""
        return self._lock

    # --- clock ---------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._clock_offset)

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (subscription and token expiry)."""
        with self._lock:
            self._clock_offset += seconds

    # --- admin: mailboxes ----------------------------------------------------------

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
        join_url: str | None = None,
        notify: bool = True,
        sensitivity: str | None = None,
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
                sensitivity=sensitivity or ("private" if is_private else "normal"),
                transaction_id=transaction_id,
                join_url=join_url,
                recurrence=recurrence,
            )
            mb.events[ev.id] = ev
            if notify:
                self._on_change(mb, ev.id, "created")
            return ev.id

    def event(self, email: str, event_id: str) -> tuple[Mailbox, Event]:
        mb = self.mailboxes[email.lower()]
        return mb, mb.events[event_id]

    def update_event(self, email: str, event_id: str, **changes: Any) -> None:
        """Change fields of an event (or series master): subject, start, end, show_as ..."""
        with self._lock:
            mb, ev = self.event(email, event_id)
            for key, value in changes.items():
                if not hasattr(ev, key):
                    raise AttributeError(key)
                setattr(ev, key, value)
            ev.modified = self.now()
            self._on_change(mb, event_id, "updated")

    def move_event(self, email: str, event_id: str, start: datetime, end: datetime) -> None:
        self.update_event(email, event_id, start=start, end=end)

    def cancel_event(self, email: str, event_id: str) -> None:
        """The organizer cancels: attendee copies get isCancelled, the organizer's is deleted."""
        with self._lock:
            mb, ev = self.event(email, event_id)
            for copy_mb, copy in self.copies(ev.ical_uid):
                if copy is ev:
                    continue
                copy.is_cancelled = True
                copy.subject = f"Canceled: {copy.subject}"
                copy.modified = self.now()
                self._on_change(copy_mb, copy.id, "updated")
            del mb.events[event_id]
            self._on_change(mb, event_id, "deleted")

    def delete_event(self, email: str, event_id: str) -> None:
        with self._lock:
            mb, _ = self.event(email, event_id)
            del mb.events[event_id]
            self._on_change(mb, event_id, "deleted")

    def occurrence_id(self, email: str, master_id: str, original_start: datetime) -> str:
        mb, ev = self.event(email, master_id)
        return occurrence_id(ev, original_start)

    def modify_occurrence(
        self, email: str, master_id: str, original_start: datetime, **changes: Any
    ) -> str:
        """Turn one occurrence into an exception (moved/renamed/...); returns its id."""
        with self._lock:
            mb, ev = self.event(email, master_id)
            ev.overrides.setdefault(original_start.astimezone(UTC), {}).update(changes)
            ev.modified = self.now()
            occ = occurrence_id(ev, original_start)
            self._on_change(mb, occ, "updated")
            return occ

    def delete_occurrence(self, email: str, master_id: str, original_start: datetime) -> str:
        with self._lock:
            mb, ev = self.event(email, master_id)
            ev.overrides[original_start.astimezone(UTC)] = {"deleted": True}
            occ = occurrence_id(ev, original_start)
            self._on_change(mb, occ, "deleted")
            return occ

    def set_response(self, email: str, event_id: str, attendee: str, response: str) -> None:
        """``attendee`` answers the event organised in ``email``'s calendar.

        The organizer's copy shows it in ``attendees[].status``; the attendee's own copy
        (when the attendee is an emulated mailbox) in ``responseStatus``.
        """
        graph_response = _RESPONSE_IN[response.lower()]
        with self._lock:
            mb, ev = self.event(email, event_id)
            for copy_mb, copy in self.copies(ev.ical_uid):
                if copy_mb.email.lower() == attendee.lower():
                    copy.own_response = graph_response
                for a in copy.attendees:
                    if a.email.lower() == attendee.lower() and copy_mb.email.lower() == (
                        copy.organizer[0].lower()
                    ):
                        a.response = graph_response
                copy.modified = self.now()
                self._on_change(copy_mb, copy.id, "updated")

    def set_occurrence_response(
        self, email: str, master_id: str, original_start: datetime, attendee: str, response: str
    ) -> str:
        """``attendee`` answers one occurrence of the series organised in ``email``'s
        calendar: the occurrence becomes an exception with its own attendee list (Graph
        shows each exception's own answers; the series keeps its own)."""
        graph_response = _RESPONSE_IN[response.lower()]
        with self._lock:
            mb, ev = self.event(email, master_id)
            ov = ev.overrides.setdefault(original_start.astimezone(UTC), {})
            people = [replace(a) for a in ov.get("attendees", ev.attendees)]
            for a in people:
                if a.email.lower() == attendee.lower():
                    a.response = graph_response
            ov["attendees"] = people
            ev.modified = self.now()
            occ = occurrence_id(ev, original_start)
            self._on_change(mb, occ, "updated")
            return occ

    def set_own_response(self, email: str, event_id: str, response: str) -> None:
        with self._lock:
            mb, ev = self.event(email, event_id)
            ev.own_response = _RESPONSE_IN[response.lower()]
            ev.modified = self.now()
            self._on_change(mb, event_id, "updated")

    def copies(self, ical_uid: str) -> list[tuple[Mailbox, Event]]:
        """Every mailbox's copy of one meeting (the organizer's and the invitees')."""
        return [
            (mb, ev)
            for mb in self.mailboxes.values()
            for ev in mb.events.values()
            if ev.ical_uid == ical_uid
        ]

    def send_update(self, mb: Mailbox, ev: Event, *, moved: bool) -> None:
        """The organizer's update reaches each invitee's copy (a new time resets answers)."""
        for copy_mb, copy in self.copies(ev.ical_uid):
            if copy is ev:
                continue
            copy.subject, copy.start, copy.end, copy.body = ev.subject, ev.start, ev.end, ev.body
            copy.join_url = ev.join_url
            copy.attendees = [replace(x) for x in ev.attendees]
            if moved:
                copy.own_response = "notResponded"
            copy.modified = self.now()
            self._on_change(copy_mb, copy.id, "updated")

    def deliver_invitations(self, mb: Mailbox, ev: Event) -> None:
        """Exchange puts a copy of ``mb``'s new meeting in each attendee hosted here."""
        for a in ev.attendees:
            target = self.mailboxes.get(a.email.lower())
            if target is None or target is mb:
                continue
            copy = replace(
                ev,
                id=new_graph_id(),
                own_response="notResponded",
                attendees=[replace(x) for x in ev.attendees],
                transaction_id=None,
                overrides={},
            )
            target.events[copy.id] = copy
            self._on_change(target, copy.id, "created")

    # --- delta state ---------------------------------------------------------------

    def expire_delta_tokens(self, email: str | None = None) -> None:
        """Every delta/skip token of the mailbox (or all) now answers 410 SyncStateNotFound."""
        with self._lock:
            for key in [email.lower()] if email else list(self.mailboxes):
                self._generation[key] = self._generation.get(key, 0) + 1

    def generation(self, mailbox_key: str) -> int:
        """How often the mailbox's delta tokens were expired (rounds remember theirs)."""
        return self._generation.get(mailbox_key, 0)

    def all_instances(self, mb: Mailbox) -> dict[str, dict[str, Any]]:
        return {i["id"]: i for ev in mb.events.values() for i in instances(ev)}
