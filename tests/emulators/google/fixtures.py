"""pytest fixtures for the Google emulator; import them into a test module to use them."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from connectors.google.connector import GoogleConnector
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.harness import GoogleTestEnv, setup_google

REP = "rep@corp.test"


@pytest.fixture
def google_emulator() -> Iterator[GoogleEmulator]:
    """A started emulator, stopped (threads joined) after the test."""
    emu = GoogleEmulator.start()
    try:
        yield emu
    finally:
        emu.stop()
    # connectors are closed before this teardown runs: nothing of ours may survive it
    leftover = [
        t.name
        for t in threading.enumerate()
        if t.is_alive() and t.name.startswith(("google-emu", "google-cal"))
    ]
    assert not leftover, f"threads left running: {leftover}"


@pytest.fixture
def google_env(google_emulator: GoogleEmulator, tmp_path: Path) -> GoogleTestEnv:
    """The emulator with one rep (``REP``) and a delegated service-account key."""
    return setup_google(google_emulator, tmp_path, reps=[REP])


@pytest_asyncio.fixture
async def google_connector(google_env: GoogleTestEnv) -> AsyncIterator[GoogleConnector]:
    """A GoogleConnector against the emulator with tiny backoffs and small pages."""
    connector = GoogleConnector(
        str(google_env.key_file),
        google_env.emulator.api_root,
        backoff_base=0.001,
        backoff_cap=0.005,
        page_size=3,
        http_timeout=5.0,
    )
    try:
        yield connector
    finally:
        await connector.aclose()
