"""Zone names: places and UTC pass; legacy offset and abbreviation zones are refused with
the IANA name to use."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.zones import check_zone


@pytest.mark.parametrize(
    "name",
    ["Europe/Paris", "America/New_York", "UTC", "Etc/UTC", "Asia/Kolkata", "Pacific/Chatham"],
)
def test_places_and_utc_are_accepted_as_given(name: str) -> None:
    assert check_zone(name) == name


@pytest.mark.parametrize("name", ["US/Eastern", "US/Pacific", "Asia/Calcutta", "Japan", "GB"])
def test_backward_links_to_places_are_accepted_as_given(name: str) -> None:
    # tzdata keeps them as links to the place's zone: same offsets, same daylight saving.
    assert check_zone(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "EST",
            "'EST' is a fixed-offset legacy zone (UTC-05:00) with no daylight saving; "
            "use an IANA name such as America/New_York",
        ),
        ("est", "such as America/New_York"),
        ("MST", "such as America/Denver (America/Phoenix where clocks never change)"),
        ("HST", "such as Pacific/Honolulu"),
        (
            "EST5EDT",
            "'EST5EDT' is a legacy POSIX-style zone, not a place; use an IANA name such as America/New_York",
        ),
        ("CST6CDT", "America/Chicago"),
        ("MST7MDT", "America/Denver"),
        ("PST8PDT", "America/Los_Angeles"),
        (
            "CET",
            "'CET' is a legacy abbreviation zone, not a place; use an IANA name such as Europe/Paris",
        ),
        ("MET", "Europe/Paris"),
        ("EET", "Europe/Athens"),
        ("WET", "Europe/Lisbon"),
        (
            "Etc/GMT+5",
            "'Etc/GMT+5' is a fixed offset (UTC-05:00; the sign is inverted) with no daylight "
            "saving; use the IANA name such as America/New_York",
        ),
        ("Etc/GMT-1", "(UTC+01:00; the sign is inverted)"),
        ("Etc/GMT-14", "Pacific/Kiritimati"),
        ("Etc/GMT+12", "of a place (e.g. Europe/Paris)"),
        ("GMT", "'GMT' is UTC under a legacy name; use UTC (or Europe/London for UK time"),
        ("Etc/GMT", "use UTC"),
        ("Zulu", "'Zulu' is UTC under a legacy name; use UTC"),
        ("Etc/Universal", "use UTC"),
    ],
)
def test_legacy_zones_are_refused_naming_the_zone_to_use(name: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        check_zone(name)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("Mars/Olympus", None),
        ("europe/paris", "Europe/Paris"),
        ("America/New York", "America/New_York"),
        ("Europe/Pariss", "Europe/Paris"),
        ("", None),
        (" Europe/Paris", "Europe/Paris"),
        ("/etc/passwd", None),
        ("../../etc/passwd", None),
        ("localtime", None),
        ("Factory", None),
    ],
)
def test_unknown_names_are_refused_with_a_close_match(name: str, hint: str | None) -> None:
    with pytest.raises(ValueError, match="is not an IANA time zone") as err:
        check_zone(name)
    if hint is None:
        assert "did you mean" not in str(err.value)
    else:
        assert str(err.value).endswith(f"did you mean {hint}?")


def test_not_a_string_is_refused() -> None:
    with pytest.raises(ValueError, match="is not an IANA time zone"):
        check_zone(None)


def test_every_tzdata_name_is_accepted_or_refused_pointing_at_an_accepted_zone() -> None:
    refused = set()
    for name in sorted(available_timezones()):
        try:
            assert check_zone(name) == name
        except ValueError as err:
            refused.add(name)
            if name in ("Factory", "localtime", "posixrules"):  # files of tzdata, not zones
                continue
            advice = str(err).partition("; use ")[2]
            suggested = re.findall(r"\b(?:[A-Z][A-Za-z_]+/[A-Za-z_/]+|UTC)\b", advice)
            assert suggested, str(err)
            for zone in suggested:
                assert check_zone(zone) == zone
        else:
            # what is accepted follows a place (or is UTC itself)
            assert name in ("UTC", "Etc/UTC") or not name.startswith("Etc/")
            ZoneInfo(name)
    assert {"EST", "MST", "HST", "EST5EDT", "CET", "Etc/GMT+5", "GMT"} <= refused
    assert {"UTC", "Etc/UTC", "US/Eastern", "Europe/Paris"}.isdisjoint(refused)


@given(st.text(max_size=40))
def test_any_text_is_accepted_only_as_a_real_zone(text: str) -> None:
    try:
        check_zone(text)
    except ValueError as err:
        assert str(err)
    else:
        ZoneInfo(text)
