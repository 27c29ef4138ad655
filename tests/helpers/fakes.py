"""Fakes for our own seams (never mock.patch)."""

from __future__ import annotations

from app.delivery.channels.base import DeliveryResult, Outbound


class RecordingChannel:
    """A nudge channel that keeps what it is sent; can be told to fail first."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self.fail_next = 0

    async def send(self, out: Outbound) -> DeliveryResult:
        if self.fail_next > 0:
            self.fail_next -= 1
            return DeliveryResult(ok=False, retryable=True, detail="recording: told to fail")
        self.sent.append(out)
        return DeliveryResult(ok=True, retryable=False)

    async def aclose(self) -> None:
        return None

    def kinds(self) -> list[str]:
        return [o.payload["kind"] for o in self.sent]
