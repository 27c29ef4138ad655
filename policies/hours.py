"""Working hours and time-zone names, as the contract spells them.

``WorkingHours`` is the weekly pattern in a zone's *local wall clock*: the days it applies
to (0 = Monday … 6 = Sunday) and one ``[start, end)`` span per day. It knows nothing of
the zone itself; ``policies.slots`` pairs it with an IANA zone name.

The wire shape (``POST /v1/reps`` ``working_hours``) is::

    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}

``WorkingHours.parse`` reads it and every error names the field path, e.g.
``working_hours.days[2]: 'fun' is not a day (mon, tue, wed, thu, fri, sat, sun)``, so an
endpoint can hand the message to the caller unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DAY_NAMES",
    "PROSPECT_DEFAULT",
    "REP_DEFAULT",
    "WorkingHours",
    "check_timezone",
]

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {name: i for i, name in enumerate(DAY_NAMES)} | {
    name: i for i, name in enumerate(_FULL_DAY_NAMES)
}
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_KEYS = ("days", "start", "end")
# Files in the zone database that are not zones a person lives in: "localtime" is whatever
# the host is set to, "Factory" and "posixrules" are placeholders.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkingHours:
    """The days of the week and the local ``[start, end)`` span worked on each of them."""

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        days = self.days
        if isinstance(days, str) or not isinstance(days, Iterable):
            raise ValueError(f"days must be a set of weekday numbers 0-6, got {days!r}")
        days = frozenset(days)
        for day in days:
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise ValueError(f"days: {day!r} is not a weekday number (0=Monday … 6=Sunday)")
        if not days:
            raise ValueError("days must name at least one day")
        object.__setattr__(self, "days", days)
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time):
                raise ValueError(f"{name} must be a datetime.time, got {value!r}")
            if value.tzinfo is not None:
                # Working hours follow the local wall clock of a zone given separately.
                raise ValueError(f"{name} must be a local (naive) time, got {value!r}")
            if value.second or value.microsecond:
                raise ValueError(f"{name} must be a whole minute, got {value.isoformat()}")
        if self.end <= self.start:
            raise ValueError(f"end {self.end:%H:%M} must be after start {self.start:%H:%M}")

    @classmethod
    def parse(
        cls, value: Mapping[str, Any] | None, *, field: str = "working_hours"
    ) -> WorkingHours:
        """Read the contract's ``{"days", "start", "end"}`` shape; None gives REP_DEFAULT.

        A missing key takes the rep default's value (days Mon–Fri, 09:00, 18:00).
        """
        if value is None:
            return REP_DEFAULT
        if not isinstance(value, Mapping):
            raise ValueError(
                f'{field}: expected an object like {{"days": ["mon", …], "start": "09:00", '
                f'"end": "18:00"}}, got {value!r}'
            )
        unknown = sorted(str(key) for key in value if key not in _KEYS)
        if unknown:
            raise ValueError(f"{field}: unknown key {unknown[0]!r} (expected days, start, end)")
        days = (
            _parse_days(value["days"], field=f"{field}.days")
            if "days" in value
            else REP_DEFAULT.days
        )
        start = (
            _parse_hhmm(value["start"], field=f"{field}.start")
            if "start" in value
            else REP_DEFAULT.start
        )
        end = _parse_hhmm(value["end"], field=f"{field}.end") if "end" in value else REP_DEFAULT.end
        if end <= start:
            raise ValueError(f"{field}.end: {end:%H:%M} must be after start {start:%H:%M}")
        return cls(days=days, start=start, end=end)

    def to_dict(self) -> dict[str, Any]:
        """The contract shape: ``{"days": ["mon", …], "start": "HH:MM", "end": "HH:MM"}``."""
        return {
            "days": [DAY_NAMES[day] for day in sorted(self.days)],
            "start": f"{self.start:%H:%M}",
            "end": f"{self.end:%H:%M}",
        }


def _parse_days(value: object, *, field: str) -> frozenset[int]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f'{field}: expected a list of days like ["mon", "tue"], got {value!r}')
    if not value:
        raise ValueError(f"{field}: must name at least one day")
    days = set()
    for i, item in enumerate(value):
        index = _DAY_INDEX.get(item.strip().lower()) if isinstance(item, str) else None
        if index is None:
            raise ValueError(f"{field}[{i}]: {item!r} is not a day ({', '.join(DAY_NAMES)})")
        days.add(index)
    return frozenset(days)


def _parse_hhmm(value: object, *, field: str) -> time:
    match = _HHMM.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{field}: {value!r} is not HH:MM")
    return time(int(match[1]), int(match[2]))


def check_timezone(name: str, *, field: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA zone name, or raise ValueError naming ``field``."""
    problem = f"{field}: {name!r} is not an IANA time zone (e.g. Europe/Paris)"
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(problem)
    # zoneinfo would otherwise read files relative to its search path.
    if name.startswith("/") or "\\" in name or "\x00" in name or ".." in name.split("/"):
        raise ValueError(problem)
    if name in _NOT_ZONES:
        raise ValueError(problem)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ValueError(problem) from err


REP_DEFAULT = WorkingHours(days=frozenset(range(5)), start=time(9), end=time(18))
"""The contract's default for a rep: Monday–Friday 09:00–18:00 in the rep's zone."""

PROSPECT_DEFAULT = WorkingHours(days=frozenset(range(5)), start=time(9), end=time(17))
"""The contract's prospect hours: Monday–Friday 09:00–17:00 in the account's zone."""
