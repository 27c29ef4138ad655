"""Shared fixtures: one database fixture over SQLite and PostgreSQL, a runtime on a
manual clock with the sandbox provider, and a recording nudge channel (a fake, not a mock).

PostgreSQL comes from NEXTSTEP_TEST_POSTGRES_URL (scripts/check starts a throwaway
server and sets it). Each test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from app.clock import ManualClock
from app.config import load_settings
from app.main import build_runtime, close_runtime
from app.runtime import Runtime
from app.simulation import Simulation
from tests.helpers.fakes import RecordingChannel
from tests.helpers.serve import TEST_SECRET_KEY

os.environ.setdefault("NEXTSTEP_SECRET_KEY", TEST_SECRET_KEY)  # runtimes built in-process

BACKENDS = ("sqlite", "postgresql")


def postgres_url() -> str:
    url = os.environ.get("NEXTSTEP_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "NEXTSTEP_TEST_POSTGRES_URL is not set: run the suite with `bash scripts/check`, "
            "which starts a throwaway PostgreSQL"
        )
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/nextstep.db"
        return
    base = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel()


@pytest.fixture
async def rt(
    database_url: str, clock: ManualClock, channel: RecordingChannel
) -> AsyncIterator[Runtime]:
    """A runtime on the sandbox provider, a manual clock and a recording channel."""
    settings = load_settings(
        database_url=database_url,
        sandbox=True,
        internal_domains="seller.io",
        api_keys="test-key",
        # Time stands still in these tests: a change right after a sync is synced at once
        # (tests/sync/test_coalescing.py covers the burst debounce).
        sync_min_interval_seconds=0,
    )
    if not database_url.startswith("sqlite"):
        from app.db import migrate
        from app.db.engine import make_engine

        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
    runtime = build_runtime(settings, clock=clock, channels={"recording": channel})
    yield runtime
    await close_runtime(runtime)


@pytest.fixture
def sim(rt: Runtime) -> Simulation:
    return Simulation(rt)
