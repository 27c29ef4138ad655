"""Crash points for the crash-safety tests: the process really dies (SIGKILL) at a line.

``NEXTSTEP_TEST_CRASH_AT=<point>`` (comma-separated for several) arms them; unset — the
default, and always in production — a crash point is one dictionary lookup. A point fires
once per process, the first time its line runs. The points:

- ``rep.inserted``: a registration stored the rep, no channel opened, no sync done
- ``meeting.claimed``: due meetings are leased to this process, none decided yet
- ``meeting.decided``: a nudge and its outbox rows are committed, nothing delivered yet
- ``delivery.sent``: the receiver accepted the nudge, the outbox row is not marked yet
- ``sync.page_applied``: a sync page and its cursor are committed, more pages to come
- ``renewal.stored``: the renewed channel is stored, the old one not stopped yet
"""

from __future__ import annotations

import logging
import os
import signal
import sys

log = logging.getLogger(__name__)
_ARMED = frozenset(
    p.strip() for p in os.environ.get("NEXTSTEP_TEST_CRASH_AT", "").split(",") if p.strip()
)


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when ``name`` is armed (tests only)."""
    if name not in _ARMED:
        return
    log.warning("test.crash_point", extra={"point": name, "pid": os.getpid()})
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
