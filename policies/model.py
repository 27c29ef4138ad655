"""Policy value objects and ISO 8601 durations. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from policies.signals import SignalsPolicy

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
    video: bool = True  # the follow-up invitation carries a Meet / Teams link
    hold: bool = False  # a nudge with slots places a tentative hold at the first slot

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("name must not be empty")
        if self.invite_within > self.horizon:
            raise ValueError(
                f"invite_within ({format_duration(self.invite_within)}) must not exceed "
                f"horizon ({format_duration(self.horizon)})"
            )
        if self.follow_up_duration > timedelta(hours=8):
            raise ValueError("follow_up_duration must be at most PT8H")

    def to_dict(self) -> dict[str, str | bool]:
        return {
            "name": self.name,
            "invite_within": format_duration(self.invite_within),
            "accept_within": format_duration(self.accept_within),
            "horizon": format_duration(self.horizon),
            "follow_up_duration": format_duration(self.follow_up_duration),
            "escalate_after": format_duration(self.escalate_after),
            "video": self.video,
            "hold": self.hold,
        }


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

    @property
    def max_horizon(self) -> timedelta:
        return max(p.horizon for p in self.policies)
