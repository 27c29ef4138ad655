"""The RRULE subset the emulator expands: FREQ=DAILY|WEEKLY, INTERVAL, COUNT, UNTIL, BYDAY.

Occurrences are computed in wall-clock time of the event's zone (so a 10:00 weekly meeting
stays at 10:00 across a DST change, as Google does) and EXDATE lines are honoured.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_DAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
MAX_OCCURRENCES = 1000


def _parse_rule(line: str) -> dict[str, str]:
    body = line.split(":", 1)[1] if ":" in line else line
    parts = dict(part.split("=", 1) for part in body.split(";") if "=" in part)
    freq = parts.get("FREQ")
    if freq not in ("DAILY", "WEEKLY"):
        raise ValueError(f"emulator supports FREQ=DAILY|WEEKLY only, got {line!r}")
    return parts


def _parse_until(value: str, zone: ZoneInfo) -> datetime:
    if "T" in value:
        naive = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
        return naive.replace(tzinfo=UTC) if value.endswith("Z") else naive.replace(tzinfo=zone)
    day = datetime.strptime(value, "%Y%m%d")
    return (day + timedelta(days=1) - timedelta(seconds=1)).replace(tzinfo=zone)


def _exdates(recurrence: list[str], zone: ZoneInfo) -> set[datetime]:
    out: set[datetime] = set()
    for line in recurrence:
        if not line.startswith("EXDATE"):
            continue
        head, _, values = line.partition(":")
        line_zone = zone
        if "TZID=" in head:
            line_zone = ZoneInfo(head.split("TZID=", 1)[1].split(";")[0])
        for value in values.split(","):
            value = value.strip()
            if "T" in value:
                naive = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
                tz = UTC if value.endswith("Z") else line_zone
                out.add(naive.replace(tzinfo=tz).astimezone(UTC))
            else:
                out.add(datetime.strptime(value, "%Y%m%d").replace(tzinfo=UTC))
    return out


def expand(
    recurrence: list[str], dtstart: datetime, zone: ZoneInfo, horizon: datetime
) -> list[datetime]:
    """Occurrence starts (aware, in ``zone``) of the series, up to ``horizon``.

    ``dtstart`` is the series' first start (aware). For all-day series pass midnight in
    ``zone`` and read ``.date()`` back.
    """
    rules = [line for line in recurrence if line.startswith("RRULE")]
    local_start = dtstart.astimezone(zone)
    if not rules:
        return [local_start]
    rule = _parse_rule(rules[0])
    interval = int(rule.get("INTERVAL", "1"))
    count = int(rule["COUNT"]) if "COUNT" in rule else None
    until = _parse_until(rule["UNTIL"], zone) if "UNTIL" in rule else None
    excluded = _exdates(recurrence, zone)
    wall = local_start.replace(tzinfo=None)
    out: list[datetime] = []
    produced = 0

    def emit(candidate_wall: datetime) -> bool:
        """Record one occurrence; False when the series is over."""
        nonlocal produced
        candidate = candidate_wall.replace(tzinfo=zone)
        if until is not None and candidate > until:
            return False
        if candidate > horizon or produced >= MAX_OCCURRENCES:
            return False
        produced += 1
        if candidate.astimezone(UTC) not in excluded:
            out.append(candidate)
        return count is None or produced < count

    if rule["FREQ"] == "DAILY":
        current = wall
        while emit(current):
            current += timedelta(days=interval)
        return out

    days = (
        sorted(_DAYS[d[-2:]] for d in rule["BYDAY"].split(","))
        if "BYDAY" in rule
        else [wall.weekday()]
    )
    week_start = wall - timedelta(days=wall.weekday())
    while True:
        for weekday in days:
            candidate = week_start + timedelta(days=weekday)
            if candidate < wall:
                continue
            if not emit(candidate):
                return out
        week_start += timedelta(weeks=interval)


def instance_suffix(original_start: datetime | date) -> str:
    """Google's instance id suffix: ``20180420`` (all-day) or ``20180401T083000Z``."""
    if isinstance(original_start, datetime):
        return original_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return original_start.strftime("%Y%m%d")
