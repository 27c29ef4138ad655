"""Suggested follow-up slots: free for the rep, inside both parties' working hours.

``find_slots`` answers "when could the follow-up take place?" for one prospect meeting.
A slot ``[start, start + duration)`` is suggested only when all of these hold:

- it is free on the rep's calendar: it overlaps no busy interval (intervals are half-open,
  so a slot may start exactly when a busy interval ends, or end exactly when one starts),
  each busy interval widened by ``buffer`` on both sides (the policy's ``slot_buffer``);
- it lies entirely inside the rep's working hours in the rep's zone *and* inside the
  prospect's working hours in the prospect's zone, on a working day of each: a day of
  its hours that is no public holiday of its country (``rep_country``,
  ``prospect_country``; None: no holidays), and outside ``lunch`` (local ``[start, end)``
  on each side's own clock);
- it starts no earlier than ``meeting_end + min_gap`` (nobody wants the follow-up an hour
  after the meeting) and no earlier than ``now``;
- it starts no later than ``meeting_end + horizon``;
- it starts on the step grid of the prospect's local clock (with the default 30-minute step:
  :00 or :30 local time, which is also :00/:30 for the rep unless one of the two zones has
  a quarter-hour offset, such as Asia/Kathmandu). The invite names the prospect's time,
  so that is the clock that must read round.

Ranking rule ("best first"):

1. Take the first free slot of each day, day by day (days of the prospect's calendar),
   soonest day first, until ``count`` days have one. Spreading the suggestions over
   distinct days gives the prospect a real choice rather than three neighbouring
   half-hours.
2. When fewer than ``count`` days have a free slot, fill up with the next free slots of
   those same days, soonest first, never overlapping a slot already chosen.
3. Return the chosen slots in chronological order, so the first is always the soonest
   possible slot (the one the draft invite proposes).

An empty list means there is no slot at all (e.g. no overlap between the two working days,
a full calendar or a horizon that already passed); the function never returns a slot that
breaks a rule above to have something to show.

Time zones: every working day is built from its *local calendar date* with zoneinfo, never
by adding 24 hours, so DST changes in either zone move the windows correctly. A working-hour
boundary that falls on a nonexistent local time (spring forward) or an ambiguous one (fall
back) is read conservatively: a window starts at the later and ends at the earlier of the
two possible instants, so a slot is never outside the hours as the local clock shows them.

Cost: O(days × slots per day + busy log busy): the busy intervals are sorted and merged
once, then swept with a single pointer while the candidate times advance; the scan stops
as soon as ``count`` distinct days have a slot.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from policies.business import is_holiday, local_to_utc
from policies.hours import WorkingHours, check_timezone

__all__ = ["Slot", "find_slots"]

_Interval = tuple[datetime, datetime]


@dataclass(frozen=True, kw_only=True, slots=True)
class Slot:
    """A suggested follow-up time, ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValueError(f"slot {name} must be a timezone-aware datetime, got {value!r}")
            if value.tzinfo is not UTC:
                object.__setattr__(self, name, value.astimezone(UTC))
        if self.end <= self.start:
            raise ValueError(
                f"slot end {self.end.isoformat()} must be after start {self.start.isoformat()}"
            )

    @property
    def duration(self) -> timedelta:
        """How long the slot lasts."""
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """The payload shape ``{"start": ISO 8601, "end": ISO 8601}`` (UTC offsets)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def find_slots(
    *,
    meeting_end: datetime,
    now: datetime,
    horizon: timedelta,
    duration: timedelta,
    busy: Iterable[tuple[datetime, datetime]],
    rep_tz: str,
    rep_hours: WorkingHours,
    prospect_tz: str,
    prospect_hours: WorkingHours,
    count: int = 3,
    min_gap: timedelta = timedelta(hours=12),
    step: timedelta = timedelta(minutes=30),
    rep_country: str | None = None,
    prospect_country: str | None = None,
    lunch: tuple[time, time] | None = None,
    buffer: timedelta = timedelta(0),
) -> list[Slot]:
    """Up to ``count`` follow-up slots, best first, by the rules in the module docstring."""
    _check_aware("meeting_end", meeting_end)
    _check_aware("now", now)
    if duration <= timedelta(0):
        raise ValueError(f"duration must be positive, got {duration}")
    if step <= timedelta(0):
        raise ValueError(f"step must be positive, got {step}")
    if horizon < timedelta(0):
        raise ValueError(f"horizon must not be negative, got {horizon}")
    if min_gap < timedelta(0):
        raise ValueError(f"min_gap must not be negative, got {min_gap}")
    if buffer < timedelta(0):
        raise ValueError(f"buffer must not be negative, got {buffer}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    rep_zone = check_timezone(rep_tz, field="rep_tz")
    prospect_zone = check_timezone(prospect_tz, field="prospect_tz")
    # Read busy even when nothing can be found, so bad input always fails the same way.
    meeting_end = meeting_end.astimezone(UTC)
    earliest = max(meeting_end + min_gap, now.astimezone(UTC))
    latest = meeting_end + horizon  # the last allowed start
    busy_starts, busy_ends = _merge_busy(busy, earliest, latest + duration, buffer)
    if count == 0 or earliest > latest:
        return []

    windows = _intersect(
        _work_windows(rep_zone, rep_hours, earliest, latest + duration, rep_country, lunch),
        _work_windows(
            prospect_zone, prospect_hours, earliest, latest + duration, prospect_country, lunch
        ),
    )
    per_day: dict[date, list[Slot]] = {}  # insertion order is chronological
    n_busy = len(busy_starts)
    j = 0  # first merged busy interval that ends after the candidate start
    for window_start, window_end in windows:
        start = _ceil_to_grid(max(window_start, earliest), prospect_zone, step)
        window_end = min(window_end, latest + duration)
        while start <= latest and start + duration <= window_end:
            end = start + duration
            while j < n_busy and busy_ends[j] <= start:
                j += 1
            if j < n_busy and busy_starts[j] < end:
                start = _ceil_to_grid(busy_ends[j], prospect_zone, step)
                continue
            picked = per_day.setdefault(start.astimezone(prospect_zone).date(), [])
            if len(picked) >= count:
                break  # this day is full; a later window may open a new day
            picked.append(Slot(start=start, end=end))
            if len(picked) == 1 and len(per_day) == count:
                return [day[0] for day in per_day.values()]
            start = _ceil_to_grid(end, prospect_zone, step)  # fillers never overlap
    return _rank(per_day, count)


def _rank(per_day: dict[date, list[Slot]], count: int) -> list[Slot]:
    """First slot of each day, then the days' further slots soonest first; chronological."""
    chosen = [slots[0] for slots in per_day.values()][:count]
    if len(chosen) < count:
        rest = sorted((slot for slots in per_day.values() for slot in slots[1:]), key=_start)
        chosen += rest[: count - len(chosen)]
    return sorted(chosen, key=_start)


def _start(slot: Slot) -> datetime:
    return slot.start


def _check_aware(name: str, value: object) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _merge_busy(
    busy: Iterable[tuple[datetime, datetime]],
    lo: datetime,
    hi: datetime,
    buffer: timedelta = timedelta(0),
) -> tuple[list[datetime], list[datetime]]:
    """Busy intervals widened by ``buffer`` on each side, touching ``[lo, hi)``, in UTC,
    sorted and merged into disjoint runs."""
    relevant: list[_Interval] = []
    for i, interval in enumerate(busy):
        try:
            start, end = interval
        except (TypeError, ValueError) as err:
            raise ValueError(f"busy[{i}] must be a (start, end) pair, got {interval!r}") from err
        _check_aware(f"busy[{i}] start", start)
        _check_aware(f"busy[{i}] end", end)
        if end <= start:
            continue
        start, end = start - buffer, end + buffer
        if end <= lo or start >= hi:
            continue  # empty, or out of the searched range
        relevant.append((start.astimezone(UTC), end.astimezone(UTC)))
    relevant.sort()
    starts: list[datetime] = []
    ends: list[datetime] = []
    for start, end in relevant:
        if ends and start <= ends[-1]:
            if end > ends[-1]:
                ends[-1] = end
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def _work_windows(
    zone: ZoneInfo,
    hours: WorkingHours,
    lo: datetime,
    hi: datetime,
    country: str | None = None,
    lunch: tuple[time, time] | None = None,
) -> Iterator[_Interval]:
    """The UTC spans of ``hours`` on each local working day (not a public holiday of
    ``country``) that meets ``[lo, hi)``, with ``lunch`` (local) cut out."""
    day = lo.astimezone(zone).date()
    last = hi.astimezone(zone).date()
    one_day = timedelta(days=1)
    while day <= last:
        if day.weekday() in hours.days and not is_holiday(country, day):
            start = local_to_utc(day, hours.start, zone, latest=True)
            end = local_to_utc(day, hours.end, zone, latest=False)
            spans = [(start, end)]
            if lunch is not None:
                lunch_start = local_to_utc(day, lunch[0], zone, latest=False)
                lunch_end = local_to_utc(day, lunch[1], zone, latest=True)
                spans = [(start, min(end, lunch_start)), (max(start, lunch_end), end)]
            for a, b in spans:
                if a < b and b > lo and a < hi:
                    yield a, b
        day += one_day  # calendar-date arithmetic: DST never shifts it


def _intersect(a: Iterator[_Interval], b: Iterator[_Interval]) -> Iterator[_Interval]:
    """Overlaps of two sorted streams of disjoint intervals."""
    x = next(a, None)
    y = next(b, None)
    while x is not None and y is not None:
        start = max(x[0], y[0])
        end = min(x[1], y[1])
        if start < end:
            yield start, end
        if x[1] <= y[1]:
            x = next(a, None)
        else:
            y = next(b, None)


def _ceil_to_grid(instant: datetime, zone: ZoneInfo, step: timedelta) -> datetime:
    """The first instant at or after ``instant`` whose local time in ``zone`` is a whole
    number of steps after local midnight."""
    local = instant.astimezone(zone)
    since_midnight = timedelta(
        hours=local.hour,
        minutes=local.minute,
        seconds=local.second,
        microseconds=local.microsecond,
    )
    remainder = since_midnight % step
    return instant if not remainder else instant + (step - remainder)


def without_own(
    busy: Iterable[tuple[datetime, datetime]],
    own: Iterable[tuple[datetime, datetime]],
    others: Iterable[tuple[datetime, datetime]] = (),
) -> list[_Interval]:
    """``busy`` minus the meeting's own follow-up and hold (``own``), with the rep's other
    events (``others``) that overlap them put back: a free/busy answer merges neighbours,
    so cutting the own events out must not free someone else's time."""
    own = [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in own if b > a]
    if not own:
        return [(a, b) for a, b in busy]
    out: list[_Interval] = []
    for start, end in busy:
        pieces = [(start.astimezone(UTC), end.astimezone(UTC))]
        for o_start, o_end in own:
            cut: list[_Interval] = []
            for a, b in pieces:
                if o_end <= a or o_start >= b:
                    cut.append((a, b))
                    continue
                if a < o_start:
                    cut.append((a, o_start))
                if o_end < b:
                    cut.append((o_end, b))
            pieces = cut
        out += pieces
    for a, b in others:
        if any(a < o_end and b > o_start for o_start, o_end in own):
            out.append((a, b))
    return out
