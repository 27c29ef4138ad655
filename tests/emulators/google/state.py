"""The Google emulator's model: calendars, events and their instances, channels, tokens.

What Google stores and how it changes, apart from HTTP: the admin methods are the changes
providers report (an organizer moves a meeting, an attendee answers), the rest is what
the endpoints in ``handlers.py`` read and write. Every change bumps one sequence number;
sync tokens remember the sequence they were issued at. ``on_change(calendar)`` is called
after each change (the emulator pushes ``exists`` notifications from it).
"""

from __future__ import annotations

import base64
import copy
import random
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.emulators.common.rfc3339 import utc_stamp
from tests.emulators.google import recurrence

EXPANSION_DAYS = 730


def now() -> datetime:
    return datetime.now(UTC)


def stamp(value: datetime) -> str:
    """Google's ``updated``/``created`` form: UTC with milliseconds."""
    return utc_stamp(value, digits=3)


def parse_time(value: str) -> datetime:
    """An RFC 3339 time with an offset (``Z`` or ``±hh:mm``); ValueError otherwise."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(value)
    return parsed


def etag(seq: int) -> str:
    return f'"{3044897856406000 + seq}"'


def when(value: datetime | date, time_zone: str) -> dict[str, str]:
    """An event's ``start``/``end``: ``dateTime`` + ``timeZone``, or ``date`` (all-day)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("emulator datetimes must be aware")
        return {
            "dateTime": value.astimezone(ZoneInfo(time_zone)).isoformat(),
            "timeZone": time_zone,
        }
    return {"date": value.isoformat()}


def bounds(body: dict[str, Any]) -> tuple[datetime, datetime]:
    """Start and end of an event body, in UTC (all-day dates at UTC midnight)."""

    def one(moment: dict[str, Any]) -> datetime:
        if "dateTime" in moment:
            return parse_time(moment["dateTime"]).astimezone(UTC)
        return datetime.fromisoformat(moment["date"]).replace(tzinfo=UTC)

    return one(body["start"]), one(body["end"])


def render(body: dict[str, Any], calendar: str) -> dict[str, Any]:
    """The event as ``calendar``'s owner sees it (``self`` flags)."""
    out = copy.deepcopy(body)
    for key in ("organizer", "creator"):
        if key in out and out[key].get("email", "").lower() == calendar:
            out[key]["self"] = True
    for person in out.get("attendees", []):
        if person.get("email", "").lower() == calendar:
            person["self"] = True
    return out


def minimal(body: dict[str, Any]) -> dict[str, Any]:
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


def _set_response(people: list[dict[str, Any]], attendee: str, response: str) -> None:
    for person in people:
        if person["email"].lower() == attendee:
            person["responseStatus"] = response
            return
    people.append({"email": attendee, "responseStatus": response})


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
    """A notification channel made by ``events.watch``."""

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


class CalendarStore:
    """Users' primary calendars, their events, watch channels, page and sync tokens."""

    def __init__(self, *, seed: int = 0, on_change: Callable[[str], None]) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._last_seq = 0
        self._on_change = on_change
        self.calendars: dict[str, Calendar] = {}
        self.channels: dict[str, Channel] = {}
        self.sync_tokens: dict[str, tuple[str, int, int]] = {}  # token -> (calendar, seq, epoch)
        self.page_states: dict[str, dict[str, Any]] = {}
        self.sent_updates: list[tuple[str, str | None]] = []
        self.empty_first_page = False

    @property
    def lock(self) -> threading.RLock:
        """The one lock every part takes (re-entrant: admin calls nest)."""
        return self._lock

    # --- admin: users and events (as the organizer / attendees would change them) ------

    def add_user(self, email: str, *, time_zone: str = "UTC") -> Calendar:
        """A Workspace user with a primary calendar whose id is the e-mail."""
        email = email.lower()
        with self._lock:
            if email not in self.calendars:
                self.calendars[email] = Calendar(
                    email=email, time_zone=time_zone, resource_id=self._opaque(19)
                )
            return self.calendars[email]

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
        visibility: str | None = None,
    ) -> str:
        """Put an event on ``calendar``; the rep organizes it unless ``organizer`` is set.

        ``visibility``: ``default`` (absent), ``public``, ``private`` or ``confidential``.
        """
        cal = self.calendar(calendar)
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
        created = now()
        body: dict[str, Any] = {
            "kind": "calendar#event",
            "id": event_id or self.new_event_id(),
            "status": status,
            "summary": summary,
            "created": stamp(created),
            "updated": stamp(created),
            "creator": {"email": organizer},
            "organizer": {"email": organizer},
            "start": when(start, time_zone),
            "end": when(end, time_zone),
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
        if visibility:
            body["visibility"] = visibility
        with self._lock:
            seq = self.next_seq()
            body["etag"] = etag(seq)
            cal.events[body["id"]] = StoredEvent(body=body, seq=seq)
        self._on_change(cal.email)
        return body["id"]

    def update_event(self, calendar: str, event_id: str, **changes: Any) -> None:
        """Change fields of an event or series (``start``/``end`` move it; a move is an update)."""
        cal = self.calendar(calendar)
        with self._lock:
            ev = cal.events[event_id]
            tz = ev.body["start"].get("timeZone", "UTC")
            for key, value in changes.items():
                if key in ("start", "end"):
                    ev.body[key] = when(value, changes.get("time_zone", tz))
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
        self._on_change(cal.email)

    def move_event(self, calendar: str, event_id: str, start: datetime, end: datetime) -> None:
        """Reschedule: Google reports it as an update carrying the new start/end."""
        self.update_event(calendar, event_id, start=start, end=end)

    def cancel_event(self, calendar: str, event_id: str) -> None:
        """The organizer deletes/cancels the event (or the whole series)."""
        cal = self.calendar(calendar)
        with self._lock:
            ev = cal.events[event_id]
            ev.deleted = True
            ev.body["status"] = "cancelled"
            self._touch(ev)
        self._on_change(cal.email)

    def set_response(self, calendar: str, event_id: str, attendee: str, response: str) -> None:
        """An attendee answers (``accepted``/``declined``/``tentative``/``needsAction``).

        ``event_id`` may be a series (all instances) or one instance id (an exception).
        """
        cal = self.calendar(calendar)
        attendee = attendee.lower()
        with self._lock:
            if event_id in cal.events:
                ev = cal.events[event_id]
                _set_response(ev.body.setdefault("attendees", []), attendee, response)
                self._touch(ev)
            else:
                series_id, _, _suffix = event_id.rpartition("_")
                ev = cal.events[series_id]
                inst = self.instance_by_id(ev, event_id)
                override = self._override(ev, event_id)
                people = override.patch.get("attendees") or copy.deepcopy(inst.get("attendees", []))
                _set_response(people, attendee, response)
                override.patch["attendees"] = people
        self._on_change(cal.email)

    def move_instance(
        self, calendar: str, series_id: str, original_start: datetime | date,
        start: datetime | date, end: datetime | date,
    ) -> str:  # fmt: skip
        """Move one occurrence: it becomes an exception (originalStartTime ≠ start)."""
        cal = self.calendar(calendar)
        with self._lock:
            ev = cal.events[series_id]
            iid = f"{series_id}_{recurrence.instance_suffix(original_start)}"
            self.instance_by_id(ev, iid)
            tz = ev.body["start"].get("timeZone", "UTC")
            override = self._override(ev, iid)
            override.patch["start"] = when(start, tz)
            override.patch["end"] = when(end, tz)
        self._on_change(cal.email)
        return iid

    def cancel_instance(
        self, calendar: str, series_id: str, original_start: datetime | date
    ) -> str:
        """Delete one occurrence of a series."""
        cal = self.calendar(calendar)
        with self._lock:
            ev = cal.events[series_id]
            iid = f"{series_id}_{recurrence.instance_suffix(original_start)}"
            self.instance_by_id(ev, iid)
            self._override(ev, iid).cancelled = True
        self._on_change(cal.email)
        return iid

    def invalidate_sync_tokens(self, calendar: str) -> None:
        """Every sync token issued so far for the calendar now gets ``410 fullSyncRequired``."""
        with self._lock:
            self.calendar(calendar).token_epoch += 1

    # --- admin: channels -----------------------------------------------------------------

    def expire_channel(self, channel_id: str) -> None:
        """Make a channel reach its expiration now: no more notifications."""
        with self._lock:
            self.channels[channel_id].expiration_ms = int(now().timestamp() * 1000) - 1

    def live_channels(self, calendar: str) -> list[Channel]:
        """Channels on ``calendar`` that are neither stopped nor expired."""
        now_ms = int(now().timestamp() * 1000)
        with self._lock:
            return [
                c for c in self.channels.values()
                if c.calendar == calendar.lower() and not c.stopped and c.expiration_ms > now_ms
            ]  # fmt: skip

    # --- what the endpoints use ----------------------------------------------------------

    def calendar(self, email: str) -> Calendar:
        """The calendar of ``email``; KeyError when no such user was added."""
        cal = self.calendars.get(email.lower())
        if cal is None:
            raise KeyError(f"unknown calendar {email}")
        return cal

    def owned_calendar(self, calendar_id: str, subject: str | None) -> Calendar | None:
        """The calendar ``calendar_id`` (or ``primary``) if ``subject`` owns it."""
        cid = calendar_id.lower()
        if cid == "primary" and subject:
            cid = subject
        if subject is None or cid != subject:
            return None
        return self.calendars.get(cid)

    def new_event_id(self) -> str:
        """A server-made event id (base32hex, 26 characters)."""
        return "".join(self._rng.choice("abcdefghijklmnopqrstuv0123456789") for _ in range(26))

    @property
    def last_seq(self) -> int:
        """The sequence number of the latest change (what a new sync token starts from)."""
        return self._last_seq

    def next_seq(self) -> int:
        with self._lock:
            self._last_seq += 1
            return self._last_seq

    def insert_event(
        self, cal: Calendar, payload: dict[str, Any], event_id: str, send_updates: str | None
    ) -> dict[str, Any]:
        """``events.insert`` of a checked payload; returns the event as the owner sees it."""
        created = now()
        people = []
        for person in payload.get("attendees") or []:
            entry = dict(person)
            entry["email"] = entry["email"].lower()
            entry.setdefault(
                "responseStatus", "accepted" if entry["email"] == cal.email else "needsAction"
            )
            people.append(entry)
        with self._lock:
            seq = self.next_seq()
            body = {
                **payload,
                "kind": "calendar#event",
                "id": event_id,
                "etag": etag(seq),
                "status": payload.get("status", "confirmed"),
                "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
                "created": stamp(created),
                "updated": stamp(created),
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
            rendered = render(body, cal.email)
        self._on_change(cal.email)
        return rendered

    def patch_event(
        self, cal: Calendar, ev: StoredEvent, payload: dict[str, Any], send_updates: str | None
    ) -> dict[str, Any]:
        """``events.patch`` of a checked payload on a live single event."""
        with self._lock:
            moved = any(
                key in payload and payload[key] != ev.body.get(key) for key in ("start", "end")
            )
            answers = {
                p["email"].lower(): p.get("responseStatus", "needsAction")
                for p in ev.body.get("attendees", [])
            }
            if "conferenceData" in payload and "conferenceData" in ev.body:
                # An event keeps its conference: a new createRequest does not replace it.
                payload = {
                    k: v for k, v in payload.items() if k not in ("conferenceData", "hangoutLink")
                }
            for key, value in payload.items():
                if key in ("id", "kind", "etag", "created", "creator", "organizer", "iCalUID"):
                    continue
                ev.body[key] = copy.deepcopy(value)
            people = []
            for person in ev.body.get("attendees") or []:
                entry = dict(person)
                entry["email"] = entry["email"].lower()
                if entry["email"] == cal.email:
                    entry["responseStatus"] = "accepted"
                elif moved or "responseStatus" not in entry:
                    # A new time: every guest is asked again.
                    entry["responseStatus"] = (
                        "needsAction" if moved else answers.get(entry["email"], "needsAction")
                    )
                people.append(entry)
            if people:
                ev.body["attendees"] = people
            else:
                ev.body.pop("attendees", None)
            self._touch(ev)
            self.sent_updates.append((ev.body["id"], send_updates))
            rendered = render(ev.body, cal.email)
        self._on_change(cal.email)
        return rendered

    def find(self, cal: Calendar, event_id: str) -> dict[str, Any] | None:
        """``events.get``: an event or instance as the owner sees it (minimal if deleted)."""
        ev = cal.events.get(event_id)
        if ev is not None:
            return minimal(ev.body) if ev.deleted else render(ev.body, cal.email)
        series = cal.events.get(event_id.rpartition("_")[0])
        if series is not None:
            for inst, _seq, cancelled in self.instances(series):
                if inst["id"] == event_id:
                    return minimal(inst) if cancelled else render(inst, cal.email)
        return None

    def instances(self, ev: StoredEvent) -> list[tuple[dict[str, Any], int, bool]]:
        """Expanded instances of a series: ``(body, seq, cancelled)``."""
        master = ev.body
        start_when = master["start"]
        all_day = "date" in start_when
        tz_name = start_when.get("timeZone") or "UTC"
        zone = ZoneInfo(tz_name) if not all_day else ZoneInfo("UTC")
        first_start, first_end = bounds(master)
        duration = first_end - first_start
        horizon = max(now(), first_start) + timedelta(days=EXPANSION_DAYS)
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
                inst["etag"] = etag(seq)
            if cancelled:
                inst["status"] = "cancelled"
            out.append((inst, seq, cancelled))
        return out

    def instance_by_id(self, ev: StoredEvent, iid: str) -> dict[str, Any]:
        for inst, _seq, _cancelled in self.instances(ev):
            if inst["id"] == iid:
                return inst
        raise KeyError(f"no instance {iid}")

    def list_items(
        self,
        cal: Calendar,
        *,
        single_events: bool,
        show_deleted: bool,
        since_seq: int | None,
        time_min: datetime | None,
        time_max: datetime | None,
    ) -> list[dict[str, Any]]:
        """What ``events.list`` returns over all pages, in start order.

        ``since_seq`` (from a sync token): only entries changed since, deleted ones
        included as minimal bodies, whatever ``show_deleted`` and the time bounds say.
        """
        incremental = since_seq is not None
        rows: list[tuple[dict[str, Any], int, bool]] = []
        for ev in cal.events.values():
            if ev.recurring and single_events:
                rows.extend(self.instances(ev))
            elif ev.recurring:
                rows.append((ev.body, ev.seq, ev.deleted))
                for inst, seq, cancelled in self.instances(ev):
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
                start, end = bounds(body)
                if time_min is not None and end <= time_min:
                    continue
                if time_max is not None and start >= time_max:
                    continue
            rendered = minimal(body) if cancelled else render(body, cal.email)
            items.append((bounds(body)[0], body["id"], rendered))
        items.sort(key=lambda row: (row[0], row[1]))
        return [row[2] for row in items]

    def busy(self, cal: Calendar, time_min: datetime, time_max: datetime) -> list[dict[str, str]]:
        """``freeBusy``: merged busy spans (UTC) of what the owner has not declined."""
        spans: list[tuple[datetime, datetime]] = []
        items = self.list_items(
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
            start, end = bounds(item)
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

    def new_page_token(self, state: dict[str, Any]) -> str:
        """Remember where a listing stopped; the token continues it."""
        token = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()
        self.page_states[token] = state
        return token

    def new_sync_token(self, cal: Calendar, seq: int) -> str:
        """A sync token for changes after ``seq`` (invalidated with the calendar's epoch)."""
        token = "C" + base64.urlsafe_b64encode(secrets.token_bytes(15)).decode().rstrip("=")
        self.sync_tokens[token] = (cal.email, seq, cal.token_epoch)
        return token

    def watch(
        self, cal: Calendar, *, channel_id: str, token: str | None, address: str,
        resource_uri: str, subject: str, expiration_ms: int,
    ) -> Channel:  # fmt: skip
        """A new channel on ``cal`` (replacing a stopped one of the same id)."""
        channel = Channel(
            id=channel_id,
            token=token,
            address=address,
            resource_id=cal.resource_id,
            resource_uri=resource_uri,
            calendar=cal.email,
            subject=subject,
            expiration_ms=expiration_ms,
        )
        self.channels[channel_id] = channel
        return channel

    # --- internals -----------------------------------------------------------------------

    def _opaque(self, n: int) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def _touch(self, ev: StoredEvent) -> None:
        ev.seq = self.next_seq()
        ev.body["updated"] = stamp(now())
        ev.body["etag"] = etag(ev.seq)
        ev.body["sequence"] = ev.body.get("sequence", 0) + 1

    def _override(self, ev: StoredEvent, iid: str) -> Override:
        seq = self.next_seq()
        override = ev.overrides.get(iid)
        if override is None:
            override = ev.overrides[iid] = Override(seq=seq, updated=stamp(now()))
        override.seq = seq
        override.updated = stamp(now())
        return override
