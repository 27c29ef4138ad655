"""RFC 3339 timestamps as the providers write them: UTC, ``Z``, a fixed number of digits.

Google writes milliseconds (``2026-01-05T09:00:00.123Z``), Graph seven fractional digits
(``2026-01-05T09:00:00.1234560Z``). Parsing stays with each emulator: the two accept
different inputs (Graph also takes times without an offset, in a separate zone field).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_stamp(value: datetime, *, digits: int) -> str:
    """``value`` in UTC with ``digits`` fractional digits (truncated, zero-padded) and Z."""
    value = value.astimezone(UTC)
    fraction = f"{value.microsecond:06d}".ljust(digits, "0")[:digits]
    return f"{value:%Y-%m-%dT%H:%M:%S}.{fraction}Z"
