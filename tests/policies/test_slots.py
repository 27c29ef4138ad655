"""Suggested follow-up slots, checked the way a rep and a prospect would read them.

The main pair is a Paris rep (Europe/Paris, 09:00–18:00) and a New York prospect
(America/New_York, 09:00–17:00): 15:00–18:00 in Paris most of the year, 14:00–18:00 in the
weeks when the US has changed clocks and Europe has not.
"""

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from policies.hours import PROSPECT_DEFAULT, REP_DEFAULT, WorkingHours
from policies.slots import Slot, find_slots

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
SAN_FRANCISCO = ZoneInfo("America/Los_Angeles")
MIN = timedelta(minutes=1)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def slots_for(meeting_end: datetime, **overrides) -> list[Slot]:
    """Paris rep ↔ New York prospect, nothing busy, the policy defaults."""
    kwargs = {
        "meeting_end": meeting_end,
        "now": meeting_end,
        "horizon": timedelta(days=14),
        "duration": 15 * MIN,
        "busy": [],
        "rep_tz": "Europe/Paris",
        "rep_hours": REP_DEFAULT,
        "prospect_tz": "America/New_York",
        "prospect_hours": PROSPECT_DEFAULT,
    }
    return find_slots(**(kwargs | overrides))


def whole_day(day: date, **overrides) -> list[Slot]:
    """Every free 30-minute slot of one Paris day (non-overlapping, on the :00/:30 grid)."""
    start = datetime.combine(day, time(0), tzinfo=PARIS)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=PARIS)
    kwargs = {
        "horizon": end - start - MIN,
        "min_gap": timedelta(0),
        "duration": 30 * MIN,
        "count": 100,
    }
    return slots_for(start, **(kwargs | overrides))


def local(slots: list[Slot], zone: ZoneInfo) -> list[str]:
    return [slot.start.astimezone(zone).strftime("%a %H:%M") for slot in slots]


# --- overlap of the two working days, and DST ------------------------------------------


def test_overlap_is_three_hours_most_of_the_year():
    day = date(2026, 11, 24)  # a Tuesday; both sides on winter time
    assert datetime.combine(day, time(12), NEW_YORK).tzname() == "EST"
    slots = whole_day(day)
    assert local(slots, PARIS) == [
        f"Tue {h}" for h in "15:00 15:30 16:00 16:30 17:00 17:30".split()
    ]
    assert local(slots, NEW_YORK) == [
        f"Tue {h}" for h in "09:00 09:30 10:00 10:30 11:00 11:30".split()
    ]
    assert all(slot.end - slot.start == 30 * MIN for slot in slots)


def test_overlap_is_three_hours_in_summer_too():
    slots = whole_day(date(2026, 6, 16))
    assert local(slots, PARIS)[0] == "Tue 15:00" and local(slots, PARIS)[-1] == "Tue 17:30"
    assert local(slots, NEW_YORK)[0] == "Tue 09:00" and local(slots, NEW_YORK)[-1] == "Tue 11:30"


@pytest.mark.parametrize(
    "day",
    [date(2026, 3, 17), date(2026, 10, 27)],  # a Tuesday in each mismatched stretch
    ids=["march-us-changed-eu-not-yet", "october-eu-back-us-not-yet"],
)
def test_overlap_is_four_hours_while_only_the_us_is_on_summer_time(day):
    noon = datetime.combine(day, time(12))
    assert noon.replace(tzinfo=NEW_YORK).tzname() == "EDT"
    assert noon.replace(tzinfo=PARIS).tzname() == "CET"
    slots = whole_day(day)
    assert len(slots) == 8
    assert local(slots, PARIS)[0] == "Tue 14:00" and local(slots, PARIS)[-1] == "Tue 17:30"
    assert local(slots, NEW_YORK)[0] == "Tue 09:00" and local(slots, NEW_YORK)[-1] == "Tue 12:30"


def test_dst_change_dates_2026_are_the_ones_the_tests_assume():
    def offset(zone, *args):
        return datetime(*args, 12, tzinfo=zone).utcoffset()

    assert offset(NEW_YORK, 2026, 3, 7) != offset(NEW_YORK, 2026, 3, 9)  # US: Sun March 8
    assert offset(PARIS, 2026, 3, 28) != offset(PARIS, 2026, 3, 30)  # EU: Sun March 29
    assert offset(PARIS, 2026, 10, 24) != offset(PARIS, 2026, 10, 26)  # EU: Sun October 25
    assert offset(NEW_YORK, 2026, 10, 31) != offset(NEW_YORK, 2026, 11, 2)  # US: Sun November 1


def test_slots_across_the_us_change_keep_nine_am_in_new_york():
    slots = slots_for(paris(2026, 3, 5, 14), min_gap=timedelta(0))  # Thursday, US on EST
    assert local(slots, NEW_YORK) == ["Thu 09:00", "Fri 09:00", "Mon 09:00"]
    assert local(slots, PARIS) == ["Thu 15:00", "Fri 15:00", "Mon 14:00"]
    assert [s.start.astimezone(NEW_YORK).tzname() for s in slots] == ["EST", "EST", "EDT"]


def test_slots_across_the_eu_change_move_back_to_three_pm_in_paris():
    slots = slots_for(paris(2026, 3, 26, 16))  # Thursday; EU changes on Sunday March 29
    assert local(slots, PARIS) == ["Fri 14:00", "Mon 15:00", "Tue 15:00"]
    assert local(slots, NEW_YORK) == ["Fri 09:00", "Mon 09:00", "Tue 09:00"]


def test_slots_across_both_autumn_changes():
    slots = slots_for(paris(2026, 10, 22, 16), count=6)  # Thursday
    assert local(slots, PARIS) == [
        "Fri 15:00",  # Oct 23: both on summer time
        "Mon 14:00",  # Oct 26 to 30: Paris back on CET, New York still on EDT
        "Tue 14:00",
        "Wed 14:00",
        "Thu 14:00",
        "Fri 14:00",
    ]
    later = slots_for(paris(2026, 10, 30, 16))  # Friday; US changes on Sunday November 1
    assert local(later, PARIS) == ["Mon 15:00", "Tue 15:00", "Wed 15:00"]
    assert local(later, NEW_YORK) == ["Mon 09:00", "Tue 09:00", "Wed 09:00"]


def test_working_hours_through_the_night_of_a_spring_forward():
    night = WorkingHours(days=frozenset(range(7)), start=time(1), end=time(4))
    slots = whole_day(
        date(2026, 3, 29),
        rep_hours=night,
        prospect_tz="Europe/Paris",
        prospect_hours=night,
    )
    # 02:00–03:00 does not exist that night: no slot there, and each still lasts 30 minutes.
    assert local(slots, PARIS) == ["Sun 01:00", "Sun 01:30", "Sun 03:00", "Sun 03:30"]
    assert all(slot.end - slot.start == 30 * MIN for slot in slots)


def test_working_hours_through_the_night_of_a_fall_back():
    night = WorkingHours(days=frozenset(range(7)), start=time(1), end=time(4))
    slots = whole_day(
        date(2026, 10, 25),
        horizon=timedelta(hours=24),
        rep_hours=night,
        prospect_tz="Europe/Paris",
        prospect_hours=night,
    )
    # 02:00–03:00 happens twice: four real hours, eight distinct instants.
    readings = [s.start.astimezone(PARIS).strftime("%H:%M %Z") for s in slots]
    assert readings == [
        "01:00 CEST",
        "01:30 CEST",
        "02:00 CEST",
        "02:30 CEST",
        "02:00 CET",
        "02:30 CET",
        "03:00 CET",
        "03:30 CET",
    ]


def test_a_working_day_starting_in_the_skipped_hour_starts_after_it():
    hours = WorkingHours(days=frozenset(range(7)), start=time(2, 30), end=time(6))
    slots = whole_day(
        date(2026, 3, 29), rep_hours=hours, prospect_tz="Europe/Paris", prospect_hours=hours
    )
    first = slots[0].start.astimezone(PARIS)
    assert first.tzname() == "CEST" and first.time() >= time(3)


# --- no slot at all ----------------------------------------------------------------------


def test_full_calendar_gives_no_slot():
    meeting_end = paris(2026, 11, 23, 16)
    busy = [(meeting_end - timedelta(days=1), meeting_end + timedelta(days=30))]
    assert slots_for(meeting_end, busy=busy) == []


def test_every_working_hour_busy_gives_no_slot():
    meeting_end = paris(2026, 11, 23, 16)
    busy = [(paris(2026, 11, d, 15), paris(2026, 11, d, 18)) for d in range(24, 31)] + [
        (paris(2026, 12, d, 15), paris(2026, 12, d, 18)) for d in range(1, 9)
    ]
    assert slots_for(meeting_end, busy=busy) == []


def test_tokyo_and_san_francisco_share_no_working_hour_in_summer():
    slots = slots_for(
        datetime(2026, 6, 15, 16, tzinfo=TOKYO),
        rep_tz="Asia/Tokyo",
        prospect_tz="America/Los_Angeles",
        prospect_hours=PROSPECT_DEFAULT,
    )
    assert slots == []


def test_tokyo_and_san_francisco_share_one_hour_in_winter_across_the_date_line():
    slots = slots_for(
        datetime(2026, 11, 23, 16, tzinfo=TOKYO),  # Monday in Tokyo
        rep_tz="Asia/Tokyo",
        prospect_tz="America/Los_Angeles",
    )
    assert local(slots, TOKYO) == ["Tue 09:00", "Wed 09:00", "Thu 09:00"]
    assert local(slots, SAN_FRANCISCO) == ["Mon 16:00", "Tue 16:00", "Wed 16:00"]
    friday = slots_for(
        datetime(2026, 11, 26, 16, tzinfo=TOKYO),  # Thursday in Tokyo
        rep_tz="Asia/Tokyo",
        prospect_tz="America/Los_Angeles",
    )
    # Saturday 09:00 in Tokyo is Friday 16:00 in San Francisco: the rep's weekend.
    assert local(friday, TOKYO) == ["Fri 09:00", "Tue 09:00", "Wed 09:00"]
    assert local(friday, SAN_FRANCISCO) == ["Thu 16:00", "Mon 16:00", "Tue 16:00"]


def test_horizon_already_over_gives_no_slot():
    meeting_end = paris(2026, 11, 2, 16)
    assert slots_for(meeting_end, now=paris(2026, 11, 23, 9)) == []


def test_count_zero_gives_no_slot():
    assert slots_for(paris(2026, 11, 23, 16), count=0) == []


# --- the rules, one by one ---------------------------------------------------------------


def test_back_to_back_with_busy_intervals_is_allowed():
    day = date(2026, 11, 24)
    busy = [
        (paris(2026, 11, 24, 14), paris(2026, 11, 24, 15, 30)),
        (paris(2026, 11, 24, 15, 45), paris(2026, 11, 24, 17, 45)),
    ]
    slots = whole_day(day, busy=busy, duration=15 * MIN)
    # 15:30–15:45 fits exactly between the two; 17:45 is off the half-hour grid.
    assert local(slots, PARIS) == ["Tue 15:30"]
    assert (slots[0].start, slots[0].end) == (busy[0][1], busy[1][0])


def test_a_slot_may_end_with_the_working_day():
    busy = [(paris(2026, 11, 24, 15), paris(2026, 11, 24, 17, 30))]
    slots = whole_day(date(2026, 11, 24), busy=busy)
    assert [(s.start.astimezone(PARIS).time(), s.end.astimezone(PARIS).time()) for s in slots] == [
        (time(17, 30), time(18))
    ]


def test_no_slot_overlaps_a_busy_interval():
    busy = [
        (paris(2026, 11, 24, 15, 10), paris(2026, 11, 24, 16, 5)),  # off-grid edges
        (
            datetime(2026, 11, 24, 11, tzinfo=NEW_YORK),
            datetime(2026, 11, 24, 11, 20, tzinfo=NEW_YORK),
        ),
    ]
    slots = whole_day(date(2026, 11, 24), busy=busy)
    assert local(slots, PARIS) == ["Tue 16:30", "Tue 17:30"]
    for slot in slots:
        assert all(slot.end <= b_start or slot.start >= b_end for b_start, b_end in busy)


def test_a_slot_may_end_exactly_when_a_busy_interval_starts():
    busy = [(paris(2026, 11, 24, 15, 30), paris(2026, 11, 24, 18))]
    slots = whole_day(date(2026, 11, 24), busy=busy)
    assert [(s.start.astimezone(PARIS).time(), s.end.astimezone(PARIS).time()) for s in slots] == [
        (time(15), time(15, 30))
    ]


def test_busy_intervals_in_any_order_and_zone():
    busy = [
        (paris(2026, 11, 25, 15), paris(2026, 11, 25, 16)),
        (datetime(2026, 11, 24, 14, tzinfo=UTC), datetime(2026, 11, 24, 15, tzinfo=UTC)),
        (paris(2026, 11, 24, 15, 30), paris(2026, 11, 24, 15, 45)),
    ]
    slots = slots_for(paris(2026, 11, 23, 16), busy=busy)
    assert local(slots, PARIS) == ["Tue 16:00", "Wed 16:00", "Thu 15:00"]


def test_horizon_bounds_the_start():
    meeting_end = paris(2026, 11, 23, 16)  # Monday
    until_wednesday_3pm = paris(2026, 11, 25, 15) - meeting_end
    slots = slots_for(meeting_end, horizon=until_wednesday_3pm, count=5)
    assert local(slots, PARIS) == ["Tue 15:00", "Tue 15:30", "Tue 16:00", "Tue 16:30", "Wed 15:00"]
    slots = slots_for(meeting_end, horizon=until_wednesday_3pm - MIN, count=5)
    assert "Wed 15:00" not in local(slots, PARIS)
    assert all(s.start <= meeting_end + until_wednesday_3pm - MIN for s in slots)


def test_not_in_the_first_hours_after_the_meeting():
    meeting_end = paris(2026, 11, 23, 14)  # Monday, before the shared hours begin
    assert local(slots_for(meeting_end), PARIS)[0] == "Tue 15:00"  # default min_gap: 12 h
    assert local(slots_for(meeting_end, min_gap=timedelta(0)), PARIS)[0] == "Mon 15:00"
    after_half_past = slots_for(paris(2026, 11, 23, 14, 40), min_gap=timedelta(hours=1))
    assert local(after_half_past, PARIS)[0] == "Mon 16:00"  # 15:40 rounded up to the grid


def test_never_before_now_and_rounded_up_to_the_grid():
    meeting_end = paris(2026, 11, 20, 10)  # last Friday
    now = paris(2026, 11, 24, 16, 7)  # Tuesday, mid-afternoon
    slots = slots_for(meeting_end, now=now)
    assert local(slots, PARIS) == ["Tue 16:30", "Wed 15:00", "Thu 15:00"]
    assert all(slot.start >= now for slot in slots)


def test_weekends_are_skipped():
    slots = slots_for(paris(2026, 11, 19, 16), count=5)  # Thursday
    assert [s.start.astimezone(PARIS).strftime("%a %d") for s in slots] == [
        "Fri 20",
        "Mon 23",
        "Tue 24",
        "Wed 25",
        "Thu 26",
    ]


def test_slots_last_the_duration_and_fit_in_both_working_days():
    slots = whole_day(date(2026, 11, 24), duration=45 * MIN)
    assert local(slots, PARIS) == ["Tue 15:00", "Tue 16:00", "Tue 17:00"]
    for slot in slots:
        assert slot.end - slot.start == 45 * MIN
        assert slot.end.astimezone(PARIS).time() <= time(18)
        assert slot.end.astimezone(NEW_YORK).time() <= time(17)
    assert whole_day(date(2026, 11, 24), duration=timedelta(hours=4)) == []


def test_distinct_days_first_then_more_on_the_same_days():
    meeting_end = paris(2026, 11, 23, 16)
    slots = slots_for(meeting_end, duration=timedelta(hours=1))
    assert local(slots, PARIS) == ["Tue 15:00", "Wed 15:00", "Thu 15:00"]
    one_day = slots_for(meeting_end, duration=timedelta(hours=1), horizon=timedelta(days=1))
    assert local(one_day, PARIS) == ["Tue 15:00", "Tue 16:00"]  # ends at 17:00, not 17:30-18:30
    two_days = slots_for(meeting_end, horizon=timedelta(days=2), count=3)
    assert local(two_days, PARIS) == ["Tue 15:00", "Tue 15:30", "Wed 15:00"]


def test_grid_follows_the_prospects_clock_in_a_quarter_hour_zone():
    slots = slots_for(
        paris(2026, 11, 23, 16),
        rep_tz="Asia/Kolkata",
        prospect_tz="Asia/Kathmandu",  # UTC+05:45
    )
    kathmandu = ZoneInfo("Asia/Kathmandu")
    assert local(slots, kathmandu) == ["Tue 09:30", "Wed 09:30", "Thu 09:30"]  # 09:15 Kolkata
    assert [s.start.astimezone(kathmandu).minute for s in slots] == [30, 30, 30]


def test_slots_are_utc():
    slot = slots_for(paris(2026, 11, 23, 16))[0]
    assert slot.start.tzinfo is UTC and slot.end.tzinfo is UTC
    assert slot.to_dict() == {
        "start": "2026-11-24T14:00:00+00:00",
        "end": "2026-11-24T14:15:00+00:00",
    }


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"meeting_end": datetime(2026, 11, 23, 16)},
            "meeting_end must be a timezone-aware datetime",
        ),
        ({"now": datetime(2026, 11, 23, 16)}, "now must be a timezone-aware datetime"),
        ({"busy": [(datetime(2026, 11, 24), datetime(2026, 11, 25))]}, r"busy\[0\] start"),
        ({"busy": [paris(2026, 11, 24, 9)]}, r"busy\[0\] must be a \(start, end\) pair"),
        ({"duration": timedelta(0)}, "duration must be positive"),
        ({"step": timedelta(0)}, "step must be positive"),
        ({"horizon": -MIN}, "horizon must not be negative"),
        ({"count": -1}, "count must be a non-negative integer"),
        ({"rep_tz": "Paris"}, "rep_tz: 'Paris' is not an IANA time zone"),
        ({"prospect_tz": ""}, "prospect_tz: '' is not an IANA time zone"),
    ],
)
def test_bad_input_is_a_plain_value_error(override, message):
    with pytest.raises(ValueError, match=message):
        slots_for(override.pop("meeting_end", paris(2026, 11, 23, 16)), **override)


def test_slot_validates_itself():
    with pytest.raises(ValueError, match="timezone-aware"):
        Slot(start=datetime(2026, 11, 24, 15), end=datetime(2026, 11, 24, 16))
    with pytest.raises(ValueError, match="must be after start"):
        Slot(start=paris(2026, 11, 24, 15), end=paris(2026, 11, 24, 15))
    slot = Slot(start=paris(2026, 11, 24, 15), end=paris(2026, 11, 24, 16))
    assert slot.start == datetime(2026, 11, 24, 14, tzinfo=UTC) and slot.duration == timedelta(
        hours=1
    )


# --- many busy intervals ------------------------------------------------------------------


def test_two_weeks_with_200_busy_intervals_gives_free_slots_only():
    """A crowded calendar still yields slots, none overlapping busy time (the search's
    speed is measured by bench/, never asserted here: machines are shared and noisy)."""
    rng = random.Random(7)
    meeting_end = paris(2026, 11, 23, 16)
    busy = []
    for _ in range(200):
        start = meeting_end + 30 * MIN * rng.randrange(14 * 48)
        busy.append((start, start + 30 * MIN * rng.randint(1, 4)))
    rng.shuffle(busy)
    slots = slots_for(meeting_end, busy=busy, count=5)
    assert slots
    for slot in slots:
        assert all(slot.end <= b0 or slot.start >= b1 for b0, b1 in busy)
