"""Business time: countries, holidays, the business clock against a minute-walking reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.business import (
    WorkWeek,
    add_business,
    check_country,
    country_of_zone,
    is_holiday,
    next_working,
)
from policies.hours import REP_DEFAULT, WorkingHours

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def paris_week() -> WorkWeek:
    return WorkWeek.of("Europe/Paris", REP_DEFAULT)


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


# --- the contract's examples ----------------------------------------------------------------


def test_friday_five_pm_plus_one_day_closes_monday_five_pm() -> None:
    friday = local(PARIS, 2026, 12, 4, 17, 0)
    assert add_business(friday, timedelta(days=1), paris_week()) == local(PARIS, 2026, 12, 7, 17)


def test_friday_half_past_five_plus_two_hours_closes_monday_half_past_ten() -> None:
    friday = local(PARIS, 2026, 12, 4, 17, 30)
    closes = add_business(friday, timedelta(hours=2), paris_week())
    assert closes == local(PARIS, 2026, 12, 7, 10, 30)


def test_a_start_on_saturday_counts_from_monday_morning() -> None:
    saturday = local(PARIS, 2026, 12, 5, 11, 0)
    week = paris_week()
    assert next_working(saturday, week) == local(PARIS, 2026, 12, 7, 9)
    assert add_business(saturday, timedelta(hours=2), week) == local(PARIS, 2026, 12, 7, 11)


def test_working_time_is_its_own_next_working_instant() -> None:
    tuesday = local(PARIS, 2026, 12, 8, 10, 17)
    assert next_working(tuesday, paris_week()) == tuesday


# --- countries and holidays ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "country"),
    [
        ("America/New_York", "US"),
        ("America/Los_Angeles", "US"),
        ("Europe/Paris", "FR"),
        ("Asia/Dubai", "AE"),
        ("Europe/Berlin", "DE"),
        ("UTC", None),
    ],
)
def test_the_country_comes_from_tzdatas_zone_table(zone: str, country: str | None) -> None:
    assert country_of_zone(zone) == country


def test_countries_are_checked_against_the_holidays_package() -> None:
    assert check_country("fr") == "FR"
    with pytest.raises(ValueError, match="country: 'XX'"):
        check_country("XX")
    with pytest.raises(ValueError, match="alpha-2"):
        check_country("France")


@pytest.mark.parametrize(
    ("country", "day", "holiday"),
    [
        ("US", date(2026, 11, 26), True),  # Thanksgiving
        ("US", date(2026, 11, 27), False),  # the Friday after: not a federal holiday
        ("US", date(2026, 12, 25), True),
        ("US", date(2027, 1, 1), True),
        ("US", date(2026, 7, 3), True),  # 4 July 2026 is a Saturday: observed on Friday
        ("US", date(2027, 7, 5), True),  # 4 July 2027 is a Sunday: observed on Monday
        ("FR", date(2026, 11, 11), True),  # Armistice
        ("FR", date(2026, 11, 26), False),
        ("FR", date(2026, 7, 14), True),
        ("FR", date(2026, 7, 3), False),
    ],
)
def test_public_holidays(country: str, day: date, holiday: bool) -> None:
    assert is_holiday(country, day) is holiday


def test_a_new_york_window_skips_thanksgiving() -> None:
    week = WorkWeek.of("America/New_York", REP_DEFAULT)
    wednesday = local(NEW_YORK, 2026, 11, 25, 17, 0)
    assert add_business(wednesday, timedelta(days=1), week) == local(NEW_YORK, 2026, 11, 27, 17)


def test_a_paris_window_skips_the_eleventh_of_november() -> None:
    tuesday = local(PARIS, 2026, 11, 10, 16, 0)
    assert add_business(tuesday, timedelta(hours=3), paris_week()) == local(PARIS, 2026, 11, 12, 10)


def test_christmas_and_new_year_are_skipped() -> None:
    week = WorkWeek.of("America/New_York", REP_DEFAULT)
    thursday = local(NEW_YORK, 2026, 12, 24, 12, 0)
    assert add_business(thursday, timedelta(days=1), week) == local(NEW_YORK, 2026, 12, 28, 12)
    assert add_business(local(NEW_YORK, 2026, 12, 31, 12), timedelta(days=1), week) == local(
        NEW_YORK, 2027, 1, 4, 12
    )


def test_a_dubai_week_works_sunday_to_thursday() -> None:
    hours = WorkingHours.parse({"days": ["sun", "mon", "tue", "wed", "thu"]})
    week = WorkWeek.of("Asia/Dubai", hours)
    dubai = ZoneInfo("Asia/Dubai")
    thursday = local(dubai, 2026, 12, 10, 17, 0)
    assert add_business(thursday, timedelta(days=1), week) == local(dubai, 2026, 12, 13, 17)


# --- the reference: walk minute by minute ----------------------------------------------------


def working_minute(at: datetime, week: WorkWeek) -> bool:
    """Whether the minute starting at ``at`` is working time, read off the local clock."""
    wall = at.astimezone(week.zone)
    return week.is_working_day(wall.date()) and week.hours.start <= wall.time() < week.hours.end


def reference(start: datetime, window: timedelta, week: WorkWeek) -> datetime:
    minute = timedelta(minutes=1)
    at = start.astimezone(UTC)
    while not working_minute(at, week):  # 1. to the next working instant
        at += minute
    days = window.days
    if days:  # 2. the same local time on the n-th next working day
        wall = at.astimezone(week.zone)
        day = wall.date()
        while days:
            day += timedelta(days=1)
            days -= week.is_working_day(day)
        at = datetime.combine(day, wall.time().replace(tzinfo=None), tzinfo=week.zone)
        at = at.astimezone(UTC)
    rest = int((window - timedelta(days=window.days)).total_seconds() // 60)
    while rest:  # 3. count working minutes
        if working_minute(at, week):
            rest -= 1
        at += minute
    return at


ZONES = ("Europe/Paris", "America/New_York", "America/Los_Angeles", "Europe/London")
# Around both DST changes: the US changes on the second Sunday of March and the first of
# November, Europe on the last Sundays of March and October; and the year-end holidays.
SEASONS = (
    datetime(2026, 3, 5, tzinfo=UTC),
    datetime(2026, 3, 24, tzinfo=UTC),
    datetime(2026, 10, 21, tzinfo=UTC),
    datetime(2026, 10, 30, tzinfo=UTC),
    datetime(2026, 11, 6, tzinfo=UTC),
    datetime(2026, 11, 20, tzinfo=UTC),
    datetime(2026, 12, 20, tzinfo=UTC),
    datetime(2026, 6, 29, tzinfo=UTC),
)


@st.composite
def weeks(draw: st.DrawFn) -> WorkWeek:
    zone = draw(st.sampled_from(ZONES))
    days = draw(st.sets(st.integers(0, 6), min_size=1, max_size=7))
    start = draw(st.integers(6 * 4, 11 * 4)) * 15  # minutes after midnight
    end = draw(st.integers(start // 15 + 1, 21 * 4)) * 15
    hours = WorkingHours(
        days=frozenset(days), start=time(start // 60, start % 60), end=time(end // 60, end % 60)
    )
    country = draw(st.sampled_from((None, "US", "FR", "GB")))
    return WorkWeek(zone=ZoneInfo(zone), hours=hours, country=country)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    week=weeks(),
    season=st.sampled_from(SEASONS),
    offset=st.integers(0, 12 * 24 * 60),
    days=st.integers(0, 4),
    minutes=st.integers(0, 20 * 60),
)
def test_business_clock_matches_the_minute_walk(
    week: WorkWeek, season: datetime, offset: int, days: int, minutes: int
) -> None:
    window = timedelta(days=days, minutes=minutes)
    if not window:
        window = timedelta(minutes=1)
    start = season + timedelta(minutes=offset)
    assert add_business(start, window, week) == reference(start, window, week)


@settings(max_examples=100, deadline=None)
@given(week=weeks(), season=st.sampled_from(SEASONS), offset=st.integers(0, 12 * 24 * 60))
def test_next_working_is_the_first_working_minute(
    week: WorkWeek, season: datetime, offset: int
) -> None:
    start = season + timedelta(minutes=offset)
    found = next_working(start, week)
    assert found >= start
    assert working_minute(found, week)
    at = start
    while at < found:
        assert not working_minute(at, week)
        at += timedelta(minutes=1)


@settings(max_examples=100, deadline=None)
@given(
    week=weeks(),
    season=st.sampled_from(SEASONS),
    offset=st.integers(0, 12 * 24 * 60),
    a=st.integers(1, 600),
    b=st.integers(1, 600),
)
def test_working_hours_add_up(
    week: WorkWeek, season: datetime, offset: int, a: int, b: int
) -> None:
    """Time parts compose: a then b working minutes is a + b working minutes."""
    start = season + timedelta(minutes=offset)
    first = add_business(start, timedelta(minutes=a), week)
    both = add_business(start, timedelta(minutes=a + b), week)
    assert add_business(first, timedelta(minutes=b), week) == both


def test_provider_hours_are_read_on_the_reps_clock() -> None:
    from policies.business import hours_in_zone

    monday = date(2026, 11, 23)
    same = hours_in_zone((0, 1), time(8), time(17), "Europe/Paris", "Europe/Paris", monday)
    assert same is not None and same.to_dict()["start"] == "08:00"
    london = hours_in_zone(
        (0, 1, 2, 3, 4), time(9), time(17), "Europe/London", "Europe/Paris", monday
    )
    assert london is not None and (london.start, london.end) == (time(10), time(18))
    assert (
        hours_in_zone((0,), time(8), time(17), "America/Los_Angeles", "Europe/Paris", monday)
        is None
    )


def test_a_slot_outside_either_sides_working_time_is_named() -> None:
    from policies.business import outside_working_time

    sides = {
        "the rep's": paris_week(),
        "the prospect's": WorkWeek.of("America/New_York", WorkingHours.parse({"end": "17:00"})),
    }
    ok = local(NEW_YORK, 2026, 11, 24, 9, 0)
    assert outside_working_time(ok, ok + timedelta(minutes=30), sides) is None
    thanksgiving = local(NEW_YORK, 2026, 11, 26, 9, 0)
    why = outside_working_time(thanksgiving, thanksgiving + timedelta(minutes=30), sides)
    assert (
        why
        == "Thursday 26 November is a public holiday on the prospect's calendar (America/New_York)"
    )
    late = local(PARIS, 2026, 11, 24, 17, 45)
    why = outside_working_time(late, late + timedelta(minutes=30), sides)
    assert why is not None and why.startswith("17:45–18:15 Europe/Paris is outside the rep's")
