"""Everything a request or a job needs, built once per process (or per test)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app import providers as registry
from app.clock import Clock
from app.config import Settings
from app.db.engine import Database
from app.db.leases import Holdings
from app.secrets import KeyRing
from connectors.base import CalendarProvider
from policies.model import PolicySet


@dataclass
class Wakers:
    """Callbacks that pull a background job forward (set by the scheduler)."""

    sync: Callable[[datetime | None], None] = lambda at: None
    due: Callable[[datetime | None], None] = lambda at: None
    deliveries: Callable[[datetime | None], None] = lambda at: None
    renewals: Callable[[datetime | None], None] = lambda at: None


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    policies: PolicySet
    providers: dict[str, CalendarProvider]
    keys: KeyRing  # NEXTSTEP_SECRET_KEY: encrypts secrets at rest, signs action tokens
    channels: dict[str, Any] = field(default_factory=dict)  # name → nudge channel
    instance_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    wake: Wakers = field(default_factory=Wakers)
    stopping: bool = False  # set on shutdown: jobs take no more work and hand back the rest
    held: Holdings = field(default_factory=Holdings)  # leases in hand, renewed by the heartbeat
    _counted: dict[str, registry.CountedProvider] = field(default_factory=dict, repr=False)
    # Webhook intake: stored channels by id as last read, to refuse a forgery without the
    # database; every accepted notification is still checked against the stored row.
    channel_cache: dict[str, Any] = field(default_factory=dict, repr=False)
    history: timedelta = timedelta(days=1)  # extra history read at registration

    def provider(self, name: str) -> CalendarProvider:
        """The provider ``name``, its calls counted for /metrics (``ProviderNotConfigured``
        when this process has none of that name)."""
        return registry.counted(self.providers, name, self._counted)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    def sync_since(self, now: datetime) -> datetime:
        """Where a full sync starts: meetings that ended within the last horizon."""
        back = max(
            self.policies.max_horizon + self.history, self.policies.account_signals.history_window
        )  # account health reads the past
        return now - back
