"""Working hours as reps send them, and the errors they get back when it is wrong."""

from datetime import time

import pytest

from policies.hours import (
    PROSPECT_DEFAULT,
    REP_DEFAULT,
    WorkingHours,
    check_timezone,
)


def test_defaults_are_the_contracts():
    assert REP_DEFAULT.to_dict() == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "18:00",
    }
    assert PROSPECT_DEFAULT.to_dict() == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
    }


def test_none_gives_the_rep_default():
    assert WorkingHours.parse(None) == REP_DEFAULT


def test_parses_the_contract_shape_and_round_trips():
    value = {"days": ["Sun", "mon", "tue", "wed", "thu"], "start": "08:30", "end": "17:15"}
    hours = WorkingHours.parse(value)
    assert hours.days == frozenset({6, 0, 1, 2, 3})
    assert (hours.start, hours.end) == (time(8, 30), time(17, 15))
    assert hours.to_dict() == {
        "days": ["mon", "tue", "wed", "thu", "sun"],
        "start": "08:30",
        "end": "17:15",
    }
    assert WorkingHours.parse(hours.to_dict()) == hours


def test_missing_keys_take_the_rep_default():
    hours = WorkingHours.parse({"start": "10:00"})
    assert hours == WorkingHours(days=REP_DEFAULT.days, start=time(10), end=time(18))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"days": ["mon", "tue", "fun"]},
            "working_hours.days[2]: 'fun' is not a day (mon, tue, wed, thu, fri, sat, sun)",
        ),
        ({"days": [1, 2]}, "working_hours.days[0]: 1 is not a day"),
        ({"days": []}, "working_hours.days: must name at least one day"),
        ({"days": "mon,tue"}, "working_hours.days: expected a list of days"),
        ({"start": "9h"}, "working_hours.start: '9h' is not HH:MM"),
        ({"end": "25:00"}, "working_hours.end: '25:00' is not HH:MM"),
        ({"end": 1800}, "working_hours.end: 1800 is not HH:MM"),
        ({"start": "18:00", "end": "09:00"}, "working_hours.end: 09:00 must be after start 18:00"),
        ({"start": "09:00", "end": "09:00"}, "working_hours.end: 09:00 must be after start 09:00"),
        ({"days": ["mon"], "hours": 8}, "working_hours: unknown key 'hours'"),
        (["mon"], "working_hours: expected an object"),
    ],
)
def test_errors_name_the_field(value, message):
    with pytest.raises(ValueError) as err:
        WorkingHours.parse(value)
    assert str(err.value).startswith(message)


def test_error_path_follows_the_callers_field():
    with pytest.raises(ValueError, match=r"^reps\[3\]\.working_hours\.start: 'noon'"):
        WorkingHours.parse({"start": "noon"}, field="reps[3].working_hours")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": frozenset(), "start": time(9), "end": time(17)},
        {"days": frozenset({7}), "start": time(9), "end": time(17)},
        {"days": frozenset({0}), "start": time(17), "end": time(9)},
        {"days": frozenset({0}), "start": time(9), "end": time(9)},
        {"days": frozenset({0}), "start": "09:00", "end": time(17)},
    ],
)
def test_value_object_validates_itself(kwargs):
    with pytest.raises(ValueError):
        WorkingHours(**kwargs)


def test_value_object_is_frozen_and_keyword_only():
    with pytest.raises(TypeError):
        WorkingHours(frozenset({0}), time(9), time(17))  # type: ignore[misc]
    with pytest.raises(AttributeError):
        REP_DEFAULT.start = time(8)  # type: ignore[misc]


@pytest.mark.parametrize("name", ["Europe/Paris", "America/New_York", "Asia/Kathmandu", "UTC"])
def test_known_zones(name):
    assert check_timezone(name, field="timezone").key == name


@pytest.mark.parametrize(
    "name",
    ["", " ", "Mars/Olympus_Mons", "Europe", "/etc/passwd", "../../etc/passwd", "localtime"],
)
def test_unknown_zones_name_the_field(name):
    with pytest.raises(ValueError, match=r"^accounts\.timezone: .* is not an IANA time zone"):
        check_timezone(name, field="accounts.timezone")
