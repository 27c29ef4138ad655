"""Policy value objects and ISO 8601 durations. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

from policies.signals import SignalsPolicy

CLOCKS = ("calendar", "business")

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as ``PT2H``, ``P2D``, ``P1DT12H`` or ``PT3S``.

    Years and months are refused: their length depends on the date.
    """
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an ISO 8601 duration string (e.g. PT2H, P2D)")
    m = _DURATION.match(text.strip().upper())
    if not m:
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration (e.g. PT2H, P2D, PT90S; no years/months)"
        )
    parts = {k: float(v) for k, v in m.groupdict().items() if v is not None}
    value = timedelta(**parts)
    if value <= timedelta(0):
        raise ValueError(f"{text!r} must be longer than zero")
    return value


def format_duration(value: timedelta) -> str:
    """The ISO 8601 form of a positive duration, e.g. ``P2DT3H``."""
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    time += f"{seconds}S" if seconds else ""
    return out + ("T" + time if time else "") if out != "P" or time else "PT0S"


@dataclass(frozen=True, kw_only=True, slots=True)
class Policy:
    """How long a team gives itself, counted from the meeting's end or the invite."""

    name: str
    invite_within: timedelta
    accept_within: timedelta
    horizon: timedelta
    follow_up_duration: timedelta
    escalate_after: timedelta
    clock: str = "calendar"  # "calendar" (wall clock, v1) or "business" (working time)
    lunch: tuple[time, time] | None = None  # local [start, end) kept free of slots, each side
    slot_buffer: timedelta = timedelta(0)  # kept free before and after busy time
    stages: frozenset[str] | None = None  # account stages it covers; None = every stage

    @property
    def business(self) -> bool:
        return self.clock == "business"

    def covers(self, stage: str | None) -> bool:
        """Whether meetings of an account at ``stage`` follow this policy (None = prospect)."""
        return self.stages is None or (stage or "prospect") in self.stages

    video: bool = True  # the follow-up invitation carries a Meet / Teams link
    hold: bool = False  # a nudge with slots places a tentative hold at the first slot

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"clock: {self.clock!r} is not one of {', '.join(CLOCKS)}")
        if self.slot_buffer < timedelta(0):
            raise ValueError("slot_buffer must not be negative")
        if self.lunch is not None and not self.lunch[0] < self.lunch[1]:
            raise ValueError("lunch must end after it starts")
        if not self.name or not self.name.strip():
            raise ValueError("name must not be empty")
        if self.invite_within > self.horizon:
            raise ValueError(
                f"invite_within ({format_duration(self.invite_within)}) must not exceed "
                f"horizon ({format_duration(self.horizon)})"
            )
        if self.follow_up_duration > timedelta(hours=8):
            raise ValueError("follow_up_duration must be at most PT8H")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "invite_within": format_duration(self.invite_within),
            "accept_within": format_duration(self.accept_within),
            "horizon": format_duration(self.horizon),
            "follow_up_duration": format_duration(self.follow_up_duration),
            "escalate_after": format_duration(self.escalate_after),
            "clock": self.clock,
            "video": self.video,
            "hold": self.hold,
        }
        if self.lunch is not None:
            out["lunch"] = f"{self.lunch[0]:%H:%M}-{self.lunch[1]:%H:%M}"
        if self.slot_buffer:
            out["slot_buffer"] = format_duration(self.slot_buffer)
        if self.stages is not None:
            out["stages"] = sorted(self.stages)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicySet:
    """The policies of a file; the first one is the default."""

    policies: tuple[Policy, ...]
    source: str = "<built-in>"
    account_signals: SignalsPolicy = field(default_factory=SignalsPolicy)

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("at least one policy is required")
        names = [p.name for p in self.policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policy names must be unique: {', '.join(dupes)}")

    @property
    def default(self) -> Policy:
        return self.policies[0]

    def get(self, name: str | None) -> Policy:
        """The named policy, or the default for None; KeyError for an unknown name."""
        if name is None:
            return self.default
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise KeyError(name)

    def for_name(self, name: str | None) -> Policy:
        """The named policy; the default when unset or no longer in the file."""
        try:
            return self.get(name)
        except KeyError:
            return self.default

    def for_stage(self, name: str | None, stage: str | None) -> Policy | None:
        """The policy a meeting follows: the rep's when it covers the account's stage, else
        the first of the file that does; None when none does (tracked, never nudged)."""
        own = self.for_name(name)
        if own.covers(stage):
            return own
        return next((p for p in self.policies if p.covers(stage)), None)

    @property
    def max_horizon(self) -> timedelta:
        return max(p.horizon for p in self.policies)
