"""Google Calendar connector: the ``CalendarProvider`` Protocol over Calendar API v3.

Wiring (``app/providers.py`` is the one place that does this)::

    google = GoogleConnector(settings.google_service_account_file,
                             settings.google_api_root)          # once, at start-up
    # The key file is read here: FileNotFoundError / ValueError (bad JSON or key) name a
    # bad NEXTSTEP_GOOGLE_SERVICE_ACCOUNT_FILE at start-up; a CA variable
    # (SSL_CERT_FILE / REQUESTS_CA_BUNDLE) that names no file is a ValueError too.
    # Delegation problems only show per rep, as AuthFailed on the first call.
    ...
    await google.aclose()                                       # in the lifespan's exit

    # rep registration: full sync, then watch
    page = await google.sync_page(cal, None, since=now - horizon)   # ... until last_page
    channel = await google.watch(cal, f"{public_url}/webhooks/google")
    # store channel.channel_id, channel.token, channel.resource_id, channel.expires_at

    # POST /webhooks/google: GoogleConnector.webhooks.read(request) -> one Notification
    # (ValueError -> 4xx); the engine refuses it unless a live stored channel matches
    # (Notification.matches: channel id, token, resource id). Google may still deliver on
    # a stopped or replaced channel, so liveness is the engine's check too. kind "sync" is
    # the handshake right after watch(): nothing to sync; it may arrive BEFORE watch()
    # returns, when the channel row does not exist yet. "change": an incremental sync of
    # the rep; notifications can be duplicated, reordered or lost, so never read them as
    # the change itself (and keep a periodic incremental sync as a safety net).

    # renewal (renewal == "replace"): Google channels cannot be extended, so
    new = await google.renew(cal, old, callback_url)   # a new channel; the old one stays
    # live until the engine has stored the new one and calls unwatch(cal, old).
    # DELETE /v1/reps/{id}
    await google.unwatch(cal, channel)                 # a channel already gone is fine

Cursors returned by ``sync_page`` are opaque JSON strings (``{"v":1,"mode":"full"|"incr",
...}``); store them verbatim. ``since`` only matters for a full sync (``cursor=None`` or a
full-sync page cursor, which remembers its own ``timeMin``).

Cancelled/deleted events in incremental results often come as minimal bodies (``id``,
``status``, maybe ``recurringEventId``/``originalStartTime``): they are emitted as
``CalendarEvent(status="cancelled")`` with ``start == end == originalStartTime`` when
known, else ``1970-01-01T00:00Z`` (``MINIMAL_BODY_SENTINEL``), so the engine can remove
them by ``event_id``.

Errors map as (``GOOGLE_ERRORS``): 401 / token refusal -> ``AuthFailed``; 403
``quotaExceeded`` -> ``QuotaExceeded`` (not retried); 403 rate limits, 429 ->
``RateLimited`` after retries; 408/425/5xx / transport -> ``Unavailable`` after retries;
404 -> ``NotFound``; 409/412 -> ``Conflict``; 410 during sync -> ``CursorExpired``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from connectors.base import (
    Attendee,
    AuthFailed,
    BusyInterval,
    CalendarEvent,
    CalendarRef,
    Conflict,
    CursorExpired,
    EventStatus,
    EventType,
    NewEvent,
    NotFound,
    ProviderError,
    ProviderHours,
    PushesOverHttp,
    QuotaExceeded,
    RateLimited,
    Renewal,
    Response,
    SyncPage,
    Unavailable,
    UserGrants,
    WatchChannel,
    Webhooks,
)
from connectors.google.client import SCOPES, CalendarWireClient, GoogleApiError
from connectors.google.notifications import GoogleWebhooks
from connectors.google.oauth import GoogleOAuth
from connectors.http import ErrorTable, format_rfc3339, parse_rfc3339, rule

log = logging.getLogger(__name__)

MINIMAL_BODY_SENTINEL = datetime(1970, 1, 1, tzinfo=UTC)
"""start/end given to a cancelled event whose body carries no time at all."""

_RESPONSES: dict[str, Response] = {
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentative",
    "needsAction": "needs_action",
}
_EVENT_TYPES: dict[str, EventType] = {
    "default": "default",
    "outOfOffice": "out_of_office",
    "focusTime": "focus_time",
    "workingLocation": "working_location",
    "fromGmail": "default",
    "birthday": "default",
}
_STATUSES: dict[str, EventStatus] = {
    "confirmed": "confirmed",
    "tentative": "tentative",
    "cancelled": "cancelled",
}
_AUTH_403_REASONS = frozenset(
    {
        "insufficientPermissions",
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "accessNotConfigured",
        "SERVICE_DISABLED",
        "domainPolicy",
        "forbidden",
        "PERMISSION_DENIED",
    }
)
_QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_CURSOR_VERSION = 1


# --- pure mapping: Google JSON -> our types ------------------------------------------


def _parse_when(when: dict[str, Any] | None) -> tuple[datetime | None, bool, str | None]:
    """``(instant, all_day, timeZone)`` of a Google ``EventDateTime``."""
    if not when:
        return None, False, None
    tz = when.get("timeZone")
    if when.get("dateTime"):
        return parse_rfc3339(when["dateTime"]), False, tz
    if when.get("date"):
        day = date.fromisoformat(when["date"])
        return datetime.combine(day, time(0), tzinfo=UTC), True, tz
    return None, False, tz


def _attendee(raw: dict[str, Any]) -> Attendee | None:
    email = raw.get("email") or ""
    if "@" not in email:
        return None  # Google may show groups/unknowns without a usable address
    return Attendee(
        email=email,
        response=_RESPONSES.get(raw.get("responseStatus", ""), "needs_action"),
        name=raw.get("displayName") or None,
        is_resource=bool(raw.get("resource", False)),
        is_organizer=bool(raw.get("organizer", False)),
        optional=bool(raw.get("optional", False)),
    )


PRIVATE_VISIBILITY = frozenset({"private", "confidential"})  # Event.visibility


def event_from_google(raw: dict[str, Any]) -> CalendarEvent:
    """Map one Google ``Event`` resource (possibly a minimal cancelled body) to ours."""
    event_id = raw.get("id")
    if not event_id:
        raise ValueError("Google event without id")
    status = _STATUSES.get(raw.get("status", "confirmed"), "confirmed")
    start, all_day, time_zone = _parse_when(raw.get("start"))
    end, _, _ = _parse_when(raw.get("end"))
    original_start, original_all_day, _ = _parse_when(raw.get("originalStartTime"))
    if start is None:
        # Minimal body of a deleted event/instance: place it at its original start.
        start = original_start or MINIMAL_BODY_SENTINEL
        all_day = original_all_day if original_start else False
    if end is None:
        end = start
    elif end < start:
        raise ValueError(f"ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    attendees: list[Attendee] = []
    rep_response: Response | None = None
    for raw_attendee in raw.get("attendees") or ():
        attendee = _attendee(raw_attendee)
        if attendee is not None:
            attendees.append(attendee)
        if raw_attendee.get("self"):
            rep_response = _RESPONSES.get(raw_attendee.get("responseStatus", ""), "needs_action")
    organizer = raw.get("organizer") or {}
    organizer_email = organizer.get("email") or None
    if (
        organizer_email
        and "@" in organizer_email
        and attendees
        and not any(a.email == organizer_email.strip().lower() for a in attendees)
    ):
        # Google lists the organiser among the attendees only when it invited itself: a
        # prospect's scheduling tool often leaves them out. They attend all the same.
        attendees.insert(
            0,
            Attendee(
                email=organizer_email,
                response="accepted",
                name=organizer.get("displayName") or None,
                is_organizer=True,
            ),
        )
    if rep_response is None:
        # Not among the attendees: the rep's own event (organizer) or a plain entry.
        rep_response = "accepted"
    return CalendarEvent(
        event_id=event_id,
        title=raw.get("summary") or "",
        start=start,
        end=end,
        all_day=all_day,
        status=status,
        event_type=_EVENT_TYPES.get(raw.get("eventType", "default"), "default"),
        organizer_email=organizer_email,
        rep_response=rep_response,
        attendees=tuple(attendees),
        recurring_event_id=raw.get("recurringEventId") or None,
        original_start=original_start,
        created=parse_rfc3339(raw["created"]) if raw.get("created") else None,
        updated=parse_rfc3339(raw["updated"]) if raw.get("updated") else None,
        time_zone=time_zone,
        ical_uid=_instance_uid(raw.get("iCalUID"), raw.get("recurringEventId"), original_start),
        private=raw.get("visibility") in PRIVATE_VISIBILITY,
        description=raw.get("description") or "",
        video_link=_video_link(raw),
    )


def _instance_uid(ical_uid: Any, series: Any, original_start: datetime | None) -> str | None:
    """Google gives a series' instances the series' iCalUID: each instance is told apart by
    its original start (the same on every attendee's copy)."""
    if not isinstance(ical_uid, str) or not ical_uid:
        return None
    if series and original_start is not None:
        return f"{ical_uid}#{format_rfc3339(original_start.astimezone(UTC))}"
    return ical_uid


def _video_link(raw: dict[str, Any]) -> str | None:
    """The Meet link: the conference's ``video`` entry point, else ``hangoutLink``."""
    conference = raw.get("conferenceData") or {}
    for entry in conference.get("entryPoints") or ():
        if isinstance(entry, dict) and entry.get("entryPointType") == "video" and entry.get("uri"):
            return str(entry["uri"])
    link = raw.get("hangoutLink")
    return str(link) if link else None


def busy_from_google(body: dict[str, Any], calendar_id: str) -> list[BusyInterval]:
    """Busy intervals of ``calendar_id`` in a ``freeBusy.query`` response.

    Raises ``NotFound`` / ``Unavailable`` / ``ProviderError`` for the per-calendar
    ``errors`` Google reports with a 200 status.
    """
    calendars = body.get("calendars") or {}
    entry = calendars.get(calendar_id)
    if entry is None:
        lowered = {key.lower(): value for key, value in calendars.items()}
        entry = lowered.get(calendar_id.lower())
    if entry is None:
        raise NotFound(f"freeBusy response has no entry for {calendar_id}")
    errors = entry.get("errors") or []
    if errors:
        reason = errors[0].get("reason", "")
        message = f"freeBusy error for {calendar_id}: {reason}"
        if reason == "notFound":
            raise NotFound(message)
        if reason in ("internalError", "backendError"):
            raise Unavailable(message)
        raise ProviderError(message)
    return [
        BusyInterval(start=parse_rfc3339(item["start"]), end=parse_rfc3339(item["end"]))
        for item in entry.get("busy") or ()
    ]


def event_id_for_request(request_id: str) -> str:
    """A valid Google event id derived from an idempotency key.

    Google ids use base32hex characters (``a-v``, ``0-9``), 5 to 1024 of them;
    ``b32hexencode`` of a SHA-256 gives 52 such characters.
    """
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return "ns" + base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()


def _encode_cursor(**fields: Any) -> str:
    return json.dumps({"v": _CURSOR_VERSION, **fields}, separators=(",", ":"), sort_keys=True)


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(cursor)
    except ValueError as err:
        raise CursorExpired(f"unreadable Google sync cursor: {cursor[:40]!r}") from err
    if (
        not isinstance(data, dict)
        or data.get("v") != _CURSOR_VERSION
        or data.get("mode")
        not in (
            "full",
            "incr",
        )
    ):
        raise CursorExpired("unknown Google sync cursor version")
    return data


GOOGLE_ERRORS = ErrorTable(
    rule(AuthFailed, {401}),  # also a token endpoint refusal (delegation not granted ...)
    rule(QuotaExceeded, {403}, _QUOTA_REASONS),
    rule(RateLimited, {403}, _RATE_REASONS),
    rule(AuthFailed, {403}, _AUTH_403_REASONS),
    rule(ProviderError, {403}),  # e.g. forbiddenForNonOrganizer: not fixed by retrying
    rule(RateLimited, {429}),
    rule(NotFound, {404, 410}),
    rule(Conflict, {409, 412}),
)
"""Google's statuses and ``errors[0].reason`` values in the neutral vocabulary."""

GOOGLE_SYNC_ERRORS = GOOGLE_ERRORS.extended(rule(CursorExpired, {410}))
"""During events.list a 410 (``fullSyncRequired``, ``deleted``...) means: full sync."""


def translate_error(err: GoogleApiError, *, sync: bool = False) -> ProviderError:
    """Map a wire error to the provider-neutral vocabulary (the caller raises it ``from``)."""
    table = GOOGLE_SYNC_ERRORS if sync else GOOGLE_ERRORS
    return table.translate(
        f"google: {err.message} (status={err.status}, reason={err.reason})",
        status=err.status,
        code=err.reason,
        retry_after=err.retry_after,
    )


class GoogleConnector(PushesOverHttp, UserGrants):
    """Google Calendar through a service account with domain-wide delegation, or through
    the rep's own grant (``CalendarRef.grant``, made by ``user_oauth``)."""

    name = "google"
    renewal: Renewal = "replace"  # channels cannot be extended
    webhooks: Webhooks | None = GoogleWebhooks()
    scopes = SCOPES

    def __init__(
        self,
        service_account_file: str | None,
        api_root: str = "https://www.googleapis.com/",
        *,
        user_oauth: GoogleOAuth | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        channel_ttl_seconds: int = 604800,
        page_size: int = 250,
        http_timeout: float = 30.0,
    ) -> None:
        if not 1 <= page_size <= 2500:
            raise ValueError("page_size must be between 1 and 2500 (Google's maximum)")
        self.channel_ttl_seconds = channel_ttl_seconds
        self.page_size = page_size
        self.user_oauth = user_oauth
        self._client = CalendarWireClient(
            service_account_file,
            api_root,
            user_credentials=user_oauth.credentials if user_oauth else None,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            http_timeout=http_timeout,
        )

    async def _call(
        self, calendar: CalendarRef, method: str, build: Any, *, sync: bool = False
    ) -> Any:
        try:
            return await self._client.call(calendar.email, method, build, calendar.grant)
        except GoogleApiError as err:
            raise translate_error(err, sync=sync) from err

    # --- sync --------------------------------------------------------------------------

    async def sync_page(
        self, calendar: CalendarRef, cursor: str | None, *, since: datetime
    ) -> SyncPage:
        """Return the next page: a full sync from ``since`` when ``cursor`` is None."""
        if cursor is None:
            state: dict[str, Any] = {"mode": "full", "timeMin": format_rfc3339(since)}
        else:
            state = _decode_cursor(cursor)
        full = state["mode"] == "full"
        # Every page request repeats the original query; with a syncToken Google forbids
        # timeMin/timeMax/orderBy/q/updatedMin/iCalUID/*ExtendedProperty and
        # showDeleted=false (deleted events always come back in incremental results).
        params: dict[str, Any] = {
            "calendarId": calendar.email,
            "singleEvents": True,
            "maxResults": self.page_size,
        }
        if full:
            params["timeMin"] = state["timeMin"]
        else:
            params["syncToken"] = state["syncToken"]
        if state.get("pageToken"):
            params["pageToken"] = state["pageToken"]

        body = await self._call(
            calendar, "events.list", lambda svc: svc.events().list(**params), sync=True
        )
        mapped: list[CalendarEvent] = []
        skipped: list[str] = []
        for item in body.get("items") or ():
            try:
                mapped.append(event_from_google(item))
            except (ValueError, OverflowError, TypeError, KeyError, AttributeError) as err:
                name = item.get("id") if isinstance(item, dict) else None
                skipped.append(f"{name or '(no id)'}: {err}")
                log.warning(
                    "sync.google.unmappable_event",
                    extra={"rep_id": calendar.rep_id, "event_id": name, "error": str(err)},
                )
        events = tuple(mapped)
        next_page = body.get("nextPageToken")
        if next_page:
            base = {k: v for k, v in state.items() if k not in ("v", "pageToken")}
            return SyncPage(
                events=events,
                cursor=_encode_cursor(**base, pageToken=next_page),
                last_page=False,
                full=full,
                skipped=tuple(skipped),
            )
        sync_token = body.get("nextSyncToken")
        if not sync_token:
            raise Unavailable("google: last events.list page carried no nextSyncToken")
        log.debug("sync.google.page", extra={"rep_id": calendar.rep_id, "full": full})
        return SyncPage(
            events=events,
            cursor=_encode_cursor(mode="incr", syncToken=sync_token),
            last_page=True,
            full=full,
            skipped=tuple(skipped),
        )

    # --- push channels -----------------------------------------------------------------

    async def watch(self, calendar: CalendarRef, callback_url: str) -> WatchChannel:
        """Open a push channel (events.watch) delivering to ``callback_url``."""
        channel_id = str(uuid.uuid4())
        token = secrets.token_urlsafe(32)
        request = {
            "id": channel_id,
            "type": "web_hook",
            "address": callback_url,
            "token": token,
            "params": {"ttl": str(self.channel_ttl_seconds)},
        }
        body = await self._call(
            calendar,
            "events.watch",
            lambda svc: svc.events().watch(calendarId=calendar.email, body=request),
        )
        expiration = body.get("expiration")
        if expiration is None:
            raise ProviderError("google: events.watch response without expiration")
        return WatchChannel(
            channel_id=body.get("id") or channel_id,
            token=token,
            resource_id=body.get("resourceId"),
            expires_at=datetime.fromtimestamp(int(expiration) / 1000, tz=UTC),
        )

    async def renew(
        self, calendar: CalendarRef, channel: WatchChannel, callback_url: str
    ) -> WatchChannel:
        """Google channels cannot be extended: a new channel, the old one left live (the
        engine stops it once the new one is stored)."""
        return await self.watch(calendar, callback_url)

    async def unwatch(self, calendar: CalendarRef, channel: WatchChannel) -> None:
        """Stop a channel (channels.stop); a channel already gone is not an error."""
        request = {"id": channel.channel_id}
        if channel.resource_id:
            request["resourceId"] = channel.resource_id
        try:
            await self._call(
                calendar, "channels.stop", lambda svc: svc.channels().stop(body=request)
            )
        except NotFound:
            return

    async def working_hours(self, calendar: CalendarRef) -> ProviderHours | None:
        """None: the Calendar API exposes no working hours (the web UI's setting is not in
        ``settings.list``); the rep's come from the CRM or the default."""
        del calendar
        return None

    # --- free/busy and writes ----------------------------------------------------------

    async def free_busy(
        self, calendar: CalendarRef, start: datetime, end: datetime
    ) -> list[BusyInterval]:
        """Busy intervals of the rep's calendar between ``start`` and ``end``."""
        request = {
            "timeMin": format_rfc3339(start),
            "timeMax": format_rfc3339(end),
            "timeZone": "UTC",
            "items": [{"id": calendar.email}],
        }
        body = await self._call(
            calendar, "freebusy.query", lambda svc: svc.freebusy().query(body=request)
        )
        return busy_from_google(body, calendar.email)

    @staticmethod
    def _body(event: NewEvent, conference_key: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "summary": event.title,
            "description": event.body,
            "start": {"dateTime": event.start.isoformat(), "timeZone": event.time_zone},
            "end": {"dateTime": event.end.isoformat(), "timeZone": event.time_zone},
            "attendees": [{"email": email} for email in event.attendees],
        }
        if event.video:
            # Google creates the Meet asynchronously; the request id makes it once.
            body["conferenceData"] = {
                "createRequest": {
                    "requestId": conference_key,
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }
            }
        return body

    async def create_event(self, calendar: CalendarRef, event: NewEvent) -> CalendarEvent:
        """events.insert with ``sendUpdates=all``; a retried ``request_id`` is idempotent."""
        event_id = event_id_for_request(event.request_id) if event.request_id else None
        body = self._body(event, event_id or uuid.uuid4().hex)
        if event_id:
            body["id"] = event_id
        try:
            created = await self._call(
                calendar,
                "events.insert",
                lambda svc: svc.events().insert(
                    calendarId=calendar.email,
                    body=body,
                    sendUpdates="all",
                    conferenceDataVersion=1,
                ),
            )
        except Conflict:
            if not event_id:
                raise
            # 409 duplicate: an earlier attempt created it (maybe its answer was lost).
            created = await self._call(
                calendar,
                "events.get",
                lambda svc: svc.events().get(calendarId=calendar.email, eventId=event_id),
            )
        return event_from_google(created)

    async def update_event(
        self, calendar: CalendarRef, event_id: str, event: NewEvent
    ) -> CalendarEvent:
        """events.patch with ``sendUpdates=all``: the attendees are told of the new time."""
        body = self._body(event, f"{event_id}-{event.request_id or 'patch'}"[:100])
        updated = await self._call(
            calendar,
            "events.patch",
            lambda svc: svc.events().patch(
                calendarId=calendar.email,
                eventId=event_id,
                body=body,
                sendUpdates="all",
                conferenceDataVersion=1,
            ),
        )
        if updated.get("status") == "cancelled":
            raise NotFound(f"google: event {event_id} is cancelled")
        return event_from_google(updated)

    async def delete_event(self, calendar: CalendarRef, event_id: str) -> None:
        """events.delete with ``sendUpdates=all``; an event already gone (404/410) is fine."""
        try:
            await self._call(
                calendar,
                "events.delete",
                lambda svc: svc.events().delete(
                    calendarId=calendar.email, eventId=event_id, sendUpdates="all"
                ),
            )
        except NotFound:
            return

    async def aclose(self) -> None:
        """Release worker threads and HTTP connections."""
        await self._client.aclose()


__all__ = [
    "GOOGLE_ERRORS",
    "GoogleConnector",
    "MINIMAL_BODY_SENTINEL",
    "busy_from_google",
    "event_from_google",
    "event_id_for_request",
    "translate_error",
]
