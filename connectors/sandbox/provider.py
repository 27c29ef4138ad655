"""An in-process calendar provider for the demo and the tests.

Calendars live in memory, keyed by the rep's e-mail. Every change is appended to a
per-calendar change log, so sync works like the real providers: a paged full listing,
then incremental pages from a cursor. A change to a watched calendar is pushed in-process
to the handler given with ``set_push_handler``, as a neutral ``Notification`` carrying the
channel id and token exactly as a webhook would, and the engine verifies it as it does
those of Google and Microsoft.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from connectors.base import (
    Attendee,
    AuthFailed,
    BusyInterval,
    CalendarEvent,
    CalendarRef,
    CursorExpired,
    NewEvent,
    NotFound,
    Notification,
    ProviderError,
    ProviderHours,
    PushHandler,
    Renewal,
    Response,
    SyncPage,
    WatchChannel,
    Webhooks,
)


def _notification(channel_id: str, token: str, message_number: int) -> Notification:
    return Notification(
        channel_id=channel_id, secret=token, dedupe_key=f"{channel_id}:{message_number}"
    )


@dataclass
class _Calendar:
    events: dict[str, CalendarEvent] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # event ids in change order
    log_base: int = 0  # sequence number of log[0]; older cursors are expired
    channels: dict[str, str] = field(default_factory=dict)  # channel id → token
    message_number: int = 0


class SandboxProvider:
    """In-memory calendars implementing the CalendarProvider protocol."""

    name = "sandbox"
    renewal: Renewal = "replace"  # like Google: a new channel, then the old one stopped
    webhooks: Webhooks | None = None  # changes are pushed in-process, never over HTTP

    def __init__(
        self,
        *,
        page_size: int = 100,
        channel_ttl: timedelta = timedelta(days=7),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.page_size = page_size
        self.channel_ttl = channel_ttl
        self.clock = clock
        self._push_handler: PushHandler | None = None
        self.refused: set[str] = set()  # mailboxes whose access is refused (AuthFailed)
        self.fail_next: list[ProviderError] = []  # injected failures, raised in order
        self.fail_calls: dict[str, list[ProviderError]] = {}  # per call name, e.g. "update_event"
        self.calls: dict[str, int] = {}
        self._calendars: dict[str, _Calendar] = {}
        self.hours: dict[str, ProviderHours] = {}  # mailbox working hours, like Outlook's
        self._tasks: set[asyncio.Task[None]] = set()

    # --- what the outside world does to calendars (tests, demo, sandbox HTTP API) ----------

    def calendar(self, email: str) -> _Calendar:
        return self._calendars.setdefault(email.lower(), _Calendar())

    def put_event(self, email: str, event: CalendarEvent) -> CalendarEvent:
        """Create or replace an event on ``email``'s calendar and push a notification."""
        cal = self.calendar(email)
        if event.created is None:
            old = cal.events.get(event.event_id)
            event = replace(event, created=old.created if old else self.clock())
        event = replace(event, updated=self.clock())
        cal.events[event.event_id] = event
        cal.log.append(event.event_id)
        self._push(email)
        return event

    def cancel_event(self, email: str, event_id: str) -> None:
        """Cancel (delete) an event; incremental syncs report it as cancelled."""
        cal = self.calendar(email)
        event = cal.events[event_id]
        self.put_event(email, replace(event, status="cancelled"))

    def move_event(self, email: str, event_id: str, start: datetime) -> CalendarEvent:
        event = self.calendar(email).events[event_id]
        return self.put_event(
            email, replace(event, start=start, end=start + (event.end - event.start))
        )

    def respond(
        self,
        email: str,
        event_id: str,
        attendee: str,
        response: Response,
        *,
        proposed: tuple[datetime, datetime] | None = None,
    ) -> None:
        """An attendee answers an invite on ``email``'s calendar; ``proposed`` is a new time
        the attendee asks for, carried with the answer as Outlook does (proposedNewTime)."""
        event = self.calendar(email).events[event_id]
        attendee = attendee.lower()
        if not any(a.email == attendee for a in event.attendees):
            raise KeyError(f"{attendee} is not invited to {event_id}")
        start, end = proposed if proposed is not None else (None, None)
        attendees = tuple(
            replace(a, response=response, proposed_start=start, proposed_end=end)
            if a.email == attendee
            else a
            for a in event.attendees
        )
        # The calendar owner answering is the rep's own response, as providers report it.
        rep_response = response if attendee == email.lower() else event.rep_response
        self.put_event(email, replace(event, attendees=attendees, rep_response=rep_response))

    def events(self, email: str) -> list[CalendarEvent]:
        return list(self.calendar(email).events.values())

    def expire_cursors(self, email: str) -> None:
        """Invalidate every cursor of the calendar (like Google's 410)."""
        cal = self.calendar(email)
        # +1 leaves a gap: even the newest cursor handed out is now below the base.
        cal.log_base += len(cal.log) + 1
        cal.log.clear()

    async def redeliver(self, channel_id: str, token: str, message_number: int) -> None:
        """Deliver a notification again, as real providers sometimes do, and wait for it."""
        if self._push_handler is not None:
            await self._push_handler(_notification(channel_id, token, message_number))

    # --- in-process pushes (the provider protocol's webhook counterpart) -----------------

    def set_push_handler(self, handler: PushHandler | None) -> None:
        """Every change to a watched calendar is handed to ``handler``."""
        self._push_handler = handler

    async def drain(self) -> None:
        """Wait until every pushed notification was handed to the engine."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _push(self, email: str) -> None:
        cal = self.calendar(email)
        if not cal.channels or self._push_handler is None:
            return
        for channel_id, token in list(cal.channels.items()):
            cal.message_number += 1
            coro = self._push_handler(_notification(channel_id, token, cal.message_number))
            try:
                task = asyncio.get_running_loop().create_task(coro)
            except RuntimeError:  # no loop: called from a plain thread (sandbox HTTP API)
                coro.close()
                continue
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- the provider protocol -----------------------------------------------------------

    def _enter(self, call: str, calendar: CalendarRef) -> _Calendar:
        self.calls[call] = self.calls.get(call, 0) + 1
        if self.fail_calls.get(call):
            raise self.fail_calls[call].pop(0)
        if self.fail_next:
            raise self.fail_next.pop(0)
        if calendar.email.lower() in self.refused:
            raise AuthFailed(f"sandbox: access to {calendar.email} refused")
        return self.calendar(calendar.email)

    async def sync_page(
        self, calendar: CalendarRef, cursor: str | None, *, since: datetime
    ) -> SyncPage:
        cal = self._enter("sync_page", calendar)
        head = cal.log_base + len(cal.log)
        if cursor is None or cursor.startswith("full:"):
            offset, at = (0, head) if cursor is None else map(int, cursor.split(":")[1:])
            live = sorted(
                (e for e in cal.events.values() if e.status != "cancelled" and e.end >= since),
                key=lambda e: (e.start, e.event_id),
            )
            page = live[offset : offset + self.page_size]
            last = offset + self.page_size >= len(live)
            next_cursor = f"inc:{at}" if last else f"full:{offset + self.page_size}:{at}"
            return SyncPage(events=tuple(page), cursor=next_cursor, last_page=last, full=True)
        if not cursor.startswith("inc:"):
            raise CursorExpired(f"sandbox: unknown cursor {cursor!r}")
        seq = int(cursor[4:])
        if seq < cal.log_base or seq > head:
            raise CursorExpired(f"sandbox: cursor {seq} expired")
        changed = list(dict.fromkeys(cal.log[seq - cal.log_base :]))
        page_ids = changed[: self.page_size]
        last = len(changed) <= self.page_size
        # Resume after the last log entry of the ids we return.
        if last:
            next_seq = head
        else:
            last_id = page_ids[-1]
            idx = max(i for i, eid in enumerate(cal.log) if eid == last_id)
            next_seq = cal.log_base + idx + 1
            page_ids = list(dict.fromkeys(cal.log[seq - cal.log_base : idx + 1]))
        events = tuple(cal.events[eid] for eid in page_ids)
        return SyncPage(events=events, cursor=f"inc:{next_seq}", last_page=last, full=False)

    async def watch(self, calendar: CalendarRef, callback_url: str) -> WatchChannel:
        cal = self._enter("watch", calendar)
        channel_id, token = str(uuid.uuid4()), secrets.token_urlsafe(32)
        cal.channels[channel_id] = token
        return WatchChannel(
            channel_id=channel_id,
            token=token,
            resource_id=f"sandbox:{calendar.email.lower()}",
            expires_at=self.clock() + self.channel_ttl,
        )

    async def renew(
        self, calendar: CalendarRef, channel: WatchChannel, callback_url: str
    ) -> WatchChannel:
        """A new channel, the old one left live until the engine stops it (as Google)."""
        return await self.watch(calendar, callback_url)

    async def unwatch(self, calendar: CalendarRef, channel: WatchChannel) -> None:
        self.calls["unwatch"] = self.calls.get("unwatch", 0) + 1
        self.calendar(calendar.email).channels.pop(channel.channel_id, None)

    async def free_busy(
        self, calendar: CalendarRef, start: datetime, end: datetime
    ) -> list[BusyInterval]:
        cal = self._enter("free_busy", calendar)
        busy = [
            BusyInterval(start=max(e.start, start), end=min(e.end, end))
            for e in cal.events.values()
            if e.status != "cancelled"
            and e.rep_response != "declined"
            and not (e.all_day and e.event_type == "default")
            and e.start < end
            and e.end > start
        ]
        return sorted(busy, key=lambda b: b.start)

    async def create_event(self, calendar: CalendarRef, event: NewEvent) -> CalendarEvent:
        cal = self._enter("create_event", calendar)
        key = event.request_id or secrets.token_hex(8)
        event_id = "sbx" + hashlib.sha256(key.encode()).hexdigest()[:20]
        if event.request_id and event_id in cal.events:
            return cal.events[event_id]  # idempotent retry
        return self.put_event(calendar.email, self._written(calendar, event_id, event, None))

    async def update_event(
        self, calendar: CalendarRef, event_id: str, event: NewEvent
    ) -> CalendarEvent:
        cal = self._enter("update_event", calendar)
        old = cal.events.get(event_id)
        if old is None or old.status == "cancelled":
            raise NotFound(f"sandbox: no event {event_id!r} on {calendar.email}")
        return self.put_event(calendar.email, self._written(calendar, event_id, event, old))

    async def delete_event(self, calendar: CalendarRef, event_id: str) -> None:
        cal = self._enter("delete_event", calendar)
        old = cal.events.get(event_id)
        if old is not None and old.status != "cancelled":
            self.cancel_event(calendar.email, event_id)

    def _written(
        self, calendar: CalendarRef, event_id: str, event: NewEvent, old: CalendarEvent | None
    ) -> CalendarEvent:
        """The event as written: answers kept for attendees still invited at the same time."""
        moved = old is not None and (old.start, old.end) != (event.start, event.end)
        kept = {a.email: a.response for a in old.attendees} if old and not moved else {}
        link = old.video_link if old is not None else None
        if event.video and link is None:
            link = f"https://meet.sandbox.invalid/{event_id}"
        return CalendarEvent(
            event_id=event_id,
            title=event.title,
            start=event.start,
            end=event.end,
            status="tentative" if event.tentative else "confirmed",
            organizer_email=calendar.email,
            rep_response="accepted",
            attendees=(
                (Attendee(email=calendar.email, response="accepted", is_organizer=True),)
                if event.attendees
                else ()
            )
            + tuple(
                Attendee(email=a, response=kept.get(a.lower(), "needs_action"))
                for a in event.attendees
            ),
            time_zone=event.time_zone,
            ical_uid=(old.ical_uid if old is not None else None) or f"{event_id}@sandbox",
            created=old.created if old is not None else None,
            description=event.body,
            video_link=link if event.video else None,
        )

    async def working_hours(self, calendar: CalendarRef) -> ProviderHours | None:
        """The mailbox's working hours when set (as Outlook's mailboxSettings)."""
        return self.hours.get(calendar.email.lower())

    async def aclose(self) -> None:
        await self.drain()
