"""The emulator's own (deliberately independent) zone table: a few Windows names.

Kept apart from ``connectors/microsoft/windows_zones.py`` so the connector is never
tested against its own mapping. Values checked against CLDR windowsZones.xml
(territory 001).
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

EMULATOR_WINDOWS_ZONES = {
    "UTC": "UTC",
    "Pacific Standard Time": "America/Los_Angeles",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Romance Standard Time": "Europe/Paris",
    "W. Europe Standard Time": "Europe/Berlin",
    "GMT Standard Time": "Europe/London",
    "Tokyo Standard Time": "Asia/Tokyo",
    "India Standard Time": "Asia/Calcutta",
    "AUS Eastern Standard Time": "Australia/Sydney",
}


def emulator_zone(name: str) -> tzinfo | None:
    """tzinfo for a Windows name from the table above, or an IANA name; None if unknown."""
    if name.upper() == "UTC":
        return UTC
    iana = EMULATOR_WINDOWS_ZONES.get(name)
    if iana is not None:
        return UTC if iana == "UTC" else ZoneInfo(iana)
    if "/" in name:
        try:
            return ZoneInfo(name)
        except Exception:  # noqa: BLE001 - unknown key or bad path
            return None
    return None
