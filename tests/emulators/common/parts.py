"""``Forward``: a test knob on the emulator that lives on one of its parts.

    class GraphEmulator(GraphState):
        latency = Forward("api")      # emu.latency reads and sets emu.api.latency

Tests set knobs on the emulator object (``emu.latency = 0.5``); the part that uses the
knob owns it, so nothing copies a value that could go stale.
"""

from __future__ import annotations

from typing import Any


class Forward:
    """An attribute read from and written to ``getattr(obj, part)`` under the same name."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self.part), self.name)

    def __set__(self, obj: object, value: Any) -> None:
        setattr(getattr(obj, self.part), self.name, value)
