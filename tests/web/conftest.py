"""Fixtures of the web tests: the identity emulators and the service in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.web import flows
from tests.web.flows import Stack


@pytest.fixture
def emulators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    yield from flows.emulators(tmp_path, monkeypatch)


@pytest.fixture
async def stack(database_url: str, emulators: tuple) -> AsyncIterator[Stack]:
    async with flows.running_stack(database_url, emulators) as running:
        yield running
