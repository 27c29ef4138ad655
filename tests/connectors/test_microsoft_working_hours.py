"""Outlook working hours: ``GET /users/{id}/mailboxSettings`` through the real connector."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time

import pytest

from connectors.base import CalendarRef, ProviderHours
from connectors.microsoft.connector import MicrosoftConnector
from tests.emulators.microsoft.harness import (
    CertPair,
    RunningEmulator,
    generate_self_signed_cert,
    run_emulator,
    trust_env,
)

REP = "rep@contoso.com"
CAL = CalendarRef(rep_id="rep-1", email=REP)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    return generate_self_signed_cert(tmp_path_factory.mktemp("ms-cert"))


@pytest.fixture
def ms(cert: CertPair, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    for key, value in trust_env(cert).items():
        monkeypatch.setenv(key, value)
    with run_emulator(cert) as running:
        running.emulator.add_user(REP, working_time_zone="Romance Standard Time")
        running.emulator.register_app(
            "settings", "settings-secret", roles={"Calendars.ReadWrite", "MailboxSettings.Read"}
        )
        yield running


def connector(ms: RunningEmulator, client_id: str, secret: str) -> MicrosoftConnector:
    return MicrosoftConnector(
        ms.tenant_id, client_id, secret, authority=ms.authority, graph_root=ms.graph_root
    )


async def test_the_mailboxs_working_hours_in_its_zone(ms: RunningEmulator) -> None:
    ms.emulator.set_mailbox(
        REP,
        working_days=("monday", "tuesday", "wednesday", "thursday"),
        working_start="08:30:00.0000000",
        working_end="16:00:00.0000000",
    )
    conn = connector(ms, "settings", "settings-secret")
    try:
        hours = await conn.working_hours(CAL)
    finally:
        await conn.aclose()
    assert hours == ProviderHours(
        days=(0, 1, 2, 3), start=time(8, 30), end=time(16), time_zone="Europe/Paris"
    )
    assert ms.emulator.calls["GET mailboxSettings"] == 1


async def test_without_mailbox_settings_permission_getschedule_tells(ms: RunningEmulator) -> None:
    ms.emulator.set_mailbox(REP, working_start="07:30:00.0000000")
    conn = connector(ms, ms.client_id, ms.client_secret)  # Calendars.ReadWrite only
    try:
        hours = await conn.working_hours(CAL)
    finally:
        await conn.aclose()
    assert ms.emulator.calls["GET mailboxSettings"] == 1  # refused: 403 ErrorAccessDenied
    assert hours == ProviderHours(
        days=(0, 1, 2, 3, 4), start=time(7, 30), end=time(17), time_zone="Europe/Paris"
    )


async def test_an_unknown_mailbox_has_none(ms: RunningEmulator) -> None:
    conn = connector(ms, "settings", "settings-secret")
    try:
        assert await conn.working_hours(CalendarRef(rep_id="x", email="ghost@contoso.com")) is None
    finally:
        await conn.aclose()
