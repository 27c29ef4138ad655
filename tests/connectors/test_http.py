"""The wire plumbing every connector shares: Retry-After, the retry policy, error tables,
timestamps (connectors/http.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import (
    AuthFailed,
    Conflict,
    CursorExpired,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Unavailable,
)
from connectors.http import (
    RETRY_AFTER_CAP,
    RETRYABLE_STATUSES,
    ErrorTable,
    RetryPolicy,
    format_rfc3339,
    parse_datetime,
    parse_retry_after,
    parse_rfc3339,
    rule,
)
from connectors.microsoft.connector import GRAPH_ERRORS

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("2.128", 2.128),  # Graph's fractional seconds
        ("Mon, 23 Nov 2026 10:01:30 GMT", 90.0),
        ("Mon, 23 Nov 2026 09:00:00 GMT", 0.0),  # a date gone by: now
        ("Monday, 23-Nov-26 10:00:10 GMT", 10.0),  # RFC 850, obsolete but allowed
        ("Mon Nov 23 10:00:20 2026", 20.0),  # asctime
        ("999999999", RETRY_AFTER_CAP),
        ("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_AFTER_CAP),
    ],
)
def test_retry_after_reads_both_forms_of_rfc_9110(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "header", [None, "", "soon", "-5", "inf", "nan", "1e3", "12 seconds", "Mon, 99 Foo"]
)
def test_retry_after_that_says_nothing_usable_is_none(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


@given(st.integers(min_value=0, max_value=10**12))
def test_delta_seconds_are_taken_as_given_up_to_the_cap(seconds: int) -> None:
    assert parse_retry_after(str(seconds), now=NOW) == min(float(seconds), RETRY_AFTER_CAP)


@given(st.integers(min_value=-(10**8), max_value=10**8))
def test_an_http_date_counts_from_now_never_below_zero_nor_above_the_cap(offset: int) -> None:
    header = format_datetime(NOW + timedelta(seconds=offset), usegmt=True)
    assert parse_retry_after(header, now=NOW) == min(max(0.0, float(offset)), RETRY_AFTER_CAP)


def test_the_retryable_statuses() -> None:
    assert RETRYABLE_STATUSES == {408, 425, 429, 500, 502, 503, 504}


# --- the retry policy --------------------------------------------------------------------------


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None, retryable: bool = True) -> None:
        super().__init__("flaky")
        self.retry_after, self.retryable = retry_after, retryable


def _run(policy: RetryPolicy, failures: list[Flaky]) -> tuple[int, list[float], str | Flaky]:
    """Call something that fails with ``failures`` in turn, then answers "ok"."""
    slept: list[float] = []
    calls = 0

    def call() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "ok"

    outcome: str | Flaky
    try:
        for attempt in policy.retrying(
            retryable=lambda e: isinstance(e, Flaky) and e.retryable,
            retry_after=lambda e: e.retry_after if isinstance(e, Flaky) else None,
            sleep=slept.append,
        ):
            with attempt:
                outcome = call()
    except Flaky as err:
        outcome = err
    return calls, slept, outcome


def test_retries_until_success_within_the_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base=0.25, backoff_cap=8.0)
    calls, slept, outcome = _run(policy, [Flaky(), Flaky()])
    assert (calls, outcome) == (3, "ok")
    assert len(slept) == 2 and slept[0] <= 0.25 and slept[1] <= 0.5


def test_gives_up_after_the_attempts_with_the_last_failure_itself() -> None:
    last = Flaky()
    calls, slept, outcome = _run(RetryPolicy(max_attempts=2), [Flaky(), last, Flaky()])
    assert (calls, len(slept)) == (2, 1)
    assert outcome is last


def test_a_failure_that_is_not_retryable_is_raised_at_once() -> None:
    refused = Flaky(retryable=False)
    calls, slept, outcome = _run(RetryPolicy(), [refused])
    assert (calls, slept, outcome) == (1, [], refused)


def test_retry_after_is_waited_for_when_short_and_handed_over_when_long() -> None:
    policy = RetryPolicy(backoff_base=0.001, backoff_cap=0.002, max_retry_after=5.0)
    calls, slept, outcome = _run(policy, [Flaky(retry_after=3.0)])
    assert (calls, slept, outcome) == (2, [3.0], "ok")
    long = Flaky(retry_after=120.0)
    calls, slept, outcome = _run(policy, [long])
    assert (calls, slept, outcome) == (1, [], long)  # the caller reschedules instead


@given(
    attempt=st.integers(min_value=1, max_value=200),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e6),
)
def test_delay_is_full_jitter_bounded_and_honours_retry_after(
    attempt: int, retry_after: float | None
) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=8.0, max_retry_after=60.0)
    delay = policy.delay(attempt, retry_after)
    ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
    floor = 0.0 if retry_after is None else min(retry_after, 60.0)
    assert floor <= delay <= max(ceiling, floor)


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff_cap"):
        RetryPolicy(backoff_cap=-1)


async def test_the_async_form_retries_the_same_way() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    failures = [Flaky(retry_after=0.5)]
    async for attempt in RetryPolicy(backoff_base=0.001).async_retrying(
        retryable=lambda e: isinstance(e, Flaky),
        retry_after=lambda e: e.retry_after if isinstance(e, Flaky) else None,
        sleep=sleep,
    ):
        with attempt:
            if failures:
                raise failures.pop(0)
    assert slept == [0.5]


# --- error tables ------------------------------------------------------------------------------


def test_first_matching_rule_wins_and_codes_ignore_case() -> None:
    table = ErrorTable(
        rule(QuotaExceeded, {403}, {"quotaExceeded"}),
        rule(AuthFailed, {403}),
        rule(CursorExpired, codes={"SyncStateNotFound"}),
    )
    assert type(table.translate("x", status=403, code="QUOTAEXCEEDED")) is QuotaExceeded
    assert type(table.translate("x", status=403, code="other")) is AuthFailed
    assert type(table.translate("x", status=400, code="syncStateNotFound")) is CursorExpired
    assert type(table.extended(rule(NotFound, {403})).translate("x", status=403)) is NotFound


@pytest.mark.parametrize(
    ("status", "expected"),
    [(None, Unavailable), (408, Unavailable), (425, Unavailable), (503, Unavailable)]
    + [(501, Unavailable), (400, ProviderError), (418, ProviderError)],
)
def test_without_a_rule_transient_means_unavailable(status: int | None, expected: type) -> None:
    assert type(ErrorTable().translate("x", status=status)) is expected


def test_rate_limited_carries_retry_after_and_the_message() -> None:
    err = ErrorTable(rule(RateLimited, {429})).translate("slow down", status=429, retry_after=2.5)
    assert isinstance(err, RateLimited) and err.retry_after == 2.5 and str(err) == "slow down"


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (410, "whatever", CursorExpired),
        (400, "SyncStateNotFound", CursorExpired),
        (400, "ErrorAccessDenied", AuthFailed),
        (403, "Forbidden", AuthFailed),
        (401, "InvalidAuthenticationToken", AuthFailed),
        (429, "TooManyRequests", RateLimited),
        (404, "ErrorItemNotFound", NotFound),
        (409, "ErrorConflict", Conflict),
        (504, "GatewayTimeout", Unavailable),
        (400, "ValidationError", ProviderError),
    ],
)
def test_graph_table(status: int, code: str, expected: type) -> None:
    assert type(GRAPH_ERRORS.translate("x", status=status, code=code)) is expected


# --- timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05T09:00:00Z", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T09:00:00z", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T10:30:00+01:30", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2016-12-09T20:30:00.1234567Z", datetime(2016, 12, 9, 20, 30, 0, 123456, tzinfo=UTC)),
    ],
)
def test_rfc3339_parses_to_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected and parsed.tzinfo is UTC


def test_a_timestamp_without_offset_needs_a_zone() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_rfc3339("2026-01-05T09:00:00")
    assert parse_rfc3339("2026-01-05T09:00:00", naive_zone=UTC) == datetime(
        2026, 1, 5, 9, tzinfo=UTC
    )
    assert parse_datetime("2016-12-09T20:30:00.0000000") == datetime(2016, 12, 9, 20, 30)
    with pytest.raises(ValueError):
        parse_datetime("tomorrow")


@given(st.datetimes(timezones=st.just(timezone(timedelta(hours=-7)))))
def test_format_then_parse_is_the_same_instant(value: datetime) -> None:
    text = format_rfc3339(value)
    assert text.endswith("Z") and parse_rfc3339(text) == value
    assert "." not in format_rfc3339(value, timespec="seconds")


def test_format_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_rfc3339(datetime(2026, 1, 5))
