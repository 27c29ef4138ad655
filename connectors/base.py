"""What every calendar provider offers the engine, in provider-neutral types.

The engine never sees Google or Graph JSON: a connector maps its wire format to the
frozen value objects below and translates its errors into the small vocabulary of
`ProviderError` subclasses, always with ``raise ... from err``.

Sync is page-at-a-time so that a process killed mid-sync resumes from the stored cursor:

    page = await provider.sync_page(calendar, cursor=None, since=...)   # full sync
    ... apply page.events / page.removed_ids, store page.cursor ...
    while not page.last_page:
        page = await provider.sync_page(calendar, cursor=page.cursor, since=...)
    # the final page's cursor is the incremental cursor (Google nextSyncToken,
    # Graph @odata.deltaLink); the next sync_page(cursor=...) returns only changes.

A full sync (``page.full`` true) lists every live event in the window; when its last page
has been applied, the engine forgets events the full listing did not contain.
``CursorExpired`` (Google 410, Graph 410 on a delta token) means: start again with
``cursor=None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

Response = Literal["accepted", "declined", "tentative", "needs_action"]
EventStatus = Literal["confirmed", "tentative", "cancelled"]
EventType = Literal["default", "out_of_office", "focus_time", "working_location"]


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Attendee:
    """One invitee of an event as the rep's calendar shows it."""

    email: str
    response: Response = "needs_action"
    name: str | None = None
    is_resource: bool = False  # rooms, equipment: never a person
    is_organizer: bool = False
    optional: bool = False

    def __post_init__(self) -> None:
        if "@" not in self.email:
            raise ValueError(f"attendee e-mail {self.email!r} has no '@'")
        object.__setattr__(self, "email", self.email.strip().lower())


@dataclass(frozen=True, kw_only=True, slots=True)
class CalendarEvent:
    """An event (or one instance of a recurring event) on a rep's calendar.

    ``start``/``end`` are aware datetimes; for an all-day event they are midnight UTC of
    the first day and of the day after the last. ``rep_response`` is the calendar owner's
    own answer (the organizer's is ``accepted``).
    """

    event_id: str
    title: str = ""
    start: datetime
    end: datetime
    all_day: bool = False
    status: EventStatus = "confirmed"
    event_type: EventType = "default"
    organizer_email: str | None = None
    rep_response: Response = "accepted"
    attendees: tuple[Attendee, ...] = ()
    recurring_event_id: str | None = None  # the series this instance belongs to
    original_start: datetime | None = None  # an instance's start before it was moved
    created: datetime | None = None  # when the provider first recorded the event
    updated: datetime | None = None
    time_zone: str | None = None  # IANA zone the organizer used, when known

    def __post_init__(self) -> None:
        for name in ("start", "end", "original_start", "created", "updated"):
            _aware(name, getattr(self, name))
        if self.end < self.start:
            raise ValueError(f"event {self.event_id}: end {self.end} before start {self.start}")
        if self.organizer_email:
            object.__setattr__(self, "organizer_email", self.organizer_email.strip().lower())


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncPage:
    """One page of a sync round.

    ``events`` are new or changed events (a cancelled one has ``status='cancelled'``);
    ``removed_ids`` are event ids the provider reports gone (Graph ``@removed``).
    ``cursor`` resumes after this page; on the last page it is the incremental cursor.
    """

    events: tuple[CalendarEvent, ...] = ()
    removed_ids: tuple[str, ...] = ()
    cursor: str
    last_page: bool
    full: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class CalendarRef:
    """Which calendar a call is about: the rep's mailbox on the provider."""

    rep_id: str
    email: str
    timezone: str = "UTC"


@dataclass(frozen=True, kw_only=True, slots=True)
class WatchChannel:
    """A live push channel (Google) or subscription (Graph).

    ``token`` is our random secret the provider echoes back (Google channel token,
    Graph clientState); ``resource_id`` is the provider's id of the watched resource.
    """

    channel_id: str
    token: str
    resource_id: str | None = None
    expires_at: datetime

    def __post_init__(self) -> None:
        _aware("expires_at", self.expires_at)


@dataclass(frozen=True, kw_only=True, slots=True)
class BusyInterval:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _aware("start", self.start)
        _aware("end", self.end)


@dataclass(frozen=True, kw_only=True, slots=True)
class NewEvent:
    """An event to create on the rep's calendar; the provider invites the attendees.

    ``request_id`` makes a retried creation idempotent (Graph transactionId, Google event
    id derived from it).
    """

    title: str
    start: datetime
    end: datetime
    attendees: tuple[str, ...]
    body: str = ""
    time_zone: str = "UTC"
    request_id: str = field(default="")

    def __post_init__(self) -> None:
        _aware("start", self.start)
        _aware("end", self.end)
        if self.end <= self.start:
            raise ValueError("end must be after start")


# --- errors: the small vocabulary every connector translates into ---------------------


class ProviderError(Exception):
    """Base of every provider failure the engine handles."""


class AuthFailed(ProviderError):
    """The provider refuses this rep (delegation not granted, mailbox not allowed).

    Not fixed by retrying: the rep is marked and an admin has to re-consent.
    """


class Unavailable(ProviderError):
    """Transient: network error, 5xx, retries exhausted. Try again later."""


class RateLimited(Unavailable):
    """Throttled; ``retry_after`` seconds when the provider said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(ProviderError):
    """A daily/usage quota: retrying soon does not help."""


class CursorExpired(ProviderError):
    """The stored sync cursor is no longer valid: run a full sync."""


class NotFound(ProviderError):
    """The calendar, channel or event does not exist on the provider."""


class Conflict(ProviderError):
    """The provider refused a write as conflicting (e.g. duplicate id)."""


NotifyCallback = Callable[[str], Awaitable[None]]
"""Called by in-process providers with the rep id whose calendar changed."""


@runtime_checkable
class CalendarProvider(Protocol):
    """A calendar provider as the engine uses it.

    A provider may set ``renews_in_place = True`` (Graph: PATCH keeps the subscription);
    otherwise the engine renews by opening a new channel, storing it, then stopping the
    old one (Google), so notifications on either are accepted during the overlap.
    """

    name: str

    async def sync_page(
        self, calendar: CalendarRef, cursor: str | None, *, since: datetime
    ) -> SyncPage:
        """Return the next page: a full sync from ``since`` when ``cursor`` is None."""
        ...

    async def watch(self, calendar: CalendarRef, callback_url: str) -> WatchChannel:
        """Start push notifications for the calendar to ``callback_url``."""
        ...

    async def renew(
        self, calendar: CalendarRef, channel: WatchChannel, callback_url: str
    ) -> WatchChannel:
        """Extend a channel before it expires; may return a new channel (Google)."""
        ...

    async def unwatch(self, calendar: CalendarRef, channel: WatchChannel) -> None:
        """Stop a channel; a channel already gone is not an error."""
        ...

    async def free_busy(
        self, calendar: CalendarRef, start: datetime, end: datetime
    ) -> list[BusyInterval]:
        """Busy intervals of the calendar between ``start`` and ``end``."""
        ...

    async def create_event(self, calendar: CalendarRef, event: NewEvent) -> CalendarEvent:
        """Create an event with attendees; the provider sends the invitations."""
        ...

    async def aclose(self) -> None:
        """Release clients and connections."""
        ...
