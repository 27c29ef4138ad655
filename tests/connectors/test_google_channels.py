"""Push channels: events.watch / channels.stop, renewal, and notification headers."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import CalendarRef, NotFound, WatchChannel
from connectors.google.connector import GoogleConnector
from connectors.google.notifications import (
    GoogleNotification,
    as_notification,
    parse_notification,
)
from tests.emulators.google import fixtures, samples
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.fixtures import REP

# pytest fixtures shared with the other Google test modules
google_connector = fixtures.google_connector
google_emulator = fixtures.google_emulator
google_env = fixtures.google_env

CAL = CalendarRef(rep_id="r1", email=REP)
T0 = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)


def proves(n: GoogleNotification, channel_id: str, token: str, resource_id: str | None) -> bool:
    """The engine's check: does the notification prove it came on this stored channel?"""
    stored = WatchChannel(
        channel_id=channel_id, token=token, resource_id=resource_id, expires_at=T0
    )
    return as_notification(n).matches(stored)


def _change(emu: GoogleEmulator, n: int = 0) -> str:
    start = T0 + timedelta(hours=n)
    return emu.create_event(REP, start=start, end=start + timedelta(hours=1), summary=f"c{n}")


async def test_watch_sends_the_documented_request_and_a_sync_message(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    before = datetime.now(UTC)
    channel = await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    (request,) = google_emulator.requests_for("events.watch")
    assert request.path == f"/calendar/v3/calendars/{REP}/events/watch"
    assert request.body["type"] == "web_hook"
    assert request.body["address"] == google_emulator.sink_url("rep")
    assert request.body["id"] == channel.channel_id and len(channel.channel_id) == 36
    assert request.body["token"] == channel.token and len(channel.token) >= 40
    assert request.body["params"] == {"ttl": "604800"}
    assert channel.resource_id == google_emulator.calendars[REP].resource_id
    assert timedelta(days=6, hours=23) < channel.expires_at - before <= timedelta(days=7, seconds=5)

    (sync,) = google_emulator.wait_for_sink("rep", 1)
    notification = parse_notification(sync)
    assert notification.is_sync and notification.message_number == 1
    assert proves(notification, channel.channel_id, channel.token, channel.resource_id)
    assert notification.channel_expiration == channel.expires_at.replace(microsecond=0)


async def test_changes_notify_with_increasing_message_numbers(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    channel = await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    google_emulator.wait_for_sink("rep", 1)
    for n in range(4):
        _change(google_emulator, n)
    received = [parse_notification(h) for h in google_emulator.wait_for_sink("rep", 5)]
    numbers = [n.message_number for n in received]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5
    assert [n.resource_state for n in received[1:]] == ["exists"] * 4
    assert all(proves(n, channel.channel_id, channel.token, channel.resource_id) for n in received)
    assert (
        received[1].resource_uri
        == f"{google_emulator.api_root}calendar/v3/calendars/{REP}/events?alt=json"
    )


async def test_sync_message_can_arrive_before_the_watch_response(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    google_emulator.sync_before_watch_response = True
    channel = await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    # already there when watch() returned: the webhook must cope with an unknown channel
    assert len(google_emulator.sink.get("rep", [])) == 1
    assert parse_notification(google_emulator.sink["rep"][0]).channel_id == channel.channel_id


async def test_renew_creates_the_new_channel_before_stopping_the_old(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    assert google_connector.renewal == "replace"
    old = await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    new = await google_connector.renew(CAL, old, google_emulator.sink_url("rep"))
    assert new.channel_id != old.channel_id and new.token != old.token
    # both live during the overlap, until the engine has stored the new one and stops the old
    assert {c.id for c in google_emulator.live_channels(REP)} == {old.channel_id, new.channel_id}
    await google_connector.unwatch(CAL, old)
    order = [
        r.method for r in google_emulator.requests if r.method in ("events.watch", "channels.stop")
    ]
    assert order == ["events.watch", "events.watch", "channels.stop"]
    stop = google_emulator.requests_for("channels.stop")[0]
    assert stop.body == {"id": old.channel_id, "resourceId": old.resource_id}
    assert google_emulator.channels[old.channel_id].stopped
    assert [c.id for c in google_emulator.live_channels(REP)] == [new.channel_id]
    google_emulator.wait_for_sink("rep", 2)  # the two sync messages
    _change(google_emulator)
    last = parse_notification(google_emulator.wait_for_sink("rep", 3)[-1])
    assert last.channel_id == new.channel_id


async def test_renew_survives_an_old_channel_already_gone(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    old = await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    await google_connector.unwatch(CAL, old)
    new = await google_connector.renew(CAL, old, google_emulator.sink_url("rep"))
    assert [c.id for c in google_emulator.live_channels(REP)] == [new.channel_id]


async def test_unwatch_is_idempotent(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    channel = await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    await google_connector.unwatch(CAL, channel)
    await google_connector.unwatch(CAL, channel)  # 404 from Google: fine
    never = WatchChannel(
        channel_id="nope", token="t", resource_id="r", expires_at=datetime.now(UTC)
    )
    await google_connector.unwatch(CAL, never)
    assert google_emulator.calls["channels.stop"] == 3
    assert google_emulator.live_channels(REP) == []
    _change(google_emulator)
    time.sleep(0.1)
    assert len(google_emulator.sink.get("rep", [])) == 1  # only the sync message


async def test_stale_duplicate_reordered_and_dropped_notifications(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    """The emulator misbehaves like real push delivery; proves() alone is not liveness."""
    emu = google_emulator
    channel = await google_connector.watch(CAL, emu.sink_url("rep"))
    emu.wait_for_sink("rep", 1)
    emu.duplicate_next_notifications(1)
    _change(emu, 1)
    got = emu.wait_for_sink("rep", 3)
    assert got[1] == got[2]  # same message number twice

    emu.hold_notifications()
    _change(emu, 2)
    _change(emu, 3)
    emu.release_notifications(reverse=True)
    got = [parse_notification(h) for h in emu.wait_for_sink("rep", 5)]
    assert got[3].message_number > got[4].message_number  # out of order

    emu.drop_next_notifications(1)
    _change(emu, 4)
    time.sleep(0.1)
    assert len(emu.sink["rep"]) == 5

    await google_connector.unwatch(CAL, channel)
    emu.send_stale_notification(channel.channel_id).wait(5)
    stale = parse_notification(emu.wait_for_sink("rep", 6)[-1])
    # still carries valid credentials: the webhook must also check the channel is live
    assert proves(stale, channel.channel_id, channel.token, channel.resource_id)


async def test_expired_channel_stops_notifying(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    channel = await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    google_emulator.wait_for_sink("rep", 1)
    google_emulator.expire_channel(channel.channel_id)
    _change(google_emulator)
    time.sleep(0.1)
    assert len(google_emulator.sink["rep"]) == 1
    with pytest.raises(NotFound):
        # Google forgets an expired channel; unwatch() swallows it, the raw call does not
        await google_connector._call(
            CAL,
            "channels.stop",
            lambda svc: svc.channels().stop(body={"id": "missing", "resourceId": "x"}),
        )


# --- header parsing -------------------------------------------------------------------


def test_parse_documented_sync_message() -> None:
    notification = parse_notification(samples.http_headers("push_sync_message.http"))
    assert notification == GoogleNotification(
        channel_id="channel-ID-value",
        token="channel-token-value",
        resource_id="identifier-for-the-watched-resource",
        resource_state="sync",
        message_number=1,
        resource_uri="version-specific-URI-of-the-watched-resource",
        channel_expiration=None,  # the doc's placeholder is not a date: ignored
    )


def test_parse_documented_exists_message() -> None:
    notification = parse_notification(samples.http_headers("push_exists_message.http"))
    assert notification.channel_id == "4ba78bf0-6a47-11e2-bcfd-0800200c9a66"
    assert notification.token == "398348u3tu83ut8uu38"
    assert notification.resource_id == "ret08u3rv24htgh289g"
    assert notification.resource_state == "exists"
    assert notification.message_number == 10
    assert notification.resource_uri == (
        "https://www.googleapis.com/calendar/v3/calendars/my_calendar@gmail.com/events"
    )
    assert notification.channel_expiration == datetime(2013, 11, 19, 1, 13, 52, tzinfo=UTC)
    assert proves(
        notification,
        "4ba78bf0-6a47-11e2-bcfd-0800200c9a66",
        "398348u3tu83ut8uu38",
        "ret08u3rv24htgh289g",
    )


def test_parse_is_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in samples.http_headers("push_exists_message.http").items()}
    assert parse_notification(headers).message_number == 10


@pytest.mark.parametrize(
    "header",
    ["X-Goog-Channel-ID", "X-Goog-Resource-ID", "X-Goog-Resource-State", "X-Goog-Message-Number"],
)
def test_missing_required_header_is_named(header: str) -> None:
    headers = samples.http_headers("push_exists_message.http")
    del headers[header]
    with pytest.raises(ValueError, match=header):
        parse_notification(headers)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Goog-Resource-State", "updated"),
        ("X-Goog-Message-Number", "ten"),
        ("X-Goog-Message-Number", "0"),
    ],
)
def test_invalid_header_is_named(header: str, value: str) -> None:
    headers = samples.http_headers("push_exists_message.http")
    headers[header] = value
    with pytest.raises(ValueError, match=header):
        parse_notification(headers)


def test_verify_rejects_any_mismatch() -> None:
    n = parse_notification(samples.http_headers("push_exists_message.http"))
    cid, token, rid = n.channel_id, "398348u3tu83ut8uu38", n.resource_id
    assert proves(n, cid, token, rid)
    assert proves(n, cid, token, None)
    assert not proves(n, "other", token, rid)
    assert not proves(n, cid, "wrong-token", rid)
    assert not proves(n, cid, token, "other-resource")
    assert not proves(replace(n, token=None), cid, token, rid)
    assert not proves(replace(n, token=None), cid, "", rid)  # an empty stored token never matches


# --- the documented requests and responses --------------------------------------------


async def test_watch_request_has_the_documented_shape(
    google_connector: GoogleConnector, google_emulator: GoogleEmulator
) -> None:
    method, path, _, documented = samples.http_request("events_watch_request.http")
    await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    (ours,) = google_emulator.requests_for("events.watch")
    assert method == "POST"
    assert path.replace("my_calendar@gmail.com", REP) == ours.path
    assert isinstance(documented, dict)
    # same fields, except the optional absolute "expiration": we ask for a ttl instead
    assert set(documented) - {"expiration"} <= set(ours.body)
    assert ours.body["type"] == documented["type"] == "web_hook"


async def test_documented_watch_response_is_understood(
    google_connector: GoogleConnector, google_emulator: GoogleEmulator
) -> None:
    google_emulator.fail_next(
        1, 200, body=samples.text("events_watch_response.json"), method="events.watch"
    )
    channel = await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    assert channel.channel_id == "01234567-89ab-cdef-0123456789ab"
    assert channel.resource_id == "o3hgv1538sdjfh"
    assert channel.expires_at == datetime(2015, 3, 14, 9, 26, 53, tzinfo=UTC)


async def test_stop_request_has_the_documented_shape(
    google_connector: GoogleConnector, google_emulator: GoogleEmulator
) -> None:
    method, path, _, documented = samples.http_request("channels_stop_request.http")
    channel = await google_connector.watch(CAL, google_emulator.sink_url("rep"))
    await google_connector.unwatch(CAL, channel)
    (ours,) = google_emulator.requests_for("channels.stop")
    assert (method, path) == ("POST", ours.path)
    assert isinstance(documented, dict) and set(ours.body) == set(documented)
