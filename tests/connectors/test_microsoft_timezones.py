"""Graph zone names (Windows via CLDR windowsZones, IANA) and dateTimeTimeZone parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from connectors.microsoft._generate_windows_zones import generate
from connectors.microsoft.timezones import (
    all_day_bound,
    from_date_time_time_zone,
    iana_name,
    to_graph,
)
from connectors.microsoft.windows_zones import WINDOWS_TO_IANA


def test_cldr_table_is_complete_and_valid() -> None:
    assert len(WINDOWS_TO_IANA) >= 130
    for windows, iana in WINDOWS_TO_IANA.items():
        ZoneInfo(iana)  # every target exists in tzdata
        assert windows == windows.strip()
    # territory "001" golden zones, as CLDR publishes them
    assert WINDOWS_TO_IANA["Romance Standard Time"] == "Europe/Paris"
    assert WINDOWS_TO_IANA["Eastern Standard Time"] == "America/New_York"
    assert WINDOWS_TO_IANA["Pacific Standard Time"] == "America/Los_Angeles"
    assert WINDOWS_TO_IANA["W. Europe Standard Time"] == "Europe/Berlin"
    assert WINDOWS_TO_IANA["India Standard Time"] == "Asia/Calcutta"
    assert WINDOWS_TO_IANA["China Standard Time"] == "Asia/Shanghai"


def test_generator_keeps_only_territory_001(tmp_path) -> None:
    xml = tmp_path / "windowsZones.xml"
    xml.write_text(
        """<?xml version="1.0" encoding="UTF-8" ?>
<supplementalData><windowsZones><mapTimezones otherVersion="x" typeVersion="y">
<mapZone other="Romance Standard Time" territory="001" type="Europe/Paris"/>
<mapZone other="Romance Standard Time" territory="BE" type="Europe/Brussels"/>
<mapZone other="Alaskan Standard Time" territory="001" type="America/Anchorage"/>
<mapZone other="Alaskan Standard Time" territory="US" type="America/Anchorage America/Juneau"/>
</mapTimezones></windowsZones></supplementalData>""",
        encoding="utf-8",
    )
    namespace: dict = {}
    exec(generate(xml), namespace)  # noqa: S102 - our own generated module
    assert namespace["WINDOWS_TO_IANA"] == {
        "Alaskan Standard Time": "America/Anchorage",
        "Romance Standard Time": "Europe/Paris",
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Romance Standard Time", "Europe/Paris"),
        ("romance standard time", "Europe/Paris"),
        ("Eastern Standard Time", "America/New_York"),
        ("UTC", "UTC"),
        ("tzone://Microsoft/Utc", "UTC"),
        ("Europe/Paris", "Europe/Paris"),
        ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
        ("Customized Time Zone", None),
        ("tzone://Microsoft/Custom", None),
        ("Mars/Olympus_Mons", None),
        (None, None),
    ],
)
def test_iana_name(name, expected) -> None:
    assert iana_name(name) == expected


def test_windows_zone_wall_times_follow_dst() -> None:
    winter = {"dateTime": "2026-01-15T09:00:00.0000000", "timeZone": "Romance Standard Time"}
    summer = {"dateTime": "2026-07-15T09:00:00.0000000", "timeZone": "Romance Standard Time"}
    assert from_date_time_time_zone(winter) == datetime(2026, 1, 15, 8, tzinfo=UTC)
    assert from_date_time_time_zone(summer) == datetime(2026, 7, 15, 7, tzinfo=UTC)
    eastern = {"dateTime": "2026-03-09T09:30:00.1234567", "timeZone": "Eastern Standard Time"}
    assert from_date_time_time_zone(eastern) == datetime(2026, 3, 9, 13, 30, 0, 123456, tzinfo=UTC)


def test_unknown_zone_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        from_date_time_time_zone({"dateTime": "2026-01-15T09:00:00", "timeZone": "Nowhere Time"})
    with pytest.raises(ValueError):
        from_date_time_time_zone({"timeZone": "UTC"})


def test_all_day_is_the_floating_date() -> None:
    assert all_day_bound(
        {"dateTime": "2026-05-01T00:00:00.0000000", "timeZone": "Tokyo Standard Time"}
    ) == datetime(2026, 5, 1, tzinfo=UTC)


def test_to_graph() -> None:
    dt = datetime(2026, 7, 15, 7, 0, tzinfo=UTC)
    assert to_graph(dt) == {"dateTime": "2026-07-15T07:00:00", "timeZone": "UTC"}
    assert to_graph(dt, "Europe/Paris") == {
        "dateTime": "2026-07-15T09:00:00",
        "timeZone": "Europe/Paris",
    }
    with pytest.raises(ValueError):
        to_graph(datetime(2026, 7, 15))


def test_ssl_context_from_env(tmp_path) -> None:
    import ssl

    from connectors.microsoft.client import ssl_context_from_env
    from tests.emulators.microsoft.harness import generate_self_signed_cert

    assert ssl_context_from_env({}) is True
    cert = generate_self_signed_cert(tmp_path)
    ctx = ssl_context_from_env({"REQUESTS_CA_BUNDLE": cert.certfile})
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.cert_store_stats()["x509_ca"] >= 1
    with pytest.raises(ValueError, match="SSL_CERT_FILE"):
        ssl_context_from_env({"SSL_CERT_FILE": str(tmp_path / "missing.pem")})
