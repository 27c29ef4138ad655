"""Microsoft 365 calendars through Microsoft Graph (app-only, client credentials).

API for the app (``app/providers.py`` wires this):

    provider = MicrosoftConnector(tenant_id, client_id, client_secret,
                                  authority=settings.ms_authority,      # None = public cloud
                                  graph_root=settings.graph_api_root)
    cal = CalendarRef(rep_id=rep.id, email=rep.email)

    page = await provider.sync_page(cal, cursor=None, since=since)       # full round
    page = await provider.sync_page(cal, cursor=page.cursor, since=since) # next page / changes
    channel = await provider.watch(cal, f"{PUBLIC_URL}/webhooks/microsoft")
    channel = await provider.renew(cal, channel, f"{PUBLIC_URL}/webhooks/microsoft")
    await provider.unwatch(cal, channel)
    busy = await provider.free_busy(cal, start, end)
    event = await provider.create_event(cal, NewEvent(..., request_id=stable_id))
    await provider.aclose()

Webhooks (``MicrosoftConnector.webhooks``, ``connectors.microsoft.notifications``):
- ``watch`` sets ``notificationUrl = callback_url`` and
  ``lifecycleNotificationUrl = callback_url + "/lifecycle"``. Graph validates BOTH before
  it answers ``watch``: each endpoint must answer ``POST ?validationToken=X`` with
  ``200 text/plain`` body ``X`` within 10 s. So the webhook routes must be live before
  ``watch`` runs, and must not demand a body or clientState on validation requests.
- Store ``WatchChannel.channel_id`` (subscription id) and ``token`` (clientState).
  ``webhooks.read`` gives neutral notifications keyed by ``subscriptionId`` (the
  ``resource`` names the user by object id, not e-mail); the engine refuses one unless
  its clientState matches the stored subscription's (``Notification.matches``), then
  runs ``sync_page`` with the stored cursor. Graph may deliver a notification twice or
  drop one: sync is the truth, notifications only trigger it.
- Lifecycle events: ``reauthorizationRequired`` -> renew; ``subscriptionRemoved`` ->
  renew (which creates it anew) and resync; ``missed`` -> resync with the stored cursor.
- Renewal (``renewal == "in_place"``): subscriptions on events live at most 10,080
  minutes; ``watch``/``renew`` ask for ``subscription_minutes`` (default 10,000).
  ``renew`` PATCHes the subscription, and creates a new one when Graph no longer knows
  the old one (a new ``channel_id``: the engine stores it and forgets the old one).

Sync: ``GET /users/{email}/calendarView/delta`` over ``[since, now + future_days)`` (at
least ``window_days`` long, at most Graph's 1,825 days): the past the engine asks for —
account health reads a year and more back — and the future,
events as instances (occurrences and exceptions of series carry ``recurring_event_id`` =
``seriesMasterId`` and ``original_start``). Cursors are opaque strings. A delta token
Graph no longer knows (410 ``SyncStateNotFound``/``resyncRequired``) raises
``CursorExpired``, and so does an incremental cursor whose window started more than
``window_roll_days`` before ``since``: the window is fixed inside Graph's token, so the
connector forces a full round to roll it forward.

Errors (all ``raise ... from`` the Graph/MSAL error): ``AuthFailed`` - bad app
credentials or consent (MSAL ``invalid_client``/``unauthorized_client``...), 401/403,
``ErrorAccessDenied`` (mailbox outside the app's RBAC scope / access policy),
``MailboxNotEnabledForRESTAPI``; ``NotFound`` - 404 (unknown mailbox, subscription gone);
``CursorExpired`` - see above; ``RateLimited(retry_after)`` - 429 after ``max_attempts``
or a Retry-After longer than ``max_retry_after``; ``Unavailable`` - 5xx/network after
the retries; ``Conflict`` - 409; anything else (a 400 such as a failed webhook
``ValidationError`` on ``watch``) - plain ``ProviderError`` with Graph's code in the text.

Constructor extras beyond the common ones: ``future_days`` (365), ``window_roll_days`` (30),
``subscription_minutes`` (10,000, at most 10,080), ``max_retry_after`` (60 s),
``transport`` (an httpx transport, for tests), ``clock`` (returns aware "now").

Counter-proposals: an attendee's ``proposedNewTime`` (organizer's copy, with a
``tentativelyAccepted`` or ``declined`` status) becomes ``Attendee.proposed_start/_end``.

Mapping notes: ``showAs == "oof"`` with nobody but the mailbox on it -> ``out_of_office``
(an away event with attendees is a meeting); Graph has no focus-time or
working-location marker on events, so those stay ``default``. ``iCalUId`` (the same on every
attendee's copy, different for each occurrence) becomes ``ical_uid``. All-day events are midnight UTC of their dates.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import (
    Attendee,
    AuthFailed,
    BusyInterval,
    CalendarEvent,
    CalendarRef,
    Conflict,
    CursorExpired,
    EventType,
    GrantHandler,
    NewEvent,
    NotFound,
    ProviderError,
    ProviderHours,
    PushesOverHttp,
    RateLimited,
    Renewal,
    Response,
    SyncPage,
    Unavailable,
    UserGrants,
    WatchChannel,
    Webhooks,
)
from connectors.http import ErrorTable, format_rfc3339, parse_rfc3339, rule
from connectors.microsoft.client import (
    GraphClient,
    GraphError,
    GraphTokenError,
    GraphTransportError,
)
from connectors.microsoft.notifications import GraphWebhooks
from connectors.microsoft.oauth import MicrosoftOAuth
from connectors.microsoft.timezones import (
    all_day_bound,
    from_date_time_time_zone,
    iana_name,
    to_graph,
)

log = logging.getLogger(__name__)

SUBSCRIPTION_MAX_MINUTES = 10_080  # Outlook event subscriptions
GETSCHEDULE_MAX_WINDOW = timedelta(days=60)  # Graph's limit is 62 days
CALENDARVIEW_MAX_DAYS = 1825  # "Maximum number of days: 1825" (ErrorInvalidRequest)

_RESPONSE_MAP: dict[str, Response] = {
    "accepted": "accepted",
    "organizer": "accepted",
    "tentativelyaccepted": "tentative",
    "declined": "declined",
    "none": "needs_action",
    "notresponded": "needs_action",
}
# getSchedule statuses that make a slot unavailable; "free" and "unknown" do not.
BUSY_STATUSES = frozenset({"busy", "oof", "tentative", "workingelsewhere"})
_AUTH_CODES = frozenset(
    {
        "erroraccessdenied",
        "accessdenied",
        "mailboxnotenabledforrestapi",
        "mailboxnotsupportedforrestapi",
        "authorization_requestdenied",
        "invalidauthenticationtoken",
        "authenticationerror",
        "errorinvalidimpersonationheader",
    }
)
_TOKEN_TRANSIENT = frozenset({"temporarily_unavailable", "server_error"})
_CURSOR_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})

GRAPH_ERRORS = ErrorTable(
    rule(CursorExpired, {410}),
    rule(CursorExpired, codes=_CURSOR_CODES),
    rule(AuthFailed, {401, 403}),
    rule(AuthFailed, codes=_AUTH_CODES),
    rule(RateLimited, {429}),
    rule(NotFound, {404}),
    rule(Conflict, {409}),
)
"""Graph's statuses and ``error.code`` values in the neutral vocabulary; a code wins over
the status it comes with (``ErrorAccessDenied`` is a 403 or a 400 depending on the API)."""

_CURSOR_PREFIX = "msgraph1"


def _response(raw: Any) -> Response:
    return _RESPONSE_MAP.get(str(raw or "none").lower(), "needs_action")


def _email(obj: Any) -> tuple[str | None, str | None]:
    """(address, name) from a Graph recipient ``{"emailAddress": {...}}``."""
    if not isinstance(obj, Mapping):
        return None, None
    ea = obj.get("emailAddress")
    if not isinstance(ea, Mapping):
        return None, None
    addr = ea.get("address")
    name = ea.get("name")
    return (addr.strip() if isinstance(addr, str) and addr.strip() else None), (
        name if isinstance(name, str) and name else None
    )


def _dt(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        # Edm.DateTimeOffset values are UTC; a missing offset means UTC too.
        return parse_rfc3339(raw, naive_zone=UTC)
    except ValueError:
        return None


def _proposed_new_time(raw: Any) -> tuple[datetime | None, datetime | None]:
    """An attendee's ``proposedNewTime`` (a timeSlot of two dateTimeTimeZone), or nothing.

    Graph includes it only when the attendee proposed another time (answering
    ``tentativelyAccepted`` or ``declined``), and only in the organizer's copy.
    """
    if not isinstance(raw, Mapping):
        return None, None
    try:
        start = from_date_time_time_zone(dict(raw["start"]))
        end = from_date_time_time_zone(dict(raw["end"]))
    except (KeyError, TypeError, ValueError):
        log.warning("sync.microsoft.unmappable_proposal", extra={"proposal": raw})
        return None, None
    return (start, end) if end > start else (None, None)


def event_from_graph(item: Mapping[str, Any], *, mailbox: str | None = None) -> CalendarEvent:
    """Map one Graph event (an instance from calendarView or a created event) to ours.

    ``mailbox`` is the calendar owner's address: their own attendee row takes the
    answer from ``responseStatus`` (their row says ``none`` in their own copy).
    Raises ``ValueError`` when the event cannot be mapped (no id, bad times).
    """
    event_id = item.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("event without id")
    all_day = bool(item.get("isAllDay"))
    start_raw, end_raw = item.get("start"), item.get("end")
    if not isinstance(start_raw, Mapping) or not isinstance(end_raw, Mapping):
        raise ValueError(f"event {event_id}: missing start/end")
    if all_day:
        start, end = all_day_bound(dict(start_raw)), all_day_bound(dict(end_raw))
    else:
        start = from_date_time_time_zone(dict(start_raw))
        end = from_date_time_time_zone(dict(end_raw))

    organizer, _ = _email(item.get("organizer"))
    owner = (mailbox or "").strip().lower()
    status_obj = item.get("responseStatus")
    own_raw = status_obj.get("response") if isinstance(status_obj, Mapping) else None
    is_organizer = item.get("isOrganizer")
    if is_organizer is True or (
        own_raw is None and organizer is not None and organizer.lower() == owner
    ):
        rep_response: Response = "accepted"
    else:
        rep_response = _response(own_raw) if own_raw is not None else "needs_action"

    attendees: list[Attendee] = []
    for raw in item.get("attendees") or []:
        addr, name = _email(raw)
        if addr is None or "@" not in addr:
            continue  # distribution lists without SMTP address, malformed rows
        status = raw.get("status") if isinstance(raw, Mapping) else None
        response = _response(status.get("response") if isinstance(status, Mapping) else None)
        if owner and addr.lower() == owner:
            response = rep_response
        kind = str(raw.get("type") or "required").lower()
        proposed_start, proposed_end = _proposed_new_time(raw.get("proposedNewTime"))
        attendees.append(
            Attendee(
                email=addr,
                name=name,
                response=response,
                is_resource=kind == "resource",
                optional=kind == "optional",
                is_organizer=organizer is not None and addr.lower() == organizer.lower(),
                proposed_start=proposed_start,
                proposed_end=proposed_end,
            )
        )

    if organizer is not None and attendees:
        if not any(a.email == organizer.lower() for a in attendees):
            # Graph lists invitees only; like Google, show the organizer among them.
            _, org_name = _email(item.get("organizer"))
            attendees.insert(
                0,
                Attendee(
                    email=organizer,
                    name=org_name,
                    response=rep_response if organizer.lower() == owner else "accepted",
                    is_organizer=True,
                ),
            )

    # Free/busy status decides nothing: only a block with nobody but the mailbox on it is
    # Outlook's own out-of-office entry; an away event with attendees (an on-site workshop)
    # is a meeting like any other.
    away = str(item.get("showAs") or "").lower() == "oof"
    alone = not any(a.email != owner for a in attendees)
    event_type: EventType = "out_of_office" if away and alone else "default"
    kind = str(item.get("type") or "singleInstance")
    series = item.get("seriesMasterId") if kind in ("occurrence", "exception") else None
    original_start = _dt(item.get("originalStart")) if series else None
    subject = item.get("subject")
    return CalendarEvent(
        event_id=event_id,
        title=subject if isinstance(subject, str) else "",
        start=start,
        end=end,
        all_day=all_day,
        status="cancelled" if item.get("isCancelled") else "confirmed",
        event_type=event_type,
        organizer_email=organizer,
        rep_response=rep_response,
        attendees=tuple(attendees),
        recurring_event_id=series if isinstance(series, str) and series else None,
        original_start=original_start,
        created=_dt(item.get("createdDateTime")),
        updated=_dt(item.get("lastModifiedDateTime")),
        time_zone=iana_name(item.get("originalStartTimeZone")),
        # iCalUId: one meeting across calendars, a different one for each occurrence.
        ical_uid=item.get("iCalUId") if isinstance(item.get("iCalUId"), str) else None,
        private=str(item.get("sensitivity") or "").lower() in PRIVATE_SENSITIVITY,
        description=str(item.get("bodyPreview") or ""),
        video_link=_join_url(item),
    )


PRIVATE_SENSITIVITY = frozenset(
    {"private", "confidential"}
)  # event.sensitivity ("personal" is not)


def _join_url(item: Mapping[str, Any]) -> str | None:
    """The Teams link: ``onlineMeeting.joinUrl`` (``onlineMeetingUrl`` is deprecated)."""
    online = item.get("onlineMeeting")
    if isinstance(online, Mapping) and online.get("joinUrl"):
        return str(online["joinUrl"])
    return None


def busy_from_schedule(info: Mapping[str, Any]) -> list[BusyInterval]:
    """Busy intervals from one getSchedule ``scheduleInformation``, sorted, as Graph lists
    them (one an event: they may overlap; ``policies/slots.py`` merges).

    busy, oof, tentative and workingElsewhere block a slot; free does not.
    """
    items = []
    for item in info.get("scheduleItems") or []:
        if str(item.get("status") or "").lower() not in BUSY_STATUSES:
            continue
        try:
            start = from_date_time_time_zone(dict(item["start"]))
            end = from_date_time_time_zone(dict(item["end"]))
        except (KeyError, TypeError, ValueError):
            log.warning("sync.microsoft.unmappable_schedule_item", extra={"item": item})
            continue
        if end > start:
            items.append((start, end))
    return [BusyInterval(start=s, end=e) for s, e in sorted(items)]


def _fmt_query_dt(dt: datetime) -> str:
    return format_rfc3339(dt, timespec="seconds")


def _encode_cursor(kind: str, window_start: datetime, link: str) -> str:
    return f"{_CURSOR_PREFIX}|{kind}|{_fmt_query_dt(window_start)}|{link}"


def _decode_cursor(cursor: str) -> tuple[bool, datetime, str]:
    parts = cursor.split("|", 3)
    if len(parts) != 4 or parts[0] != _CURSOR_PREFIX or parts[1] not in ("F", "I"):
        raise CursorExpired(f"unrecognised Microsoft cursor {cursor[:40]!r}")
    try:
        window_start = parse_rfc3339(parts[2])
    except ValueError as err:
        raise CursorExpired("malformed Microsoft cursor") from err
    return parts[1] == "F", window_start, parts[3]


class MicrosoftConnector(PushesOverHttp, UserGrants):
    """CalendarProvider for Microsoft 365 mailboxes via Graph application permissions."""

    name = "microsoft"
    renewal: Renewal = "in_place"  # PATCH keeps the subscription id: no overlap needed
    webhooks: Webhooks | None = GraphWebhooks()

    def __init__(
        self,
        tenant_id: str | None,
        client_id: str | None,
        client_secret: str | None,
        *,
        user_oauth: MicrosoftOAuth | None = None,
        authority: str | None = None,
        graph_root: str = "https://graph.microsoft.com/v1.0",
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        window_days: int = 400,
        future_days: int = 365,
        page_size: int = 100,
        timeout: float = 30.0,
        window_roll_days: int = 30,
        subscription_minutes: int = 10_000,
        max_retry_after: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not 0 < subscription_minutes <= SUBSCRIPTION_MAX_MINUTES:
            raise ValueError(f"subscription_minutes must be in 1..{SUBSCRIPTION_MAX_MINUTES}")
        if not 1 <= window_days <= CALENDARVIEW_MAX_DAYS:
            raise ValueError(f"window_days must be in 1..{CALENDARVIEW_MAX_DAYS}")
        if not 1 <= future_days <= CALENDARVIEW_MAX_DAYS:
            raise ValueError(f"future_days must be in 1..{CALENDARVIEW_MAX_DAYS}")
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self.window_days = window_days
        self.future_days = future_days
        self.page_size = page_size
        self.window_roll_days = window_roll_days
        self.subscription_minutes = subscription_minutes
        self._clock = clock or (lambda: datetime.now(UTC))
        self.user_oauth = user_oauth
        self.client = GraphClient(
            tenant_id,
            client_id,
            client_secret,
            user_oauth=user_oauth,
            authority=authority,
            graph_root=graph_root,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_retry_after=max_retry_after,
            timeout=timeout,
            transport=transport,
        )

    def set_grant_handler(self, handler: GrantHandler | None) -> None:
        """Microsoft rotates refresh tokens: a rep's changed token cache goes there."""
        self.client.grant_handler = handler

    # --- error translation ------------------------------------------------------------

    @staticmethod
    def _translate(
        err: GraphError | GraphTokenError | GraphTransportError, what: str
    ) -> ProviderError:
        if isinstance(err, GraphTokenError):
            # The token endpoint's refusal: transient (503) or the app's credentials (401).
            status = 503 if err.error in _TOKEN_TRANSIENT else 401
            return GRAPH_ERRORS.translate(f"{what}: token endpoint: {err}", status=status)
        if isinstance(err, GraphTransportError):
            return GRAPH_ERRORS.translate(f"{what}: {err}", status=None)
        return GRAPH_ERRORS.translate(
            f"{what}: Graph {err.status} {err.code}: {err.message}",
            status=err.status,
            code=err.code,
            retry_after=err.retry_after,
        )

    async def _delete(
        self, what: str, path: str, *, mailbox: str, calendar: CalendarRef | None = None
    ) -> None:
        """``DELETE path``; what is already gone (404) is fine."""
        try:
            await self._call(what, "DELETE", path, mailbox=mailbox, calendar=calendar)
        except NotFound:
            return

    async def _call(
        self,
        what: str,
        method: str,
        path: str,
        *,
        mailbox: str | None,
        calendar: CalendarRef | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        delegated = (
            (calendar.rep_id, calendar.grant)
            if calendar is not None and calendar.grant is not None
            else None
        )
        try:
            resp = await self.client.request(
                method,
                path,
                mailbox=mailbox,
                json=json,
                params=params,
                headers=headers,
                delegated=delegated,
            )
        except (GraphError, GraphTokenError, GraphTransportError) as err:
            raise self._translate(err, what) from err
        return resp.body

    @staticmethod
    def _user(calendar: CalendarRef) -> str:
        return quote(calendar.email.strip(), safe="@.+-_")

    # --- sync ------------------------------------------------------------------------

    async def sync_page(
        self, calendar: CalendarRef, cursor: str | None, *, since: datetime
    ) -> SyncPage:
        """Return the next page: a full sync from ``since`` when ``cursor`` is None."""
        headers = {
            "Prefer": f'outlook.timezone="UTC", odata.maxpagesize={self.page_size}',
        }
        if cursor is None:
            full = True
            window_start = since.astimezone(UTC)
            path = f"users/{self._user(calendar)}/calendarView/delta"
            params: dict[str, str] | None = {
                "startDateTime": _fmt_query_dt(window_start),
                "endDateTime": _fmt_query_dt(self._window_end(window_start)),
            }
        else:
            full, window_start, path = _decode_cursor(cursor)
            params = None
            if not full and since.astimezone(UTC) - window_start > timedelta(
                days=self.window_roll_days
            ):
                raise CursorExpired("sync window is due to roll forward: full sync")
            try:
                self.client.url(path)
            except ValueError as err:
                raise CursorExpired(f"cursor link not under the Graph root: {err}") from err
        body = await self._call(
            "calendarView delta",
            "GET",
            path,
            mailbox=calendar.email,
            calendar=calendar,
            params=params,
            headers=headers,
        )
        if not isinstance(body, Mapping):
            raise Unavailable("calendarView delta: response is not a JSON object")
        events: list[CalendarEvent] = []
        removed: list[str] = []
        skipped: list[str] = []
        for item in body.get("value") or []:
            if not isinstance(item, Mapping):
                continue
            if "@removed" in item:
                if isinstance(item.get("id"), str):
                    removed.append(item["id"])
                continue
            if item.get("type") == "seriesMaster":
                continue  # calendarView lists instances; a master is never a meeting
            try:
                events.append(event_from_graph(item, mailbox=calendar.email))
            except (ValueError, OverflowError, TypeError, KeyError, AttributeError) as err:
                skipped.append(f"{item.get('id') or '(no id)'}: {err}")
                log.warning(
                    "sync.microsoft.unmappable_event",
                    extra={"rep_id": calendar.rep_id, "event_id": item.get("id")},
                    exc_info=True,
                )
        next_link = body.get("@odata.nextLink")
        delta_link = body.get("@odata.deltaLink")
        if isinstance(next_link, str) and next_link:
            return SyncPage(
                events=tuple(events),
                removed_ids=tuple(removed),
                cursor=_encode_cursor("F" if full else "I", window_start, next_link),
                last_page=False,
                full=full,
                skipped=tuple(skipped),
            )
        if not isinstance(delta_link, str) or not delta_link:
            raise Unavailable("calendarView delta: page has neither nextLink nor deltaLink")
        return SyncPage(
            events=tuple(events),
            removed_ids=tuple(removed),
            cursor=_encode_cursor("I", window_start, delta_link),
            last_page=True,
            full=full,
            skipped=tuple(skipped),
        )

    def _window_end(self, window_start: datetime) -> datetime:
        """The end of a full round's window: ``future_days`` ahead of now, however far back
        ``since`` reaches (a year of history must not eat the future), at least
        ``window_days`` after its start and at most the 1,825 days Graph allows."""
        end = max(
            window_start + timedelta(days=self.window_days),
            self._clock().astimezone(UTC) + timedelta(days=self.future_days),
        )
        return min(end, window_start + timedelta(days=CALENDARVIEW_MAX_DAYS))

    # --- subscriptions ---------------------------------------------------------------

    def _expiry(self) -> datetime:
        return (self._clock() + timedelta(minutes=self.subscription_minutes)).replace(microsecond=0)

    @staticmethod
    def _channel(body: Any, fallback_state: str, resource: str) -> WatchChannel:
        if not isinstance(body, Mapping) or not isinstance(body.get("id"), str):
            raise Unavailable("subscription response without id")
        expires = _dt(body.get("expirationDateTime"))
        if expires is None:
            raise Unavailable("subscription response without expirationDateTime")
        state = body.get("clientState")
        return WatchChannel(
            channel_id=body["id"],
            token=state if isinstance(state, str) and state else fallback_state,
            resource_id=str(body.get("resource") or resource),
            expires_at=expires,
        )

    async def watch(self, calendar: CalendarRef, callback_url: str) -> WatchChannel:
        """Create a Graph subscription on the mailbox's events (Graph validates the URLs)."""
        resource = f"users/{calendar.email.strip()}/events"
        client_state = secrets.token_urlsafe(32)  # 43 chars; Graph allows up to 128
        callback = callback_url.rstrip("/")
        body = await self._call(
            "create subscription",
            "POST",
            "subscriptions",
            mailbox=calendar.email,
            calendar=calendar,
            json={
                "changeType": "created,updated,deleted",
                "notificationUrl": callback,
                "lifecycleNotificationUrl": f"{callback}/lifecycle",
                "resource": resource,
                "expirationDateTime": _fmt_query_dt(self._expiry()),
                "clientState": client_state,
                "latestSupportedTlsVersion": "v1_2",
            },
        )
        return self._channel(body, client_state, resource)

    async def renew(
        self, calendar: CalendarRef, channel: WatchChannel, callback_url: str
    ) -> WatchChannel:
        """Extend the subscription; create a new one when Graph no longer has it."""
        try:
            body = await self._call(
                "renew subscription",
                "PATCH",
                f"subscriptions/{quote(channel.channel_id, safe='')}",
                mailbox=calendar.email,
                calendar=calendar,
                json={"expirationDateTime": _fmt_query_dt(self._expiry())},
            )
        except NotFound:
            log.info(
                "sync.microsoft.subscription_gone",
                extra={"rep_id": calendar.rep_id, "subscription_id": channel.channel_id},
            )
            return await self.watch(calendar, callback_url)
        return self._channel(body, channel.token, channel.resource_id or "")

    async def unwatch(self, calendar: CalendarRef, channel: WatchChannel) -> None:
        """Delete the subscription; one already gone is fine."""
        await self._delete(
            "delete subscription",
            f"subscriptions/{quote(channel.channel_id, safe='')}",
            mailbox=calendar.email,
            calendar=calendar,
        )

    # --- free/busy and invites -------------------------------------------------------

    async def free_busy(
        self, calendar: CalendarRef, start: datetime, end: datetime
    ) -> list[BusyInterval]:
        """Busy intervals from ``POST /users/{email}/calendar/getSchedule``.

        Graph refuses windows over 62 days (``ErrorTimeIntervalTooBig``): longer
        windows are asked in chunks.
        """
        intervals: list[BusyInterval] = []
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(end, chunk_start + GETSCHEDULE_MAX_WINDOW)
            intervals += await self._free_busy_chunk(calendar, chunk_start, chunk_end)
            chunk_start = chunk_end
        return sorted(intervals, key=lambda b: (b.start, b.end))

    async def _free_busy_chunk(
        self, calendar: CalendarRef, start: datetime, end: datetime
    ) -> list[BusyInterval]:
        body = await self._call(
            "getSchedule",
            "POST",
            f"users/{self._user(calendar)}/calendar/getSchedule",
            mailbox=calendar.email,
            calendar=calendar,
            headers={"Prefer": 'outlook.timezone="UTC"'},
            json={
                "schedules": [calendar.email],
                "startTime": to_graph(start),
                "endTime": to_graph(end),
                "availabilityViewInterval": 30,
            },
        )
        infos = body.get("value") if isinstance(body, Mapping) else None
        if not isinstance(infos, list):
            raise Unavailable("getSchedule: response without value")
        wanted = calendar.email.strip().lower()
        info = next(
            (i for i in infos if str(i.get("scheduleId", "")).lower() == wanted),
            infos[0] if len(infos) == 1 else None,
        )
        if info is None:
            raise NotFound(f"getSchedule: no schedule for {calendar.email}")
        if isinstance(info.get("error"), Mapping):
            err = info["error"]
            code = str(err.get("responseCode") or "")
            msg = f"getSchedule {calendar.email}: {code}: {err.get('message')}"
            if "notfound" in code.lower():
                raise NotFound(msg)
            if "access" in code.lower() or "denied" in code.lower():
                raise AuthFailed(msg)
            raise Unavailable(msg)
        return [
            BusyInterval(start=max(b.start, start), end=min(b.end, end))
            for b in busy_from_schedule(info)
            if b.end > start and b.start < end
        ]

    @staticmethod
    def _payload(event: NewEvent) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "subject": event.title,
            "body": {"contentType": "text", "content": event.body},
            "start": to_graph(event.start, event.time_zone),
            "end": to_graph(event.end, event.time_zone),
            "attendees": [
                {"emailAddress": {"address": a}, "type": "required"} for a in event.attendees
            ],
            "showAs": "tentative" if event.tentative else "busy",
        }
        if event.attendees:
            payload["responseRequested"] = True
            payload["allowNewTimeProposals"] = True
        if event.video:
            payload["isOnlineMeeting"] = True
            payload["onlineMeetingProvider"] = "teamsForBusiness"
        return payload

    async def create_event(self, calendar: CalendarRef, event: NewEvent) -> CalendarEvent:
        """``POST /users/{email}/events``; Exchange sends the invitations.

        ``transactionId`` = ``request_id`` makes a retried creation return the same event.
        """
        payload = self._payload(event)
        if event.request_id:
            payload["transactionId"] = event.request_id[:250]
        body = await self._call(
            "create event",
            "POST",
            f"users/{self._user(calendar)}/events",
            mailbox=calendar.email,
            calendar=calendar,
            headers={"Prefer": 'outlook.timezone="UTC"'},
            json=payload,
        )
        if not isinstance(body, Mapping):
            raise Unavailable("create event: response is not a JSON object")
        return event_from_graph(body, mailbox=calendar.email)

    async def update_event(
        self, calendar: CalendarRef, event_id: str, event: NewEvent
    ) -> CalendarEvent:
        """``PATCH /users/{email}/events/{id}``; Exchange sends the attendees the update."""
        body = await self._call(
            "update event",
            "PATCH",
            f"users/{self._user(calendar)}/events/{quote(event_id, safe='')}",
            mailbox=calendar.email,
            calendar=calendar,  # a rep's own grant, when they connected the calendar
            headers={"Prefer": 'outlook.timezone="UTC"'},
            json=self._payload(event),
        )
        if not isinstance(body, Mapping):
            raise Unavailable("update event: response is not a JSON object")
        return event_from_graph(body, mailbox=calendar.email)

    async def delete_event(self, calendar: CalendarRef, event_id: str) -> None:
        """``DELETE /users/{email}/events/{id}`` (the organizer's delete cancels it for all)."""
        await self._delete(
            "delete event",
            f"users/{self._user(calendar)}/events/{quote(event_id, safe='')}",
            mailbox=calendar.email,
            calendar=calendar,  # a rep's own grant, when they connected the calendar
        )

    async def working_hours(self, calendar: CalendarRef) -> ProviderHours | None:
        """The mailbox's ``workingHours`` (days, start and end times, their time zone):
        ``GET /users/{email}/mailboxSettings`` (permission ``MailboxSettings.Read``); an app
        without it reads the same setting from getSchedule's ``workingHours`` (the
        ``Calendars.*`` permission it has). None when the mailbox does not say."""
        try:
            body = await self._call(
                "mailboxSettings",
                "GET",
                f"users/{self._user(calendar)}/mailboxSettings",
                mailbox=calendar.email,
            )
            hours = body.get("workingHours") if isinstance(body, Mapping) else None
            fallback_zone = body.get("timeZone") if isinstance(body, Mapping) else None
        except AuthFailed:
            hours, fallback_zone = await self._schedule_hours(calendar), None
        except NotFound:
            return None
        return _provider_hours(hours, fallback_zone)

    async def _schedule_hours(self, calendar: CalendarRef) -> Any:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        try:
            body = await self._call(
                "getSchedule",
                "POST",
                f"users/{self._user(calendar)}/calendar/getSchedule",
                mailbox=calendar.email,
                json={
                    "schedules": [calendar.email],
                    "startTime": to_graph(start),
                    "endTime": to_graph(start + timedelta(hours=1)),
                    "availabilityViewInterval": 60,
                },
            )
        except (AuthFailed, NotFound):
            return None
        infos = body.get("value") if isinstance(body, Mapping) else None
        if not isinstance(infos, list) or not infos or not isinstance(infos[0], Mapping):
            return None
        return infos[0].get("workingHours")

    async def aclose(self) -> None:
        """Release the HTTP client."""
        await self.client.aclose()


_WEEKDAYS = {
    name: i
    for i, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}


def _provider_hours(hours: object, fallback_zone: object) -> ProviderHours | None:
    """Graph's ``workingHours`` resource as neutral ProviderHours (None when incomplete)."""
    if not isinstance(hours, Mapping):
        return None
    days = tuple(
        sorted(
            {
                _WEEKDAYS[str(d).lower()]
                for d in hours.get("daysOfWeek") or ()
                if str(d).lower() in _WEEKDAYS
            }
        )
    )
    start = _time_of_day(hours.get("startTime"))
    end = _time_of_day(hours.get("endTime"))
    if not days or start is None or end is None or end <= start:
        return None
    zone = hours.get("timeZone")
    name = zone.get("name") if isinstance(zone, Mapping) else None
    fallback = fallback_zone if isinstance(fallback_zone, str) else None
    return ProviderHours(days=days, start=start, end=end, time_zone=iana_name(name or fallback))


def _time_of_day(value: object) -> time | None:
    """Graph's ``Edm.TimeOfDay`` (``08:00:00.0000000``) to a whole-minute time."""
    if not isinstance(value, str):
        return None
    try:
        parsed = time.fromisoformat(value.strip()[:8])
    except ValueError:
        return None
    return parsed.replace(second=0, microsecond=0)
