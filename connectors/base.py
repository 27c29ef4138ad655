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

import hmac
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal, Protocol, runtime_checkable

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
    # A new time this attendee proposed (Outlook's counter-proposal, with a tentative answer
    # or a decline); None when they proposed none. Google's API exposes no proposals.
    proposed_start: datetime | None = None
    proposed_end: datetime | None = None

    def __post_init__(self) -> None:
        if "@" not in self.email:
            raise ValueError(f"attendee e-mail {self.email!r} has no '@'")
        object.__setattr__(self, "email", self.email.strip().lower())
        _aware("proposed_start", self.proposed_start)
        _aware("proposed_end", self.proposed_end)
        if (self.proposed_start is None) != (self.proposed_end is None):
            raise ValueError("a proposed time needs both proposed_start and proposed_end")
        if self.proposed_start and self.proposed_end and self.proposed_end <= self.proposed_start:
            raise ValueError("proposed_end must be after proposed_start")

    @property
    def proposed(self) -> bool:
        """The attendee counter-proposed a new time."""
        return self.proposed_start is not None


@dataclass(frozen=True, kw_only=True, slots=True)
class CalendarEvent:
    """An event (or one instance of a recurring event) on a rep's calendar.

    ``start``/``end`` are aware datetimes; for an all-day event they are midnight UTC of
    the first day and of the day after the last. ``rep_response`` is the calendar owner's
    own answer (the organizer's is ``accepted``). The organiser is always among
    ``attendees`` when anyone is: a provider that leaves them out gets them added, answer
    ``accepted``.
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
    # Marked private by its owner (Google visibility private|confidential, Outlook
    # sensitivity private|confidential): NextStep keeps it as busy time only.
    private: bool = False
    # The same meeting on every calendar it is on (RFC 5545 UID; for an instance of a
    # series, qualified by its original start so each instance is its own meeting).
    ical_uid: str | None = None
    description: str = ""  # the invitation text (Google description, Graph body preview)
    video_link: str | None = None  # Meet / Teams join URL when the event has one

    def __post_init__(self) -> None:
        for name in ("start", "end", "original_start", "created", "updated"):
            _aware(name, getattr(self, name))
        if self.end < self.start:
            raise ValueError(f"event {self.event_id}: end {self.end} before start {self.start}")
        if self.organizer_email:
            organizer = self.organizer_email.strip().lower()
            object.__setattr__(self, "organizer_email", organizer)
            listed = any(a.email == organizer for a in self.attendees)
            if self.attendees and "@" in organizer and not listed:
                # The organiser is an attendee for every rule, listed or not: a prospect's
                # own scheduling tool often leaves itself out of the attendee list.
                object.__setattr__(
                    self,
                    "attendees",
                    (
                        Attendee(email=organizer, response="accepted", is_organizer=True),
                        *self.attendees,
                    ),
                )


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncPage:
    """One page of a sync round.

    ``events`` are new or changed events (a cancelled one has ``status='cancelled'``);
    ``removed_ids`` are event ids the provider reports gone (Graph ``@removed``).
    ``cursor`` resumes after this page; on the last page it is the incremental cursor.
    ``skipped`` names the items the connector could not read (``"<id>: <reason>"``):
    one bad event is skipped, it never fails the page.
    """

    events: tuple[CalendarEvent, ...] = ()
    removed_ids: tuple[str, ...] = ()
    cursor: str
    last_page: bool
    full: bool
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class CalendarRef:
    """Which calendar a call is about: the rep's mailbox on the provider."""

    rep_id: str
    email: str
    timezone: str = "UTC"
    # The rep's own grant when the rep connected the calendar (an opaque string the
    # provider made: a refresh token, a serialized token cache); None in the admin modes.
    grant: str | None = field(default=None, repr=False, compare=False)


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
class ProviderHours:
    """The working hours the provider knows for a mailbox (Outlook's
    ``mailboxSettings.workingHours``): weekdays (0 = Monday), local start and end, and the
    IANA zone they are in (None: unknown). ``CalendarProvider.working_hours`` answers None
    where the provider does not say (Google's API exposes no working hours)."""

    days: tuple[int, ...]
    start: time
    end: time
    time_zone: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class NewEvent:
    """An event to create on the rep's calendar; the provider invites the attendees.

    ``request_id`` makes a retried creation idempotent (Graph transactionId, Google event
    id derived from it). ``video`` asks the provider for a video link (Google Meet through
    ``conferenceData``, Teams through ``isOnlineMeeting``). ``tentative`` shows the event as
    tentative where the provider has that (Graph ``showAs``): a hold.
    """

    title: str
    start: datetime
    end: datetime
    attendees: tuple[str, ...]
    body: str = ""
    time_zone: str = "UTC"
    request_id: str = field(default="")
    video: bool = False
    tentative: bool = False

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


# --- notifications: what a push says, however it arrives ----------------------------------

NotificationKind = Literal["sync", "change"]
Renewal = Literal["in_place", "replace"]


def _proves(channel_id: str, secret: str, resource_id: str | None, channel: WatchChannel) -> bool:
    """Constant-time: same channel id, same non-empty secret, same resource when both known."""
    ok = hmac.compare_digest(channel_id.encode(), channel.channel_id.encode())
    ok &= bool(secret) and bool(channel.token)
    ok &= hmac.compare_digest(secret.encode(), channel.token.encode())
    if resource_id is not None and channel.resource_id is not None:
        ok &= hmac.compare_digest(resource_id.encode(), channel.resource_id.encode())
    return ok


@dataclass(frozen=True, kw_only=True, slots=True)
class Notification:
    """One push notification in provider-neutral terms: which channel, its proof, which message.

    ``secret`` is what the provider echoed back (Google channel token, Graph clientState;
    ``""`` when absent). ``resource_id`` is compared with the stored channel's when both
    are known. ``dedupe_key`` is equal for a redelivery of the same message and differs
    for another message. ``kind`` ``"sync"`` is a handshake right after ``watch`` (Google's
    ``sync`` message): nothing changed, nothing to fetch.
    """

    channel_id: str
    secret: str
    resource_id: str | None = None
    dedupe_key: str
    kind: NotificationKind = "change"

    def __post_init__(self) -> None:
        if not self.channel_id:
            raise ValueError("notification without channel id")
        if not self.dedupe_key:
            raise ValueError("notification without dedupe key")

    def matches(self, channel: WatchChannel) -> bool:
        """True when this notification proves it came on ``channel`` (constant time)."""
        return _proves(self.channel_id, self.secret, self.resource_id, channel)


@dataclass(frozen=True, kw_only=True, slots=True)
class LifecycleEvent:
    """The provider speaking about the channel itself (Graph lifecycle notifications).

    ``renew``: renew the channel now (its authorization lapses, or it was removed);
    ``resync``: notifications may have been lost, sync the calendar. An event asking
    neither (one the provider added since) is acknowledged and otherwise ignored.
    """

    channel_id: str
    secret: str
    event: str
    renew: bool = False
    resync: bool = False

    def matches(self, channel: WatchChannel) -> bool:
        """True when this event proves it came for ``channel`` (constant time)."""
        return _proves(self.channel_id, self.secret, None, channel)


@dataclass(frozen=True, kw_only=True, slots=True)
class WebhookRequest:
    """A POST to one of a provider's webhook paths, as it arrived.

    ``path`` is the part after ``/webhooks/{provider}`` (``""``, ``"/lifecycle"``);
    ``headers`` look up names in any case.
    """

    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    received_at: datetime

    def __post_init__(self) -> None:
        _aware("received_at", self.received_at)


@dataclass(frozen=True, kw_only=True, slots=True)
class Inbound:
    """What one webhook request says, checked for shape (authenticity is the engine's check).

    ``handshake``: answer ``200 text/plain`` with exactly this body and store nothing
    (Graph's ``validationToken``). Otherwise the notifications and lifecycle events it
    carries, in order.
    """

    handshake: str | None = None
    notifications: tuple[Notification, ...] = ()
    lifecycle: tuple[LifecycleEvent, ...] = ()


class Webhooks(Protocol):
    """How a provider's notifications arrive over HTTP. Pure: no I/O, no credentials, so
    the endpoints exist whether or not this process is configured for the provider."""

    paths: Mapping[str, str]
    """Sub-paths under ``/webhooks/{provider}`` (``""`` is the path itself) → what arrives there."""

    accepted_status: int
    """The answer to a request whose notifications were taken (Google 200, Graph 202)."""

    def read(self, request: WebhookRequest) -> Inbound:
        """Parse one request; ``ValueError`` naming the header or field that is malformed."""
        ...


PushHandler = Callable[[Notification], Coroutine[Any, Any, None]]
"""The engine's intake for notifications an in-process provider pushes."""


class PushesOverHttp:
    """For providers whose notifications come through ``webhooks``: no in-process pushes."""

    def set_push_handler(self, handler: PushHandler | None) -> None:
        """Nothing is pushed in-process: the webhook endpoints take the notifications."""

    async def drain(self) -> None:
        """Nothing is pushed in-process: nothing to wait for."""


# --- the rep's own grant ----------------------------------------------------------------------

GrantHandler = Callable[[str, str], Coroutine[Any, Any, None]]
"""Stores a rep's grant that changed during a call (rep id, new grant), e.g. a rotated
refresh token: the engine keeps it encrypted and passes it back in ``CalendarRef.grant``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Identity:
    """Who signed in or connected, as the provider's verified id_token says."""

    email: str
    subject: str
    issuer: str
    name: str | None = None


class UserOAuth(Protocol):
    """A provider's sign-in and per-user connection (OAuth 2.0 code flow + PKCE, OIDC).

    ``begin`` answers the URL to send the browser to and ``pending``: what must be kept
    server-side (never in a URL or cookie in clear) until the callback. ``finish`` takes the
    callback's query and ``pending``; it answers who signed in (a verified id_token) and,
    for a connection, the grant to store encrypted; ``connectors.oidc.AuthRefused`` when
    the provider or a check refuses.
    """

    name: str
    label: str

    def begin(
        self, *, redirect_uri: str, state: str, connect: bool, login_hint: str | None
    ) -> tuple[str, str]: ...

    def finish(
        self, *, redirect_uri: str, pending: str, params: dict[str, str]
    ) -> tuple[Identity, str | None]: ...

    def release(self, rep_id: str, grant: str) -> None:
        """The rep is gone: revoke the grant where the provider can, forget it here."""
        ...


class UserGrants:
    """For providers that also reach a calendar with the rep's own grant."""

    user_oauth: UserOAuth | None = None

    def set_grant_handler(self, handler: GrantHandler | None) -> None:
        """Where a grant that changed during a call is handed (default: never changes)."""


# --- the provider ---------------------------------------------------------------------------


@runtime_checkable
class CalendarProvider(Protocol):
    """A calendar provider as the engine uses it; what differs between providers is said here.

    ``renewal`` says how a channel outlives its expiry. ``"in_place"``: ``renew`` extends
    the channel and keeps its id (Graph PATCH). ``"replace"``: channels cannot be extended,
    so ``renew`` opens a new channel and leaves the old one live (Google); the engine stores
    the new one, then stops the old one with ``unwatch``, so notifications on either are
    accepted during the overlap. Either way, a channel with a new id replaces the old one.

    ``webhooks`` reads the provider's webhook requests (None: nothing arrives over HTTP).
    In-process providers (the sandbox) push instead, to the handler given with
    ``set_push_handler``; ``drain`` waits until those pushes were handled.
    """

    name: str
    renewal: Renewal
    webhooks: Webhooks | None

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
        """A channel live past ``channel.expires_at``, as ``renewal`` says (above)."""
        ...

    async def unwatch(self, calendar: CalendarRef, channel: WatchChannel) -> None:
        """Stop a channel; a channel already gone is not an error."""
        ...

    async def free_busy(
        self, calendar: CalendarRef, start: datetime, end: datetime
    ) -> list[BusyInterval]:
        """Busy intervals between ``start`` and ``end``, sorted by start and clipped to the
        window; they may overlap or touch (the consumer merges: ``policies/slots.py``)."""
        ...

    async def create_event(self, calendar: CalendarRef, event: NewEvent) -> CalendarEvent:
        """Create an event with attendees; the provider sends the invitations."""
        ...

    async def update_event(
        self, calendar: CalendarRef, event_id: str, event: NewEvent
    ) -> CalendarEvent:
        """Move/rewrite an event the rep organises (time, title, text, attendees, video);
        the provider tells its attendees (Google ``sendUpdates=all``, Graph PATCH).
        ``NotFound`` when the event is gone."""
        ...

    async def delete_event(self, calendar: CalendarRef, event_id: str) -> None:
        """Delete an event the rep organises; one already gone is not an error."""
        ...

    async def working_hours(self, calendar: CalendarRef) -> ProviderHours | None:
        """The mailbox's working hours as the provider knows them; None when it does not."""
        ...

    def set_push_handler(self, handler: PushHandler | None) -> None:
        """Where an in-process provider pushes its notifications (webhook providers: unused)."""
        ...

    async def drain(self) -> None:
        """Wait until every notification pushed in-process was handled."""
        ...

    async def aclose(self) -> None:
        """Release clients and connections."""
        ...
