"""Time-zone names: the IANA name of a place, never a legacy offset or abbreviation zone.

tzdata still carries names from before zones were named after places. They resolve, so
``ZoneInfo("EST")`` works — and is wrong for a rep in New York half the year: it is a fixed
UTC-05:00 (newer tzdata: Panama's clock), with no daylight saving. ``check_zone`` refuses
them and names the zone to use instead:

    refused                                   because                              use instead
    EST, MST, HST                             fixed offsets, no daylight saving    America/New_York, America/Denver, Pacific/Honolulu
    EST5EDT, CST6CDT, MST7MDT, PST8PDT        POSIX-style rules, no local history  America/New_York, America/Chicago, …
    CET, MET, EET, WET                        abbreviations of a region            Europe/Paris, Europe/Athens, Europe/Lisbon
    Etc/GMT+5, Etc/GMT-1, …                   fixed offsets (sign inverted)        a place at that offset
    GMT, Greenwich, UCT, Universal, Zulu, …   UTC under other names                UTC (Europe/London for UK time)

``UTC`` and ``Etc/UTC`` are accepted: UTC is a legitimate choice. Backward-compatible
links that name a place or a country (``US/Eastern``, ``Asia/Calcutta``, ``Japan``) are
accepted as given: tzdata keeps them as links to the place's zone, with the same rules.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = ["check_zone"]

_FIXED = {
    "EST": ("a fixed-offset legacy zone (UTC-05:00)", "America/New_York"),
    "MST": (
        "a fixed-offset legacy zone (UTC-07:00)",
        "America/Denver (America/Phoenix where clocks never change)",
    ),
    "HST": ("a fixed-offset legacy zone (UTC-10:00)", "Pacific/Honolulu"),
}
_POSIX = {
    "EST5EDT": "America/New_York",
    "CST6CDT": "America/Chicago",
    "MST7MDT": "America/Denver",
    "PST8PDT": "America/Los_Angeles",
}
_REGIONS = {
    "CET": "Europe/Paris",
    "MET": "Europe/Paris",
    "EET": "Europe/Athens",
    "WET": "Europe/Lisbon",
}
_UTC_ALIASES = frozenset(
    name.casefold()
    for name in (
        "GMT",
        "GMT0",
        "GMT+0",
        "GMT-0",
        "Greenwich",
        "UCT",
        "Universal",
        "Zulu",
        "Etc/GMT",
        "Etc/GMT0",
        "Etc/GMT+0",
        "Etc/GMT-0",
        "Etc/Greenwich",
        "Etc/UCT",
        "Etc/Universal",
        "Etc/Zulu",
    )
)
_OFFSET = re.compile(r"^(?:etc/)?gmt([+-])(\d{1,2})$")
# A place on each whole-hour standard offset, for the Etc/GMT±N message.
_PLACE_AT = {
    -11: "Pacific/Pago_Pago",
    -10: "Pacific/Honolulu",
    -9: "America/Anchorage",
    -8: "America/Los_Angeles",
    -7: "America/Denver",
    -6: "America/Chicago",
    -5: "America/New_York",
    -4: "America/Halifax",
    -3: "America/Sao_Paulo",
    -2: "America/Noronha",
    -1: "Atlantic/Azores",
    1: "Europe/Paris",
    2: "Europe/Athens",
    3: "Europe/Istanbul",
    4: "Asia/Dubai",
    5: "Asia/Karachi",
    6: "Asia/Dhaka",
    7: "Asia/Bangkok",
    8: "Asia/Singapore",
    9: "Asia/Tokyo",
    10: "Australia/Sydney",
    11: "Pacific/Noumea",
    12: "Pacific/Auckland",
    13: "Pacific/Tongatapu",
    14: "Pacific/Kiritimati",
}
_NOT_ZONES = frozenset({"localtime", "factory", "posixrules"})
_NO_DST = "with no daylight saving"


def _legacy(name: str) -> str | None:
    """Why ``name`` is a legacy zone, with what to use instead; None if it is not one."""
    key = name.casefold()
    upper = name.upper()
    if upper in _FIXED:
        what, use = _FIXED[upper]
        return f"{name!r} is {what} {_NO_DST}; use an IANA name such as {use}"
    if upper in _POSIX:
        return (
            f"{name!r} is a legacy POSIX-style zone, not a place; use an IANA name such as "
            f"{_POSIX[upper]}"
        )
    if upper in _REGIONS:
        return (
            f"{name!r} is a legacy abbreviation zone, not a place; use an IANA name such as "
            f"{_REGIONS[upper]}"
        )
    if key in _UTC_ALIASES:
        uk = " (or Europe/London for UK time, which has summer time)" if "gmt" in key else ""
        return f"{name!r} is UTC under a legacy name; use UTC{uk}"
    match = _OFFSET.match(key)
    if match:
        # POSIX sign convention: Etc/GMT+5 is five hours *behind* UTC.
        hours = -int(match[2]) if match[1] == "+" else int(match[2])
        place = _PLACE_AT.get(hours)
        example = f"such as {place}" if place else "of a place (e.g. Europe/Paris)"
        return (
            f"{name!r} is a fixed offset (UTC{hours:+03d}:00; the sign is inverted) {_NO_DST}; "
            f"use the IANA name {example}"
        )
    return None


@lru_cache(maxsize=1)
def _known() -> dict[str, str]:
    return {n.casefold(): n for n in available_timezones()}


def _unknown(name: str) -> str:
    message = f"{name!r} is not an IANA time zone (e.g. Europe/Paris)"
    known = _known()
    guess = known.get(name.strip().casefold().replace(" ", "_"))
    if guess is None:
        close = difflib.get_close_matches(name.casefold(), list(known), n=1, cutoff=0.8)
        guess = known[close[0]] if close else None
    if guess not in (None, name) and _legacy(guess) is None and guess.casefold() not in _NOT_ZONES:
        message += f"; did you mean {guess}?"
    return message


def check_zone(name: object) -> str:
    """``name`` when it is the IANA zone of a place (or UTC); ValueError saying what to use."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Paris)")
    reason = _legacy(name)
    if reason is not None:
        raise ValueError(reason)
    # zoneinfo would otherwise read files relative to its search path.
    unsafe = name.startswith("/") or "\\" in name or "\x00" in name or ".." in name.split("/")
    if unsafe or name != name.strip() or name.casefold() in _NOT_ZONES:
        raise ValueError(_unknown(name))
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ValueError(_unknown(name)) from err
    return name
