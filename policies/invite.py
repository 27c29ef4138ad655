"""Rules for sending a follow-up: working time of both sides, and busy time minus our own.

Pure: ``within_hours`` says whether an interval lies inside a side's working hours (one
working day, local wall clock); ``subtract`` takes our own events (the meeting's own
follow-up and hold) out of busy time before the rest is checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from policies.business import is_holiday
from policies.hours import WorkingHours, check_timezone

Interval = tuple[datetime, datetime]


def within_hours(
    start: datetime, end: datetime, zone: str, hours: WorkingHours, country: str | None = None
) -> bool:
    """True when ``[start, end)`` falls on one of ``hours``' days that is not a public holiday
    of ``country``, inside its span, in ``zone``."""
    tz = check_timezone(zone, field="timezone")
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    return (
        local_start.date() == local_end.date()
        and local_start.weekday() in hours.days
        and not is_holiday(country, local_start.date())
        and hours.start <= local_start.time()
        and local_end.time() <= hours.end
    )


def subtract(busy: Iterable[Interval], own: Iterable[Interval]) -> list[Interval]:
    """``busy`` with the ``own`` intervals cut out (a busy span may split in two)."""
    out = sorted(busy)
    for own_start, own_end in own:
        cut: list[Interval] = []
        for start, end in out:
            if end <= own_start or start >= own_end:
                cut.append((start, end))
                continue
            if start < own_start:
                cut.append((start, own_start))
            if end > own_end:
                cut.append((own_end, end))
        out = cut
    return out


def overlapping(busy: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The busy spans that overlap ``[start, end)``."""
    return [(s, e) for s, e in busy if s < end and e > start]
