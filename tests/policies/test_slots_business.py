"""Slots a person would pick: holidays of both sides, lunch, slot_buffer, the account's own
week, and the meeting's own follow-up never busy for its own search."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.business import is_holiday, parse_account_hours
from policies.hours import PROSPECT_DEFAULT, REP_DEFAULT
from policies.slots import Slot, find_slots, without_own

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
DUBAI = ZoneInfo("Asia/Dubai")
MIN = timedelta(minutes=1)


def search(meeting_end: datetime, **overrides: object) -> list[Slot]:
    kwargs: dict[str, object] = {
        "meeting_end": meeting_end,
        "now": meeting_end,
        "horizon": timedelta(days=14),
        "duration": 30 * MIN,
        "busy": [],
        "rep_tz": "Europe/Paris",
        "rep_hours": REP_DEFAULT,
        "prospect_tz": "America/New_York",
        "prospect_hours": PROSPECT_DEFAULT,
        "rep_country": "FR",
        "prospect_country": "US",
        "min_gap": timedelta(0),
    }
    return find_slots(**(kwargs | overrides))  # type: ignore[arg-type]


def days(slots: list[Slot], zone: ZoneInfo) -> list[date]:
    return [s.start.astimezone(zone).date() for s in slots]


def test_thanksgiving_is_never_suggested_the_friday_after_is() -> None:
    wednesday = datetime(2026, 11, 25, 17, 0, tzinfo=NEW_YORK)
    slots = search(wednesday, count=2)
    assert days(slots, NEW_YORK) == [date(2026, 11, 27), date(2026, 11, 30)]


def test_christmas_and_new_year_are_never_suggested() -> None:
    slots = search(datetime(2026, 12, 23, 17, 0, tzinfo=NEW_YORK), count=4)
    assert date(2026, 12, 25) not in days(slots, NEW_YORK)
    slots = search(datetime(2026, 12, 30, 17, 0, tzinfo=NEW_YORK), count=3)
    assert date(2027, 1, 1) not in days(slots, NEW_YORK)


def test_the_reps_holiday_counts_too_eleventh_of_november_in_france() -> None:
    tuesday = datetime(2026, 11, 10, 18, 0, tzinfo=PARIS)
    slots = search(tuesday, count=1, prospect_tz="Europe/London", prospect_country="GB")
    assert days(slots, PARIS) == [date(2026, 11, 12)]


def test_fourth_of_july_observed_on_friday() -> None:
    thursday = datetime(2026, 7, 2, 17, 0, tzinfo=NEW_YORK)
    assert days(search(thursday, count=1), NEW_YORK) == [date(2026, 7, 6)]


def test_without_countries_no_holiday_is_kept() -> None:
    wednesday = datetime(2026, 11, 25, 17, 0, tzinfo=NEW_YORK)
    slots = search(wednesday, count=1, rep_country=None, prospect_country=None)
    assert days(slots, NEW_YORK) == [date(2026, 11, 26)]


def test_lunch_is_kept_free_on_each_sides_clock() -> None:
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=PARIS)
    # Paris rep and a Paris prospect: the first slot of the day is 09:00, the free hours
    # around noon are 11:30 then 13:00.
    slots = search(
        monday,
        count=20,
        horizon=timedelta(hours=10),
        prospect_tz="Europe/Paris",
        prospect_country="FR",
        lunch=(time(12), time(13)),
    )
    starts = [s.start.astimezone(PARIS).strftime("%H:%M") for s in slots]
    assert "11:30" in starts and "13:00" in starts
    assert not any("12:00" <= x < "13:00" for x in starts)
    assert all(
        not (
            s.start.astimezone(PARIS).hour == 11
            and s.end.astimezone(PARIS).hour == 12
            and s.end.astimezone(PARIS).minute > 0
        )
        for s in slots
    )
    # New York's lunch is 18:00–19:00 in Paris: outside the rep's day, nothing changes.
    ny = search(monday, count=1, lunch=(time(12), time(13)))
    assert ny[0].start.astimezone(NEW_YORK).strftime("%H:%M") == "09:00"


def test_slot_buffer_keeps_time_free_around_busy() -> None:
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=PARIS)
    busy = [
        (datetime(2026, 11, 30, 9, 0, tzinfo=PARIS), datetime(2026, 11, 30, 10, 0, tzinfo=PARIS))
    ]
    base = {"count": 1, "prospect_tz": "Europe/Paris", "prospect_country": "FR", "busy": busy}
    assert search(monday, **base)[0].start == datetime(2026, 11, 30, 10, 0, tzinfo=PARIS)
    first = search(monday, buffer=15 * MIN, **base)[0]
    assert first.start == datetime(2026, 11, 30, 10, 30, tzinfo=PARIS)  # 10:15 is off the grid


def test_a_dubai_account_works_sunday_to_thursday() -> None:
    hours = parse_account_hours({"days": ["sun", "mon", "tue", "wed", "thu"]})
    thursday = datetime(2026, 12, 10, 17, 0, tzinfo=DUBAI)
    slots = search(
        thursday, count=3, prospect_tz="Asia/Dubai", prospect_hours=hours, prospect_country="AE"
    )
    assert [d.weekday() for d in days(slots, DUBAI)] == [0, 1, 2]  # Mon–Wed: Fri, Sat off


def test_the_meetings_own_follow_up_is_not_busy_for_its_search() -> None:
    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, 30, hour, minute, tzinfo=PARIS)

    monday = at(8)
    base = {"count": 1, "prospect_tz": "Europe/Paris", "prospect_country": "FR"}
    own = (at(9), at(9, 30))
    after = (at(9, 30), at(10))
    merged = [(at(9), at(10))]  # what a free/busy answer says of the two
    assert search(monday, busy=merged, **base)[0].start == at(10)
    free = without_own(merged, [own], [after])
    assert search(monday, busy=free, **base)[0].start == at(9)
    # Another event inside the own follow-up's time stays busy.
    inside = (at(9), at(9, 20))
    free = without_own(merged, [own], [after, inside])
    assert search(monday, busy=free, **base)[0].start == at(10)


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1), timezones=st.just(UTC)
    ),
    lunch=st.booleans(),
    buffer=st.sampled_from([0, 10, 15, 30]),
)
def test_every_slot_keeps_every_rule(start: datetime, lunch: bool, buffer: int) -> None:
    busy = [
        (start + timedelta(hours=h), start + timedelta(hours=h, minutes=45)) for h in (20, 30, 44)
    ]
    slots = search(
        start,
        count=3,
        busy=busy,
        lunch=(time(12), time(13)) if lunch else None,
        buffer=buffer * MIN,
        min_gap=timedelta(hours=12),
    )
    for s in slots:
        for zone, country, end_hour in ((PARIS, "FR", 18), (NEW_YORK, "US", 17)):
            a, b = s.start.astimezone(zone), s.end.astimezone(zone)
            assert a.weekday() < 5 and not is_holiday(country, a.date())
            assert time(9) <= a.time() and (b.time() <= time(end_hour)) and a.date() == b.date()
            if lunch:
                assert b.time() <= time(12) or a.time() >= time(13)
        for lo, hi in busy:
            assert s.end + buffer * MIN <= lo or s.start >= hi + buffer * MIN
