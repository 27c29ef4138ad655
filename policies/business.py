"""Business time: a side's working week, its country's holidays, and window arithmetic.

A *side* (the rep, or the prospect's account) works ``hours`` (days of the week and a
local ``[start, end)`` span) in ``zone``, except on the public holidays of ``country``
(the ``holidays`` package). A day is a *working day* when it is one of the hours' days and
not a holiday; its *working period* is ``[start, end)`` of that local date, read with
zoneinfo on the local calendar date (DST never shifts it).

``add_business(start, window, week)`` is where a window closes under ``clock: business``:

1. a start outside working time first moves to the next working period's start;
2. the day part of the window (``window.days``) counts working days: the same local time
   on the n-th next working day;
3. the time part (the rest) counts working time: the earliest instant with that much
   working time since step 2's instant (so it may end exactly at a period's end).

    Fri 17:00 + P1D  → Mon 17:00          Fri 17:30 + PT2H (to 18:00) → Mon 10:30

``next_working(at, week)`` is ``at`` inside working time, else the next period's start:
when a nudge decided outside working time may reach the rep.

Country from a zone: tzdata's own zone table (``zone.tab``, then ``zone1970.tab``), so
``America/New_York`` → ``US`` and ``Europe/Paris`` → ``FR``; no hand-written table.
Pure: no clock, no I/O beyond reading tzdata's table once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from policies.hours import PROSPECT_DEFAULT, WorkingHours

__all__ = [
    "WorkWeek",
    "add_business",
    "check_country",
    "country_of_zone",
    "is_holiday",
    "next_working",
    "working_periods",
]

_ONE_DAY = timedelta(days=1)
_SEARCH_DAYS = 3660  # a week with no working day at all is refused long before this


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    """IANA zone → ISO 3166-1 alpha-2 country, from tzdata's zone tables."""
    out: dict[str, str] = {}
    for name in ("zone1970.tab", "zone.tab"):  # zone.tab (one country a zone) wins
        try:
            text = resources.files("tzdata").joinpath("zoneinfo", name).read_text("utf-8")
        except (ModuleNotFoundError, FileNotFoundError, OSError):
            continue
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) >= 3:
                out[parts[2]] = parts[0].split(",")[0]
    return out


def country_of_zone(zone: str | None) -> str | None:
    """The country of an IANA zone (``Europe/Paris`` → ``FR``); None for UTC and the like."""
    if not zone:
        return None
    return _zone_countries().get(zone)


@lru_cache(maxsize=1)
def _supported() -> frozenset[str]:
    return frozenset(holidays.list_supported_countries())


def check_country(value: object, *, field: str = "country") -> str:
    """An ISO 3166-1 alpha-2 code the ``holidays`` package knows (upper-cased), or ValueError
    (its message starts with ``field``, unless empty: a schema names the field itself)."""
    where = f"{field}: " if field else ""
    if not isinstance(value, str) or len(value.strip()) != 2:
        raise ValueError(f"{where}{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. FR)")
    code = value.strip().upper()
    if code not in _supported():
        raise ValueError(
            f"{where}{value!r} is not a country the holidays package knows (e.g. US, FR, AE)"
        )
    return code


@lru_cache(maxsize=512)
def _holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


def is_holiday(country: str | None, day: date) -> bool:
    """Whether ``day`` is a public holiday of ``country`` (None: no holidays)."""
    return country is not None and day in _holidays(country, day.year)


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkWeek:
    """One side's working time: hours in a zone, minus its country's public holidays."""

    zone: ZoneInfo
    hours: WorkingHours
    country: str | None = None
    _cache: dict[date, tuple[datetime, datetime] | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, zone: str, hours: WorkingHours, country: str | None = None) -> WorkWeek:
        """``country`` None takes the zone's country."""
        return cls(zone=ZoneInfo(zone), hours=hours, country=country or country_of_zone(zone))

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.hours.days and not is_holiday(self.country, day)

    def period(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC working period of a local date; None on a day off."""
        try:
            return self._cache[day]
        except KeyError:
            pass
        value: tuple[datetime, datetime] | None = None
        if self.is_working_day(day):
            start = local_to_utc(day, self.hours.start, self.zone, latest=True)
            end = local_to_utc(day, self.hours.end, self.zone, latest=False)
            value = (start, end) if start < end else None
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[day] = value
        return value

    def to_dict(self) -> dict[str, Any]:
        return {"timezone": self.zone.key, "country": self.country, **self.hours.to_dict()}


def local_to_utc(day: date, clock: time, zone: ZoneInfo, *, latest: bool) -> datetime:
    """The UTC instant of a local wall time; for a skipped or repeated time, the later or
    earlier of its two readings (both coincide on ordinary days)."""
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return max(first, second) if latest else min(first, second)


def working_periods(week: WorkWeek, lo: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The UTC working periods that end after ``lo``, in order (endless unless no day works)."""
    lo = lo.astimezone(UTC)
    day = lo.astimezone(week.zone).date() - _ONE_DAY
    idle = 0
    while idle < _SEARCH_DAYS:
        period = week.period(day)
        day += _ONE_DAY
        if period is None or period[1] <= lo:
            idle += 1
            continue
        idle = 0
        yield period


def next_working(at: datetime, week: WorkWeek) -> datetime:
    """``at`` when it is working time, else the start of the next working period."""
    at = at.astimezone(UTC)
    for start, _end in working_periods(week, at):
        return max(start, at)
    raise ValueError("this working week has no working day")


def add_business(start: datetime, window: timedelta, week: WorkWeek) -> datetime:
    """Where ``window`` counted in ``week``'s working time from ``start`` closes (UTC)."""
    at = next_working(start, week)
    days = window.days
    rest = window - timedelta(days=days)
    if days:
        local = at.astimezone(week.zone)
        day = local.date()
        while days:
            day += _ONE_DAY
            if week.is_working_day(day):
                days -= 1
        at = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=week.zone)
        at = at.astimezone(UTC)
        period = week.period(day)
        if period is not None and not period[0] <= at < period[1]:
            at = min(max(at, period[0]), period[1])  # a DST gap at the very edge of the hours
    if not rest:
        return at
    for p_start, p_end in working_periods(week, at):
        begin = max(p_start, at)
        if begin + rest <= p_end:
            return begin + rest
        rest -= p_end - begin
    raise ValueError("this working week has no working day")


def account_zone(
    crm: str | None, calendar: str | None, rep: str | None
) -> tuple[str | None, str | None]:
    """The zone an account's slots are read in, and where it came from: the CRM's, else the
    one its own people put on the invites they organise, else the rep's."""
    if crm:
        return crm, "crm"
    if calendar:
        return calendar, "calendar"
    if rep:
        return rep, "rep"
    return None, None


def parse_account_hours(value: object, *, field: str = "working_hours") -> WorkingHours:
    """An account's ``working_hours``; missing keys (and None) take Mon–Fri 09:00–17:00."""
    if value is None:
        return PROSPECT_DEFAULT
    if isinstance(value, dict):
        value = {**PROSPECT_DEFAULT.to_dict(), **value}
    return WorkingHours.parse(value, field=field)  # type: ignore[arg-type]


@lru_cache(maxsize=1024)
def work_week(zone: str, hours: WorkingHours, country: str | None) -> WorkWeek:
    """One shared ``WorkWeek`` per side (its holiday periods cached across decisions)."""
    return WorkWeek.of(zone, hours, country)


def hours_in_zone(
    days: tuple[int, ...], start: time, end: time, source: str | None, zone: str, on: date
) -> WorkingHours | None:
    """Working hours a provider gave in ``source``'s clock, read on ``zone``'s clock (as of
    the week of ``on``); None when they would cross midnight there (no one weekly pattern)."""
    if not days or end <= start:
        return None
    if source is None or source == zone:
        return WorkingHours(days=frozenset(days), start=start, end=end)
    src, dst = ZoneInfo(source), ZoneInfo(zone)
    a = datetime.combine(on, start, tzinfo=src).astimezone(dst)
    b = datetime.combine(on, end, tzinfo=src).astimezone(dst)
    if a.date() != b.date() or a.second or b.second:
        return None
    shift = (a.date() - on).days
    return WorkingHours(
        days=frozenset((d + shift) % 7 for d in days),
        start=a.time().replace(tzinfo=None),
        end=b.time().replace(tzinfo=None),
    )


def outside_working_time(start: datetime, end: datetime, sides: dict[str, WorkWeek]) -> str | None:
    """Why ``[start, end)`` is not inside every side's working time (a working day, within
    its hours), naming the side (e.g. ``"the prospect's"``); None when it is inside all.
    For refusing a follow-up slot (``POST /v1/meetings/{id}/schedule``, ``send_invite``)."""
    for who, week in sides.items():
        local = start.astimezone(week.zone)
        period = week.period(local.date())
        if period is None:
            why = "a public holiday" if is_holiday(week.country, local.date()) else "a day off"
            return f"{local:%A %d %B} is {why} on {who} calendar ({week.zone.key})"
        if not (period[0] <= start and end <= period[1]):
            return (
                f"{local:%H:%M}–{end.astimezone(week.zone):%H:%M} {week.zone.key} is outside "
                f"{who} working hours ({week.hours.start:%H:%M}–{week.hours.end:%H:%M})"
            )
    return None
