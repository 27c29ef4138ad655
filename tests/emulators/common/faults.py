"""Fault-injection primitives: calls that fail on cue, and calls held until let through.

    faults = FaultQueue[MyFault]()
    faults.add(MyFault(503), call="events.list", count=2)   # call=None: any call
    fault = faults.take("events.list")                      # the first one for this call

    gates = Gates()
    gates.block("events.list")      # every events.list waits ...
    await gates.pass_through("events.list")
    gates.unblock()                 # ... until here

Both are thread-safe; ``gates.waiting`` counts the calls held, per name.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Generic, TypeVar

F = TypeVar("F")


class FaultQueue(Generic[F]):
    """Faults waiting for their calls, taken in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[tuple[str | None, F]] = []

    def add(self, fault: F, *, call: str | None = None, count: int = 1) -> None:
        """The next ``count`` calls named ``call`` (or any call) get ``fault``."""
        with self._lock:
            self._waiting.extend((call, fault) for _ in range(count))

    def take(self, call: str) -> F | None:
        """Remove and return the first fault meant for ``call`` (None: the call goes through)."""
        with self._lock:
            for index, (target, fault) in enumerate(self._waiting):
                if target in (None, call):
                    del self._waiting[index]
                    return fault
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)


class Gates:
    """Calls of a name held until ``unblock``: a test sees a call in flight and acts meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Event] = {}
        self.waiting: Counter[str] = Counter()  # calls now held, per name

    def block(self, call: str) -> None:
        """Hold every call named ``call`` from now on."""
        with self._lock:
            self._gates.setdefault(call, threading.Event())

    def unblock(self, call: str | None = None) -> None:
        """Let held calls named ``call`` (or every held call) through."""
        with self._lock:
            names = [call] if call is not None else list(self._gates)
            for name in names:
                gate = self._gates.pop(name, None)
                if gate is not None:
                    gate.set()

    async def pass_through(self, call: str, timeout: float = 30) -> None:
        """Wait (at most ``timeout`` s) while ``call`` is blocked; return at once otherwise."""
        gate = self._gates.get(call)
        if gate is None:
            return
        with self._lock:
            self.waiting[call] += 1
        await asyncio.to_thread(gate.wait, timeout)
        with self._lock:
            self.waiting[call] -= 1
