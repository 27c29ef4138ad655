"""Graph's date-time forms: ``Edm.DateTimeOffset`` and ``dateTimeTimeZone.dateTime``."""

from __future__ import annotations

import itertools
from datetime import datetime

from tests.emulators.common.rfc3339 import utc_stamp


def fmt7(dt: datetime) -> str:
    """Graph's Edm.DateTimeOffset with 7 fractional digits and Z."""
    return utc_stamp(dt, digits=7)


def fmt_local(dt: datetime) -> str:
    """Graph's dateTimeTimeZone.dateTime: wall time, 7 fractional digits, no offset."""
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond:06d}0"


def parse_dt(value: str) -> datetime:
    """A Graph date-time (offset optional; more than 6 fractional digits are cut)."""
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, frac = text.partition(".")
        digits = "".join(itertools.takewhile(str.isdigit, frac))
        text = f"{head}.{(digits + '000000')[:6]}{frac[len(digits) :]}"
    return datetime.fromisoformat(text)
