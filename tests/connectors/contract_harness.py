"""Per-provider adapters for the connector contract suite (``test_contract.py``).

Each adapter holds a provider connected to its world (the in-process sandbox, the
Google emulator, the Graph emulator) and offers what the *outside world* does to a
rep's calendar, in provider-neutral terms:

    async with open_world("google", tmp_path) as world:
        eid = world.add_meeting(start=..., end=..., title="demo",
                                attendees={"buyer@prospect.test": "accepted"})
        page = await world.provider.sync_page(world.calendar, None, since=...)
        world.move(eid, new_start); world.cancel(eid); world.respond(eid, who, "declined")
        world.expire_cursor(); world.refuse_access()

Where a provider truly differs, the adapter declares it (``focus_time_type``,
``invitee_sees_answers``) so the contract asserts the documented difference instead of
skipping. Everything an adapter starts (emulator servers, notifier and webhook threads,
connectors) is stopped when ``open_world`` exits.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

from connectors.base import (
    Attendee,
    CalendarEvent,
    CalendarProvider,
    CalendarRef,
    EventType,
    Response,
)
from connectors.google.connector import GoogleConnector
from connectors.microsoft import MicrosoftConnector
from connectors.sandbox.provider import SandboxProvider
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.harness import setup_google
from tests.emulators.microsoft.harness import (
    RunningEmulator,
    WebhookReceiver,
    connector_kwargs,
    generate_self_signed_cert,
    run_emulator,
    trust_env,
)

PROVIDERS = ("sandbox", "google", "microsoft")
PAGE_SIZE = 2  # small, so a handful of events spans several pages everywhere

Special = Literal["out_of_office", "focus_time"]


class World(ABC):
    """A provider plus the outside world's hand on one rep's calendar."""

    name: str
    provider: CalendarProvider
    calendar: CalendarRef
    # What a focus-time block is reported as (Graph has no focus-time marker).
    focus_time_type: EventType = "focus_time"
    # Whether an invitee's copy of a meeting shows the other attendees' answers
    # (Graph: "real answers only in the organizer's copy"; the rest show "none").
    invitee_sees_answers: bool = True

    def __init__(self) -> None:
        self._durations: dict[str, timedelta] = {}
        self._organizer: dict[str, str] = {}

    @property
    def rep(self) -> str:
        return self.calendar.email

    # --- the outside world ---------------------------------------------------------

    def add_meeting(
        self,
        *,
        start: datetime,
        end: datetime,
        title: str,
        attendees: Mapping[str, Response],
        organizer: str | None = None,
    ) -> str:
        """A meeting on the rep's calendar (organized by the rep unless ``organizer``).

        ``attendees`` are the invitees other than the organizer with their answers; when
        someone else organizes, the rep is invited (not yet answered) as well.
        Returns the event id as the provider will report it.
        """
        organizer = (organizer or self.rep).lower()
        event_id = self._add_meeting(start, end, title, dict(attendees), organizer)
        self._durations[event_id] = end - start
        self._organizer[event_id] = organizer
        return event_id

    def move(self, event_id: str, new_start: datetime) -> None:
        """The organizer reschedules (same duration)."""
        self._move(event_id, new_start, new_start + self._durations[event_id])

    def cancel(self, event_id: str) -> None:
        """The organizer cancels the meeting."""
        self._cancel(event_id, self._organizer.get(event_id, self.rep) == self.rep)

    @abstractmethod
    def respond(self, event_id: str, attendee: str, response: Response) -> None:
        """``attendee`` (an invitee, or the rep on an invitation) answers."""

    @abstractmethod
    def add_special(self, *, start: datetime, end: datetime, title: str, kind: Special) -> str:
        """An out-of-office or focus-time block the rep puts on their calendar."""

    @abstractmethod
    def add_all_day(self, *, day: date, days: int, title: str) -> str:
        """An all-day event of ``days`` days starting on ``day``."""

    @abstractmethod
    def expire_cursor(self) -> None:
        """Every sync cursor issued so far for the rep becomes invalid."""

    @abstractmethod
    def refuse_access(self) -> None:
        """The provider stops letting us into the rep's mailbox."""

    @abstractmethod
    def callback_url(self) -> str:
        """A webhook address the provider accepts for ``watch``."""

    @abstractmethod
    def live_channels(self) -> set[str]:
        """Ids of the push channels/subscriptions live on the provider for the rep."""

    # --- per provider --------------------------------------------------------------

    @abstractmethod
    def _add_meeting(
        self,
        start: datetime,
        end: datetime,
        title: str,
        attendees: dict[str, Response],
        organizer: str,
    ) -> str: ...

    @abstractmethod
    def _move(self, event_id: str, start: datetime, end: datetime) -> None: ...

    @abstractmethod
    def _cancel(self, event_id: str, rep_organizes: bool) -> None: ...


# --- sandbox ------------------------------------------------------------------------


class SandboxWorld(World):
    name = "sandbox"

    def __init__(self, rep: str) -> None:
        super().__init__()
        self.sandbox = SandboxProvider(page_size=PAGE_SIZE)
        self.provider = self.sandbox
        self.calendar = CalendarRef(rep_id="rep-sandbox", email=rep)
        self._seq = 0

    def _next_id(self) -> str:
        self._seq += 1
        return f"ext{self._seq:04d}"

    def _add_meeting(
        self,
        start: datetime,
        end: datetime,
        title: str,
        attendees: dict[str, Response],
        organizer: str,
    ) -> str:
        mine = organizer == self.rep.lower()
        people = [Attendee(email=email, response=r) for email, r in attendees.items()]
        if not mine:
            people.append(Attendee(email=self.rep, response="needs_action"))
        if people:  # like Google and Graph: the organizer is listed among the invitees
            people.insert(0, Attendee(email=organizer, response="accepted", is_organizer=True))
        event = CalendarEvent(
            event_id=self._next_id(),
            title=title,
            start=start,
            end=end,
            organizer_email=organizer,
            rep_response="accepted" if mine else "needs_action",
            attendees=tuple(people),
            time_zone="UTC",
        )
        return self.sandbox.put_event(self.rep, event).event_id

    def _move(self, event_id: str, start: datetime, end: datetime) -> None:
        self.sandbox.move_event(self.rep, event_id, start)

    def _cancel(self, event_id: str, rep_organizes: bool) -> None:
        self.sandbox.cancel_event(self.rep, event_id)

    def respond(self, event_id: str, attendee: str, response: Response) -> None:
        self.sandbox.respond(self.rep, event_id, attendee, response)

    def add_special(self, *, start: datetime, end: datetime, title: str, kind: Special) -> str:
        event = CalendarEvent(
            event_id=self._next_id(), title=title, start=start, end=end,
            event_type=kind, organizer_email=self.rep,
        )  # fmt: skip
        return self.sandbox.put_event(self.rep, event).event_id

    def add_all_day(self, *, day: date, days: int, title: str) -> str:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        event = CalendarEvent(
            event_id=self._next_id(), title=title, start=start,
            end=start + timedelta(days=days), all_day=True, organizer_email=self.rep,
        )  # fmt: skip
        return self.sandbox.put_event(self.rep, event).event_id

    def expire_cursor(self) -> None:
        self.sandbox.expire_cursors(self.rep)

    def refuse_access(self) -> None:
        self.sandbox.refused.add(self.rep.lower())

    def callback_url(self) -> str:
        return "https://nextstep.test/webhooks/sandbox"

    def live_channels(self) -> set[str]:
        return set(self.sandbox.calendar(self.rep).channels)


# --- Google (emulator) --------------------------------------------------------------

_GOOGLE_RESPONSE = {
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentative",
    "needs_action": "needsAction",
}
_GOOGLE_TYPE = {"out_of_office": "outOfOffice", "focus_time": "focusTime"}


class GoogleWorld(World):
    name = "google"

    def __init__(self, emulator: GoogleEmulator, connector: GoogleConnector, client_id: str,
                 rep: str) -> None:  # fmt: skip
        super().__init__()
        self.emulator = emulator
        self.connector = connector
        self.provider = connector
        self.client_id = client_id
        self.calendar = CalendarRef(rep_id="rep-google", email=rep)

    def _add_meeting(
        self,
        start: datetime,
        end: datetime,
        title: str,
        attendees: dict[str, Response],
        organizer: str,
    ) -> str:
        people = [
            {"email": email, "responseStatus": _GOOGLE_RESPONSE[r]}
            for email, r in attendees.items()
        ]
        return self.emulator.create_event(
            self.rep,
            start=start,
            end=end,
            summary=title,
            attendees=people,
            organizer=None if organizer == self.rep.lower() else organizer,
        )

    def _move(self, event_id: str, start: datetime, end: datetime) -> None:
        self.emulator.move_event(self.rep, event_id, start, end)

    def _cancel(self, event_id: str, rep_organizes: bool) -> None:
        self.emulator.cancel_event(self.rep, event_id)

    def respond(self, event_id: str, attendee: str, response: Response) -> None:
        self.emulator.set_response(self.rep, event_id, attendee, _GOOGLE_RESPONSE[response])

    def add_special(self, *, start: datetime, end: datetime, title: str, kind: Special) -> str:
        return self.emulator.create_event(
            self.rep, start=start, end=end, summary=title, event_type=_GOOGLE_TYPE[kind]
        )

    def add_all_day(self, *, day: date, days: int, title: str) -> str:
        return self.emulator.create_event(
            self.rep, start=day, end=day + timedelta(days=days), summary=title
        )

    def expire_cursor(self) -> None:
        self.emulator.invalidate_sync_tokens(self.rep)

    def refuse_access(self) -> None:
        # Google refuses per service-account client: the admin removes the domain-wide
        # delegation; tokens already issued stop working (401, then the refresh fails).
        self.emulator.revoke_client(self.client_id)
        self.emulator.revoke_tokens()

    def callback_url(self) -> str:
        return self.emulator.sink_url("contract")

    def live_channels(self) -> set[str]:
        return {c.id for c in self.emulator.live_channels(self.rep)}


# --- Microsoft Graph (emulator) ------------------------------------------------------

_GRAPH_RESPONSE = {
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentativelyAccepted",
    "needs_action": "none",
}


class MicrosoftWorld(World):
    name = "microsoft"
    focus_time_type: EventType = "default"  # connector docstring: no focus-time marker
    invitee_sees_answers = False  # emulator README: real answers only in the organizer's copy

    def __init__(self, running: RunningEmulator, connector: MicrosoftConnector, rep: str,
                 receiver: Callable[[], str]) -> None:  # fmt: skip
        super().__init__()
        self.running = running
        self.emulator = running.emulator
        self.connector = connector
        self.provider = connector
        self.calendar = CalendarRef(rep_id="rep-microsoft", email=rep)
        self._receiver_url = receiver

    def _add_meeting(
        self,
        start: datetime,
        end: datetime,
        title: str,
        attendees: dict[str, Response],
        organizer: str,
    ) -> str:
        people = [(email, "required", _GRAPH_RESPONSE[r]) for email, r in attendees.items()]
        mine = organizer == self.rep.lower()
        if not mine:
            people.append((self.rep, "required", "none"))
        return self.emulator.add_event(
            self.rep,
            subject=title,
            start=start,
            end=end,
            attendees=people,
            organizer=None if mine else organizer,
        )

    def _move(self, event_id: str, start: datetime, end: datetime) -> None:
        self.emulator.move_event(self.rep, event_id, start, end)

    def _cancel(self, event_id: str, rep_organizes: bool) -> None:
        if rep_organizes:
            # The organizer's own copy is deleted: delta reports it as @removed.
            self.emulator.cancel_event(self.rep, event_id)
        else:
            # An invitee's copy stays, marked isCancelled (what Exchange does).
            mailbox = self.emulator.mailboxes[self.rep.lower()]
            subject = mailbox.events[event_id].subject
            self.emulator.update_event(
                self.rep, event_id, is_cancelled=True, subject=f"Canceled: {subject}"
            )

    def respond(self, event_id: str, attendee: str, response: Response) -> None:
        self.emulator.set_response(self.rep, event_id, attendee, response)

    def add_special(self, *, start: datetime, end: datetime, title: str, kind: Special) -> str:
        # Outlook/Viva focus time is an ordinary busy event; out of office is showAs "oof".
        show_as = "oof" if kind == "out_of_office" else "busy"
        return self.emulator.add_event(
            self.rep, subject=title, start=start, end=end, show_as=show_as
        )

    def add_all_day(self, *, day: date, days: int, title: str) -> str:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return self.emulator.add_event(
            self.rep,
            subject=title,
            start=start,
            end=start + timedelta(days=days),
            all_day=True,
            time_zone="UTC",
        )

    def expire_cursor(self) -> None:
        self.emulator.expire_delta_tokens(self.rep)

    def refuse_access(self) -> None:
        # An application access policy that leaves the mailbox out: 403 ErrorAccessDenied.
        self.emulator.set_mailbox(self.rep, allowed=False)

    def callback_url(self) -> str:
        return self._receiver_url()

    def live_channels(self) -> set[str]:
        now = self.emulator.now()
        with self.emulator._lock:
            return {
                s.id
                for s in self.emulator.subscriptions.values()
                if s.mailbox == self.rep.lower() and s.expires > now
            }


# --- opening a world ----------------------------------------------------------------


@contextmanager
def _env(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous values."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@asynccontextmanager
async def _sandbox(tmp_path: Path) -> AsyncIterator[World]:
    world = SandboxWorld("rep@seller.test")
    try:
        yield world
    finally:
        await world.sandbox.aclose()


@asynccontextmanager
async def _google(tmp_path: Path) -> AsyncIterator[World]:
    rep = "rep@corp.test"
    with GoogleEmulator.start() as emu:
        env = setup_google(emu, tmp_path / "google", reps=[rep])
        connector = GoogleConnector(
            str(env.key_file),
            emu.api_root,
            backoff_base=0.001,
            backoff_cap=0.005,
            page_size=PAGE_SIZE,
            http_timeout=5.0,
        )
        try:
            yield GoogleWorld(emu, connector, env.client_id, rep)
        finally:
            await connector.aclose()


@asynccontextmanager
async def _microsoft(tmp_path: Path) -> AsyncIterator[World]:
    rep = "rep@contoso.com"
    cert = generate_self_signed_cert(tmp_path / "ms-cert")
    with ExitStack() as stack:
        stack.enter_context(_env(trust_env(cert)))  # before any client is built
        running = stack.enter_context(run_emulator(cert))
        running.emulator.add_user(rep, display_name="Rita Rep")
        receivers: list[WebhookReceiver] = []

        def receiver_url() -> str:
            if not receivers:
                receivers.append(stack.enter_context(WebhookReceiver()))
            return receivers[0].url

        connector = MicrosoftConnector(
            **connector_kwargs(running),
            backoff_base=0.001,
            backoff_cap=0.005,
            page_size=PAGE_SIZE,
            timeout=10.0,
        )
        try:
            yield MicrosoftWorld(running, connector, rep, receiver_url)
        finally:
            await connector.aclose()


def open_world(name: str, tmp_path: Path) -> AbstractAsyncContextManager[World]:
    """The provider ``name`` connected to a fresh world; everything stops on exit."""
    return {"sandbox": _sandbox, "google": _google, "microsoft": _microsoft}[name](tmp_path)


def threads_left(before: set[threading.Thread], grace: float = 2.0) -> list[str]:
    """Names of threads started since ``before`` still alive after a short grace.

    The event loop's default-executor threads (``asyncio_N``) are not counted: they
    belong to the loop, which pytest-asyncio closes after the test.
    """
    deadline = time.monotonic() + grace
    while True:
        alive = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith("asyncio_")
        ]
        if not alive or time.monotonic() > deadline:
            return [t.name for t in alive]
        time.sleep(0.02)


__all__ = [
    "PAGE_SIZE",
    "PROVIDERS",
    "GoogleWorld",
    "MicrosoftWorld",
    "SandboxWorld",
    "World",
    "open_world",
    "threads_left",
]
