"""The connector contract: what the engine relies on, asserted alike for every provider.

Each test runs against the sandbox, the Google connector on the Google emulator and the
Microsoft connector on the Graph emulator (``contract_harness.open_world``). The outside
world (invitees answering, organizers moving or cancelling, cursors expiring, access
being refused) is driven through the adapter, never through the connector under test.
Where a provider documents a real difference, the adapter declares it and the test
asserts that difference (focus time on Graph, answers in an invitee's copy on Graph).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import (
    AuthFailed,
    BusyInterval,
    CalendarEvent,
    CalendarProvider,
    CursorExpired,
    NewEvent,
    Response,
    SyncPage,
    WatchChannel,
)
from tests.connectors.contract_harness import PAGE_SIZE, PROVIDERS, World, open_world, threads_left

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
BASE = TODAY + timedelta(days=2)  # midnight UTC, two days ahead: every meeting is upcoming
SINCE = TODAY - timedelta(days=7)
HALF_HOUR = timedelta(minutes=30)
PARTNER = "seller@partner.test"  # someone else who organizes meetings the rep is invited to


@pytest.fixture(params=PROVIDERS)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """A provider in a fresh world; fails if a thread it started outlives it."""
    before = set(threading.enumerate())
    async with open_world(request.param, tmp_path) as opened:
        yield opened
    leftover = threads_left(before)
    assert not leftover, f"threads left running: {leftover}"


# --- helpers ---------------------------------------------------------------------------


@dataclass
class Round:
    """The pages of one sync round, folded as the engine applies them."""

    pages: list[SyncPage] = field(default_factory=list)
    events: dict[str, CalendarEvent] = field(default_factory=dict)  # latest state per id
    removed: set[str] = field(default_factory=set)

    @property
    def cursor(self) -> str:
        return self.pages[-1].cursor

    @property
    def listed(self) -> list[str]:
        """Every event id in page order, repeats included."""
        return [e.event_id for p in self.pages for e in p.events]


async def sync_round(world: World, cursor: str | None) -> Round:
    """Pages from ``cursor`` (None: a full sync) until the last one."""
    result = Round()
    while True:
        page = await world.provider.sync_page(world.calendar, cursor, since=SINCE)
        result.pages.append(page)
        for event in page.events:
            result.events[event.event_id] = event
        result.removed.update(page.removed_ids)
        cursor = page.cursor
        if page.last_page:
            return result
        assert len(result.pages) < 50, "sync round does not end"


def at(day: int, hour: float) -> datetime:
    return BASE + timedelta(days=day, hours=hour)


def answers(event: CalendarEvent) -> dict[str, Response]:
    """Invitees other than the organizer, with their answers."""
    return {a.email: a.response for a in event.attendees if not a.is_organizer}


def assert_utc_comparable(*values: datetime | None) -> None:
    for value in values:
        if value is not None:
            assert value.tzinfo is not None and value.utcoffset() is not None, value


def assert_event(
    event: CalendarEvent,
    *,
    title: str,
    start: datetime,
    end: datetime,
    organizer: str,
    rep_response: Response,
    invitees: Mapping[str, Response],
) -> None:
    """The mapping the engine relies on for a timed meeting."""
    assert_utc_comparable(event.start, event.end, event.created, event.updated)
    assert (event.title, event.start, event.end) == (title, start, end)
    assert (event.status, event.all_day, event.event_type) == ("confirmed", False, "default")
    assert event.organizer_email == organizer
    assert event.rep_response == rep_response
    assert answers(event) == dict(invitees)
    for attendee in event.attendees:
        if attendee.email == organizer:  # the organizer, when listed, is marked and accepted
            assert attendee.is_organizer and attendee.response == "accepted", attendee


def reported_cancelled(result: Round, event_id: str) -> bool:
    """A cancellation reaches the engine as status "cancelled" or as a removed id."""
    event = result.events.get(event_id)
    return event_id in result.removed or (event is not None and event.status == "cancelled")


def overlaps(busy: list[BusyInterval], start: datetime, end: datetime) -> bool:
    return any(b.start < end and b.end > start for b in busy)


# --- the contract ----------------------------------------------------------------------


async def test_is_a_calendar_provider(world: World) -> None:
    assert isinstance(world.provider, CalendarProvider)
    assert world.provider.name == world.name


async def test_full_sync_lists_every_live_event_once_over_several_pages(world: World) -> None:
    rep = world.rep.lower()
    invitees: list[dict[str, Response]] = [
        {"buyer@prospect.test": "accepted"},
        {"buyer@prospect.test": "declined", "cfo@prospect.test": "tentative"},
        {"cfo@prospect.test": "needs_action"},
        {},  # a meeting with nobody else: no attendee rows at all
        {"ops@prospect.test": "tentative"},
    ]
    expected: dict[str, tuple[str, datetime, dict[str, Response]]] = {}
    for i, people in enumerate(invitees):
        title, start = f"meeting {i}", at(0, 9 + i)
        eid = world.add_meeting(start=start, end=start + HALF_HOUR, title=title, attendees=people)
        expected[eid] = (title, start, people)
    invite_start = at(1, 15)
    invite = world.add_meeting(
        start=invite_start, end=invite_start + HALF_HOUR, title="their demo",
        attendees={"peer@partner.test": "accepted"}, organizer=PARTNER,
    )  # fmt: skip
    old = world.add_meeting(
        start=SINCE - timedelta(days=3), end=SINCE - timedelta(days=3) + HALF_HOUR,
        title="long ago", attendees={"buyer@prospect.test": "accepted"},
    )  # fmt: skip
    gone = world.add_meeting(
        start=at(0, 16), end=at(0, 16) + HALF_HOUR, title="called off",
        attendees={"buyer@prospect.test": "accepted"},
    )  # fmt: skip
    world.cancel(gone)

    full = await sync_round(world, None)

    assert len(full.pages) >= 3, [len(p.events) for p in full.pages]
    assert all(p.full for p in full.pages)
    assert [p.last_page for p in full.pages] == [False] * (len(full.pages) - 1) + [True]
    assert all(len(p.events) <= PAGE_SIZE for p in full.pages)
    assert all(p.cursor for p in full.pages)
    assert sorted(full.listed) == sorted(set(full.listed)), "an event listed twice"
    assert set(full.listed) == set(expected) | {invite}
    assert old not in full.listed and gone not in full.listed
    assert full.removed == set()
    for eid, (title, start, people) in expected.items():
        assert_event(
            full.events[eid], title=title, start=start, end=start + HALF_HOUR,
            organizer=rep, rep_response="accepted", invitees=people,
        )  # fmt: skip
    # Graph shows an invitee nobody else's answer (emulator README, Graph event docs).
    peer: Response = "accepted" if world.invitee_sees_answers else "needs_action"
    assert_event(
        full.events[invite], title="their demo", start=invite_start,
        end=invite_start + HALF_HOUR, organizer=PARTNER, rep_response="needs_action",
        invitees={"peer@partner.test": peer, rep: "needs_action"},
    )  # fmt: skip


async def test_incremental_sync_returns_only_the_changes(world: World) -> None:
    buyer = {"buyer@prospect.test": "needs_action"}
    ids = [
        world.add_meeting(start=at(0, 9 + i), end=at(0, 9 + i) + HALF_HOUR, title=f"m{i}",
                          attendees=dict(buyer))
        for i in range(4)
    ]  # fmt: skip
    moved, answered, cancelled, untouched = ids
    full = await sync_round(world, None)
    assert set(full.events) == set(ids)

    new_start = at(0, 14)
    new = world.add_meeting(
        start=new_start, end=new_start + HALF_HOUR, title="new one",
        attendees={"buyer@prospect.test": "needs_action", "cfo@prospect.test": "accepted"},
    )  # fmt: skip
    moved_to = at(1, 11)
    world.move(moved, moved_to)
    world.respond(answered, "buyer@prospect.test", "accepted")
    world.cancel(cancelled)

    changes = await sync_round(world, full.cursor)

    assert not any(p.full for p in changes.pages)
    assert changes.pages[-1].last_page and changes.cursor
    assert untouched not in changes.events and untouched not in changes.removed
    assert set(changes.events) - {cancelled} == {new, moved, answered}
    assert_event(
        changes.events[new], title="new one", start=new_start, end=new_start + HALF_HOUR,
        organizer=world.rep.lower(), rep_response="accepted",
        invitees={"buyer@prospect.test": "needs_action", "cfo@prospect.test": "accepted"},
    )  # fmt: skip
    assert (changes.events[moved].start, changes.events[moved].end) == (
        moved_to,
        moved_to + HALF_HOUR,
    )
    assert changes.events[moved].status == "confirmed"
    assert answers(changes.events[answered]) == {"buyer@prospect.test": "accepted"}
    assert reported_cancelled(changes, cancelled)
    assert_utc_comparable(*(e.start for e in changes.events.values()))

    idle = await sync_round(world, changes.cursor)
    assert (idle.events, idle.removed) == ({}, set())
    assert len(idle.pages) == 1 and not idle.pages[0].full and idle.cursor


async def test_the_reps_answer_to_an_invitation_is_rep_response(world: World) -> None:
    rep = world.rep.lower()
    start = at(1, 10)
    invite = world.add_meeting(
        start=start, end=start + HALF_HOUR, title="their pitch",
        attendees={"peer@partner.test": "needs_action"}, organizer=PARTNER,
    )  # fmt: skip
    full = await sync_round(world, None)
    assert full.events[invite].rep_response == "needs_action"
    assert full.events[invite].organizer_email == PARTNER

    world.respond(invite, world.rep, "declined")
    answered = await sync_round(world, full.cursor)
    event = answered.events[invite]
    assert event.rep_response == "declined"
    assert answers(event)[rep] == "declined"

    world.cancel(invite)  # the organizer calls it off: the rep's copy is cancelled
    cancelled = await sync_round(world, answered.cursor)
    assert reported_cancelled(cancelled, invite)


async def test_expired_cursor_then_a_full_sync_converges(world: World) -> None:
    people: dict[str, Response] = {"buyer@prospect.test": "accepted"}
    live = [
        world.add_meeting(start=at(0, 9 + i), end=at(0, 9 + i) + HALF_HOUR, title=f"m{i}",
                          attendees=people)
        for i in range(3)
    ]  # fmt: skip
    full = await sync_round(world, None)
    world.expire_cursor()
    world.cancel(live.pop())
    live.append(
        world.add_meeting(start=at(2, 9), end=at(2, 9) + HALF_HOUR, title="later",
                          attendees=people)
    )  # fmt: skip

    with pytest.raises(CursorExpired):
        await world.provider.sync_page(world.calendar, full.cursor, since=SINCE)

    again = await sync_round(world, None)
    assert all(p.full for p in again.pages)
    assert sorted(again.listed) == sorted(live)
    idle = await sync_round(world, again.cursor)
    assert (idle.events, idle.removed) == ({}, set())


async def test_watch_renew_unwatch(world: World) -> None:
    provider, cal, url = world.provider, world.calendar, world.callback_url()
    now = datetime.now(UTC)

    channel = await provider.watch(cal, url)
    assert isinstance(channel, WatchChannel)
    assert channel.channel_id and len(channel.token) >= 16
    assert_utc_comparable(channel.expires_at)
    assert channel.expires_at > now
    assert world.live_channels() == {channel.channel_id}

    renewed = await provider.renew(cal, channel, url)
    assert provider.renewal in ("in_place", "replace")
    if provider.renewal == "in_place":
        assert renewed.channel_id == channel.channel_id
    else:  # a new channel; the old one stays live until the engine stops it
        assert renewed.channel_id != channel.channel_id
        assert world.live_channels() == {channel.channel_id, renewed.channel_id}
        await provider.unwatch(cal, channel)
    assert renewed.token and len(renewed.token) >= 16
    assert renewed.expires_at > now and renewed.expires_at >= channel.expires_at - timedelta(
        seconds=1
    )
    assert world.live_channels() == {renewed.channel_id}

    # The engine replaces a channel by watching again, storing the new one, then stopping
    # the old one: both must be live during the overlap, each with its own secret.
    second = await provider.watch(cal, url)
    assert second.channel_id != renewed.channel_id and second.token != renewed.token
    assert world.live_channels() == {renewed.channel_id, second.channel_id}

    for gone in (renewed, renewed, channel, second, second):  # twice is not an error
        await provider.unwatch(cal, gone)
    assert world.live_channels() == set()


async def test_free_busy(world: World) -> None:
    meeting = (at(0, 10), at(0, 11))
    free = (at(0, 12), at(0, 13))
    world.add_meeting(
        start=meeting[0], end=meeting[1], title="busy hour",
        attendees={"buyer@prospect.test": "accepted"},
    )  # fmt: skip
    dropped = world.add_meeting(
        start=free[0], end=free[1], title="called off",
        attendees={"buyer@prospect.test": "accepted"},
    )  # fmt: skip
    world.cancel(dropped)  # a cancelled meeting frees its slot

    busy = await world.provider.free_busy(world.calendar, at(0, 9), at(0, 14))

    for interval in busy:
        assert_utc_comparable(interval.start, interval.end)
        assert interval.start < interval.end
        assert interval.start < at(0, 14) and interval.end > at(0, 9)
    assert any(b.start <= meeting[0] and b.end >= meeting[1] for b in busy), busy
    assert not overlaps(busy, *free), busy
    # What the engine asks before creating a follow-up: exactly the slot it wants.
    exact = await world.provider.free_busy(world.calendar, *meeting)
    assert overlaps(exact, *meeting), exact
    adjacent = await world.provider.free_busy(world.calendar, meeting[1], free[0])
    assert not overlaps(adjacent, meeting[1], free[0]), adjacent  # back-to-back is free


async def test_create_event_is_synced_and_idempotent(world: World) -> None:
    rep = world.rep.lower()
    full = await sync_round(world, None)
    start = at(3, 15)
    request = NewEvent(
        title="Next step: pricing",
        start=start,
        end=start + HALF_HOUR,
        attendees=("buyer@prospect.test", "cfo@prospect.test"),
        body="Follow-up",
        request_id="contract-follow-up-1",
    )
    invitees: dict[str, Response] = {
        "buyer@prospect.test": "needs_action",
        "cfo@prospect.test": "needs_action",
    }

    created = await world.provider.create_event(world.calendar, request)
    assert_event(
        created, title=request.title, start=start, end=start + HALF_HOUR, organizer=rep,
        rep_response="accepted", invitees=invitees,
    )  # fmt: skip

    synced = await sync_round(world, full.cursor)
    assert set(synced.events) == {created.event_id}
    assert_event(
        synced.events[created.event_id], title=request.title, start=start,
        end=start + HALF_HOUR, organizer=rep, rep_response="accepted", invitees=invitees,
    )  # fmt: skip

    again = await world.provider.create_event(world.calendar, request)  # a retry
    assert again.event_id == created.event_id
    after = await sync_round(world, synced.cursor)
    assert set(after.events) <= {created.event_id} and after.removed == set()
    everything = await sync_round(world, None)
    assert [e.title for e in everything.events.values()].count(request.title) == 1


async def test_refused_mailbox_is_auth_failed(world: World) -> None:
    provider, cal = world.provider, world.calendar
    world.add_meeting(
        start=at(0, 10), end=at(0, 11), title="m", attendees={"buyer@prospect.test": "accepted"}
    )
    full = await sync_round(world, None)  # access worked, tokens are cached
    url = world.callback_url()
    world.refuse_access()

    with pytest.raises(AuthFailed):
        await provider.sync_page(cal, full.cursor, since=SINCE)
    with pytest.raises(AuthFailed):
        await provider.sync_page(cal, None, since=SINCE)
    with pytest.raises(AuthFailed):
        await provider.free_busy(cal, at(0, 9), at(0, 12))
    with pytest.raises(AuthFailed):
        await provider.watch(cal, url)
    with pytest.raises(AuthFailed):
        await provider.create_event(
            cal,
            NewEvent(title="x", start=at(1, 9), end=at(1, 10), attendees=("b@prospect.test",),
                     request_id="refused-1"),
        )  # fmt: skip


async def test_out_of_office_and_focus_time(world: World) -> None:
    oof = world.add_special(start=at(1, 0), end=at(1, 8), title="Away", kind="out_of_office")
    focus = world.add_special(start=at(0, 13), end=at(0, 15), title="Focus time", kind="focus_time")
    full = await sync_round(world, None)
    assert full.events[oof].event_type == "out_of_office"
    # Graph has no focus-time marker (connectors/microsoft/connector.py docstring): a
    # focus block is an ordinary busy event there.
    assert full.events[focus].event_type == world.focus_time_type
    busy = await world.provider.free_busy(world.calendar, at(0, 12), at(0, 16))
    assert any(b.start <= at(0, 13) and b.end >= at(0, 15) for b in busy), busy


async def test_all_day_events_span_utc_midnights(world: World) -> None:
    day: date = (BASE + timedelta(days=4)).date()
    eid = world.add_all_day(day=day, days=2, title="offsite")
    full = await sync_round(world, None)
    event = full.events[eid]
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert event.all_day
    assert_utc_comparable(event.start, event.end)
    assert (event.start, event.end) == (midnight, midnight + timedelta(days=2))
