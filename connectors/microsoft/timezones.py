"""Graph time zone names -> IANA zones, and Graph dateTimeTimeZone values -> aware datetimes.

Graph names zones either by Windows name (``"Romance Standard Time"``, the default for
events created in Outlook) or by IANA name (``"Europe/Paris"``, when a client set it),
plus a few Exchange-internal spellings (``"tzone://Microsoft/Utc"``). Windows names are
resolved with CLDR windowsZones.xml, territory ``001`` (``windows_zones.py``, generated;
never hand-edited).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.http import parse_datetime
from connectors.microsoft.windows_zones import WINDOWS_TO_IANA

_UTC_ALIASES = {
    "utc",
    "etc/utc",
    "gmt",
    "etc/gmt",
    "z",
    "tzone://microsoft/utc",
    "coordinated universal time",
}
# Case-insensitive view of the CLDR table: Graph echoes names as stored, casing varies.
_WINDOWS_LOWER = {name.lower(): iana for name, iana in WINDOWS_TO_IANA.items()}


@lru_cache(maxsize=512)
def iana_name(name: str | None) -> str | None:
    """The IANA name for a Graph zone name (Windows or IANA), or None when unknown."""
    if not name:
        return None
    key = name.strip()
    if key.lower() in _UTC_ALIASES:
        return "UTC"
    iana = _WINDOWS_LOWER.get(key.lower())
    if iana is not None:
        return "UTC" if iana == "Etc/UTC" else iana
    if "/" in key and not key.lower().startswith("tzone://"):
        try:
            ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        return key
    return None


def zone(name: str | None) -> tzinfo | None:
    """The tzinfo for a Graph zone name, or None when the name is unknown."""
    iana = iana_name(name)
    if iana is None:
        return None
    return UTC if iana == "UTC" else ZoneInfo(iana)


def from_date_time_time_zone(value: dict, *, default_zone: str = "UTC") -> datetime:
    """An aware datetime from a Graph dateTimeTimeZone ``{"dateTime", "timeZone"}``.

    Raises ``ValueError`` when the value is malformed or names an unknown zone.
    """
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise ValueError(f"not a dateTimeTimeZone: {value!r}")
    naive = parse_datetime(value["dateTime"])
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    zone_name = value.get("timeZone") or default_zone
    tz = zone(zone_name)
    if tz is None:
        raise ValueError(f"unknown time zone {zone_name!r}")
    return naive.replace(tzinfo=tz).astimezone(UTC)


def all_day_bound(value: dict) -> datetime:
    """Midnight UTC of the calendar date of an all-day event's start or end.

    All-day events are floating dates: their wall-clock date is what counts, whatever
    zone Graph expresses them in.
    """
    naive = parse_datetime(value["dateTime"])
    day: date = naive.date()
    return datetime.combine(day, time(0), tzinfo=UTC)


def to_graph(dt: datetime, zone_name: str = "UTC") -> dict[str, str]:
    """A Graph dateTimeTimeZone for an aware datetime, in ``zone_name`` (IANA or UTC).

    Graph accepts IANA names in ``timeZone``; the event then keeps that zone as its
    ``originalStartTimeZone`` (what Outlook shows the attendees).
    """
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}")
    tz = zone(zone_name) if zone_name else None
    if tz is None or iana_name(zone_name) == "UTC":
        tz, zone_name = UTC, "UTC"
    return {
        "dateTime": dt.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds"),
        "timeZone": zone_name,
    }
