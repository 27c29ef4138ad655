"""The providers' side of webhooks: POSTs queued by an emulator, sent from one thread.

    push = PushQueue(post, name="google-emu-push", timeout=5.0)
    push.start(verify=ca_file)              # the thread and its httpx client
    done = push.submit(delivery)            # set once POSTed (or dropped)
    push.wait_idle(5.0); push.close()

``post(client, delivery)`` sends one delivery the provider's way and returns the response;
its status (or the transport error) is written back on the delivery, which then joins
``log``. Test knobs make the queue misbehave as providers may: ``drop_next(n)`` loses
the next deliveries, ``duplicate_next(n)`` sends the next ones twice,
``hold()``/``release(reverse=)`` keeps them back and lets them go (in order or reversed).
"""

from __future__ import annotations

import copy
import queue
import ssl
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import httpx


class Outcome(Protocol):
    """What a delivery records about its POST."""

    status: int | None
    error: str | None


D = TypeVar("D", bound=Outcome)


def client_verify(ca_file: str | None) -> ssl.SSLContext | bool:
    """httpx ``verify``: the emulator's own CA when it serves HTTPS, else the system store."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


class PushQueue(Generic[D]):
    """Deliveries POSTed in order from a background thread, with knobs to lose or repeat."""

    def __init__(
        self,
        post: Callable[[httpx.Client, D], httpx.Response],
        *,
        name: str,
        timeout: float,
        trust_env: bool = True,
        log_dropped: bool = False,
    ) -> None:
        self._post = post
        self._name = name
        self._timeout = timeout
        self._trust_env = trust_env
        # Graph's emulator lists a dropped notification (error "dropped"); Google's does not.
        self._log_dropped = log_dropped
        self._queue: queue.Queue[tuple[D, threading.Event] | None] = queue.Queue()
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self.drop = 0
        self.duplicate = 0
        self.held: list[tuple[D, threading.Event]] | None = None
        self.log: list[D] = []

    def start(self, *, verify: str | None = None) -> None:
        """Start the sender (a no-op when running); ``verify`` is a CA file to trust."""
        if self._thread is None:
            client = httpx.Client(
                timeout=self._timeout, verify=client_verify(verify), trust_env=self._trust_env
            )
            self._thread = threading.Thread(
                target=self._run, args=(client,), name=self._name, daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Send what is queued, then stop the sender thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def submit(self, delivery: D, *, knobs: bool = True) -> threading.Event:
        """Queue ``delivery`` (subject to ``drop``/``duplicate``/``hold`` when ``knobs``)."""
        done = threading.Event()
        with self._lock:
            if knobs and self.drop > 0:
                self.drop -= 1
                if self._log_dropped:
                    delivery.error = "dropped"
                    self.log.append(delivery)
                done.set()
                return done
            copies = 1
            if knobs and self.duplicate > 0:
                self.duplicate -= 1
                copies = 2
            for _ in range(copies):
                item = (copy.deepcopy(delivery), done)
                self._pending += 1
                if self.held is not None:
                    self.held.append(item)
                else:
                    self._queue.put(item)
        return done

    def drop_next(self, count: int) -> None:
        """Lose the next ``count`` deliveries (that are subject to the knobs)."""
        with self._lock:
            self.drop += count

    def duplicate_next(self, count: int) -> None:
        """Send each of the next ``count`` deliveries twice."""
        with self._lock:
            self.duplicate += count

    def hold(self) -> None:
        """Keep deliveries back until ``release``."""
        with self._lock:
            if self.held is None:
                self.held = []

    def release(self, *, reverse: bool = False) -> None:
        """Send what was held, in order or reversed."""
        with self._lock:
            held, self.held = self.held or [], None
            for item in reversed(held) if reverse else held:
                self._queue.put(item)

    def wait_idle(self, timeout: float) -> None:
        """Block until every queued delivery has been POSTed."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("notifications still pending")
                self._lock.wait(left)

    def _run(self, client: httpx.Client) -> None:
        with client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                delivery, done = item
                try:
                    delivery.status = self._post(client, delivery).status_code
                except httpx.HTTPError as err:
                    delivery.error = repr(err)
                with self._lock:
                    self.log.append(delivery)
                    self._pending -= 1
                    self._lock.notify_all()
                done.set()
