"""Push notifications on watch channels, as the guide "Push notifications" shows them.

A notification is a POST with an empty body and ``X-Goog-*`` headers; message numbers
increase but are not consecutive. ``sync`` is sent when a channel is made, ``exists``
after every change of the watched calendar. Deliveries go out from a ``PushQueue``
thread (``common/push.py``), so the test knobs (drop, duplicate, hold/release) apply.

``Sink`` is a receiver on the emulator itself (``/_sink/{key}``) that records headers.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from email.utils import format_datetime

import httpx
from starlette.requests import Request
from starlette.responses import Response

from tests.emulators.common.push import PushQueue
from tests.emulators.google.state import Channel


@dataclass
class Delivery:
    channel_id: str
    address: str
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None


def _post(client: httpx.Client, delivery: Delivery) -> httpx.Response:
    return client.post(delivery.address, headers=delivery.headers, content=b"")


class ChannelNotifier:
    """Builds each channel's notifications and hands them to the push thread."""

    def __init__(self, lock: threading.RLock, rng: random.Random) -> None:
        self._lock = lock
        self._rng = rng
        self.push: PushQueue[Delivery] = PushQueue(
            _post, name="google-emu-push", timeout=5.0, trust_env=False
        )
        self.sync_before_watch_response = False  # see GoogleEmulator

    def send(self, channel: Channel, state: str) -> threading.Event:
        """One notification (``sync``/``exists``) on ``channel``; set once delivered."""
        with self._lock:
            if channel.message_number == 0:
                channel.message_number = 1
            else:
                channel.message_number += self._rng.randint(1, 3)  # increasing, not consecutive
            headers = {
                "X-Goog-Channel-ID": channel.id,
                "X-Goog-Channel-Expiration": format_datetime(channel.expires_at, usegmt=True),
                "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": str(channel.message_number),
                "X-Goog-Resource-ID": channel.resource_id,
                "X-Goog-Resource-URI": channel.resource_uri,
                "Content-Length": "0",
            }
            if channel.token is not None:
                headers["X-Goog-Channel-Token"] = channel.token
            return self.push.submit(Delivery(channel.id, channel.address, headers))

    def changed(self, channels: list[Channel]) -> None:
        """A change on a calendar: every live channel on it gets an ``exists`` message."""
        for channel in channels:
            self.send(channel, "exists")


class Sink:
    """A notification receiver on the emulator: what reached ``/_sink/{key}``, per key."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.received: dict[str, list[dict[str, str]]] = {}

    async def receive(self, request: Request) -> Response:
        with self._lock:
            self.received.setdefault(request.path_params["key"], []).append(dict(request.headers))
        return Response(status_code=200)

    def wait(self, key: str, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        """Wait until ``count`` notifications reached ``key``; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = list(self.received.get(key, []))
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"sink {key}: expected {count} notifications, got {len(got)}")
