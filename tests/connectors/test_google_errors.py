"""Google's documented error bodies, retries with backoff, and their translation."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import (
    AuthFailed,
    CalendarRef,
    Conflict,
    CursorExpired,
    NewEvent,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Unavailable,
)
from connectors.google.client import (
    CalendarWireClient,
    GoogleApiError,
    loads_lenient,
    parse_error_body,
)
from connectors.google.connector import GoogleConnector, translate_error
from tests.emulators.google import fixtures, samples
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.fixtures import REP

# pytest fixtures shared with the other Google test modules
google_connector = fixtures.google_connector
google_emulator = fixtures.google_emulator
google_env = fixtures.google_env

CAL = CalendarRef(rep_id="r1", email=REP)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)

# sample file -> (status, reason, what sync_page raises)
SAMPLES = {
    "401_authError.json": (401, "authError", AuthFailed),
    "403_forbiddenForNonOrganizer.json": (403, "forbiddenForNonOrganizer", ProviderError),
    "403_quotaExceeded_calendar_usage_limits.json": (403, "quotaExceeded", QuotaExceeded),
    "403_rateLimitExceeded.json": (403, "rateLimitExceeded", RateLimited),
    "403_userRateLimitExceeded.json": (403, "userRateLimitExceeded", RateLimited),
    "409_duplicate.json": (409, "duplicate", Conflict),
    "410_deleted.json": (410, "deleted", CursorExpired),
    "410_fullSyncRequired.json": (410, "fullSyncRequired", CursorExpired),
    "410_updatedMinTooLongAgo.json": (410, "updatedMinTooLongAgo", CursorExpired),
    "412_conditionNotMet.json": (412, "conditionNotMet", Conflict),
    "429_rateLimitExceeded.json": (429, "rateLimitExceeded", RateLimited),
    "500_backendError.json": (500, "backendError", Unavailable),
}
RETRIED = {
    "403_rateLimitExceeded.json",
    "403_userRateLimitExceeded.json",
    "429_rateLimitExceeded.json",
    "500_backendError.json",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_documented_body_parses(name: str) -> None:
    status, reason, _ = SAMPLES[name]
    text = samples.text(f"errors/{name}")
    assert parse_error_body(status, text.encode())[0] == reason
    assert loads_lenient(text)["error"]["code"] == status


@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_every_documented_body_maps_end_to_end(
    name: str,
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    status, reason, expected = SAMPLES[name]
    body = samples.text(f"errors/{name}")  # verbatim, trailing commas included
    # 401 is retried once by AuthorizedHttp after a token refresh; retryable ones 5 times
    google_emulator.fail_next(5, status, body=body, method="events.list")
    with pytest.raises(expected) as info:
        await google_connector.sync_page(CAL, None, since=SINCE)
    assert type(info.value) is expected
    assert isinstance(info.value.__cause__, GoogleApiError)
    assert info.value.__cause__.reason == reason
    calls = google_emulator.calls["events.list"]
    assert calls == (5 if name in RETRIED else 2 if status == 401 else 1)


async def test_retries_with_backoff_then_success(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    google_emulator.fail_next(1, 403, "rateLimitExceeded", method="events.list")
    google_emulator.fail_next(1, 429, method="events.list")
    google_emulator.fail_next(1, 500, method="events.list")
    google_emulator.fail_next(1, 503, method="events.list")
    page = await google_connector.sync_page(CAL, None, since=SINCE)
    assert page.last_page
    assert google_emulator.calls["events.list"] == 5


async def test_quota_exceeded_is_not_retried(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    google_emulator.fail_next(3, 403, "quotaExceeded")
    with pytest.raises(QuotaExceeded):
        await google_connector.free_busy(CAL, SINCE, SINCE + timedelta(days=1))
    assert google_emulator.calls["freebusy.query"] == 1


async def test_rate_limited_carries_retry_after(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    google_emulator.fail_next(5, 429, retry_after=0.001)
    with pytest.raises(RateLimited) as info:
        await google_connector.sync_page(CAL, None, since=SINCE)
    assert info.value.retry_after == pytest.approx(0.001)


async def test_insufficient_scopes_is_auth_failed(google_env, tmp_path: Path) -> None:
    emu = google_env.emulator
    # the token carries only calendar.events: freeBusy.query refuses it with 403
    client_scopes = ["https://www.googleapis.com/auth/calendar.events"]
    connector = GoogleConnector(str(google_env.key_file), emu.api_root, backoff_base=0.001)
    connector._client.scopes = tuple(client_scopes)
    connector._client._base_credentials = connector._client._base_credentials.with_scopes(
        client_scopes
    )
    try:
        with pytest.raises(AuthFailed, match="insufficientPermissions"):
            await connector.free_busy(CAL, SINCE, SINCE + timedelta(days=1))
    finally:
        await connector.aclose()


async def test_unreachable_api_is_unavailable(google_env) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    connector = GoogleConnector(
        str(google_env.key_file),
        f"http://127.0.0.1:{dead_port}/",
        max_attempts=2,
        backoff_base=0.001,
    )
    try:
        with pytest.raises(Unavailable):
            await connector.sync_page(CAL, None, since=SINCE)
    finally:
        await connector.aclose()


async def test_event_not_found_and_conflict_mapping(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    with pytest.raises(NotFound):
        await google_connector._call(
            CAL, "events.get", lambda svc: svc.events().get(calendarId=REP, eventId="nope0")
        )
    other = CalendarRef(rep_id="r2", email="someone-else@corp.test")
    google_emulator.add_user(other.email)
    with pytest.raises(NotFound):  # a calendar the delegated user cannot see
        await google_connector._call(
            other, "events.list", lambda svc: svc.events().list(calendarId=REP)
        )
    event = NewEvent(
        title="x", start=SINCE, end=SINCE + timedelta(minutes=15), attendees=("a@b.test",)
    )
    google_emulator.fail_next(1, 409, "duplicate", method="events.insert")
    with pytest.raises(Conflict):  # without request_id a 409 is not ours to resolve
        await google_connector.create_event(CAL, event)


def test_backoff_is_bounded_full_jitter(google_env) -> None:
    client = CalendarWireClient(str(google_env.key_file), backoff_base=0.5, backoff_cap=8.0)
    try:
        for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
            delays = [client.retry.delay(attempt, None) for _ in range(200)]
            assert all(0 <= d <= ceiling for d in delays)
            assert max(delays) > ceiling / 2  # jitter spans the range
        assert client.retry.delay(1, 3.0) == 3.0  # Retry-After wins over a smaller jitter
        assert client.retry.delay(1, 60.0) == 8.0  # ...but never beyond the cap
    finally:
        client.close()


def test_sleeps_between_attempts_use_the_backoff(google_env) -> None:
    slept: list[float] = []
    emu = google_env.emulator
    client = CalendarWireClient(
        str(google_env.key_file),
        emu.api_root,
        max_attempts=3,
        backoff_base=0.25,
        sleep=slept.append,
    )
    emu.fail_next(3, 500)
    try:
        with pytest.raises(GoogleApiError) as info:
            client._call_with_retries(
                REP, "events.list", lambda svc: svc.events().list(calendarId=REP)
            )
    finally:
        client.close()
    assert info.value.attempts == 3 and info.value.status == 500
    assert len(slept) == 2 and slept[0] <= 0.25 and slept[1] <= 0.5


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (GoogleApiError("x", kind="auth", status=401, reason="access_denied"), AuthFailed),
        (GoogleApiError("x", kind="auth", status=503), Unavailable),
        (GoogleApiError("x", kind="transport"), Unavailable),
        (GoogleApiError("x", kind="http", status=403, reason="dailyLimitExceeded"), QuotaExceeded),
        (GoogleApiError("x", kind="http", status=410, reason="deleted"), NotFound),
        (GoogleApiError("x", kind="http", status=400, reason="invalid"), ProviderError),
        (GoogleApiError("x", kind="http", status=502), Unavailable),
    ],
)
def test_translate_error_outside_sync(error: GoogleApiError, expected: type) -> None:
    assert type(translate_error(error)) is expected
