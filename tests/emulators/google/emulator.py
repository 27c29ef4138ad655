"""A Google Calendar v3 + OAuth token endpoint emulator for tests, served on loopback.

The real google-auth and google-api-python-client talk to it over HTTP. See README.md
beside this file for what it reproduces and which Google pages it follows.

    with GoogleEmulator.start() as emu:
        key_file = write_service_account(emu, tmp_path)       # harness.py
        emu.add_user("rep@corp.test")
        connector = GoogleConnector(str(key_file), emu.api_root, ...)

``GoogleEmulator`` is the model (``state.CalendarStore``: users, events, channels and
the admin changes tests make) with the other parts attached: ``auth`` (service accounts,
the token endpoint), ``faults``/``gates`` (injected failures, held calls), ``notifier``
(push notifications) and ``api`` (the HTTP endpoints, ``handlers.py``). The methods
below are the test controls of those parts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tests.emulators.common.faults import FaultQueue, Gates
from tests.emulators.common.parts import Forward
from tests.emulators.common.server import LoopbackServer
from tests.emulators.common.tls import write_loopback_certificate
from tests.emulators.google.auth import GOOGLE_TOKEN_URL, JWT_BEARER, ServiceAccounts
from tests.emulators.google.faults import Fault
from tests.emulators.google.handlers import SYNC_TOKEN_FORBIDDEN, CalendarAPI, RecordedRequest
from tests.emulators.google.notifier import ChannelNotifier, Delivery, Sink
from tests.emulators.google.oauth import GoogleOAuth
from tests.emulators.google.state import CalendarStore

__all__ = ["GOOGLE_TOKEN_URL", "JWT_BEARER", "SYNC_TOKEN_FORBIDDEN", "GoogleEmulator"]


class GoogleEmulator(CalendarStore):
    """In-memory Google Calendar v3 with an OAuth 2.0 JWT-bearer token endpoint."""

    api_root = Forward("api")  # set when served: http(s)://127.0.0.1:<port>/
    token_uri = Forward("auth")
    token_lifetime = Forward("auth")  # seconds an access token lasts
    # Google sends the ``sync`` message concurrently with the watch response; True makes
    # the response wait for it, so it always arrives first.
    sync_before_watch_response = Forward("notifier")

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__(seed=seed, on_change=self._changed)
        self.calls: Counter[str] = Counter()
        self.requests: list[RecordedRequest] = []
        self.auth = ServiceAccounts(self._lock, self.calls, self.calendars.__contains__)
        self.service_accounts = self.auth.service_accounts
        self.delegations = self.auth.delegations
        self.access_tokens = self.auth.access_tokens
        self.faults: FaultQueue[Fault] = FaultQueue()
        self.gates = Gates()
        self.waiting = self.gates.waiting
        self.notifier = ChannelNotifier(self._lock, self._rng)
        self._sink = Sink(self._lock)
        self.sink = self._sink.received
        self.api = CalendarAPI(
            store=self,
            auth=self.auth,
            faults=self.faults,
            gates=self.gates,
            notifier=self.notifier,
            sink=self._sink,
            calls=self.calls,
            requests=self.requests,
        )
        self.oauth = GoogleOAuth(self.auth)
        self.api.oauth = self.oauth
        self.app = self.api.app()
        self.ca_file: Path | None = None
        self._server: LoopbackServer | None = None

    # tests/connectors/test_google_sync.py reads the model's listing directly
    _list_items = CalendarStore.list_items

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    def start(cls, *, seed: int = 0, tls_dir: Path | None = None) -> GoogleEmulator:
        """Serve a new emulator on 127.0.0.1 on a free port, in a background thread.

        With ``tls_dir`` it serves HTTPS with a certificate from a throw-away CA written
        there; ``ca_file`` is the CA to trust (e.g. through ``SSL_CERT_FILE``).
        """
        emu = cls(seed=seed)
        emu._serve(tls_dir)
        return emu

    def _serve(self, tls_dir: Path | None = None) -> None:
        tls: dict[str, str] = {}
        if tls_dir is not None:
            ca, cert, key = write_loopback_certificate(tls_dir)
            self.ca_file = ca
            tls = {"certfile": str(cert), "keyfile": str(key)}
        self._server = LoopbackServer(self.app, name="google-emu", **tls)
        self.api_root = f"{self._server.base_url}/"
        self.token_uri = f"{self.api_root}token"
        self.oauth.root = self.api_root
        self._server.start()
        self.notifier.push.start(verify=str(self.ca_file) if self.ca_file else None)

    def stop(self) -> None:
        """Stop deliveries and the server; joins every thread it started."""
        self.gates.unblock()
        self.notifier.push.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> GoogleEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- identities (auth.py) ------------------------------------------------------------

    def register_service_account(
        self, *, client_email: str, client_id: str, private_key_id: str, public_key_pem: bytes
    ) -> None:
        """Know a service account's public key (what Google holds for a created key)."""
        self.auth.register_service_account(
            client_email=client_email,
            client_id=client_id,
            private_key_id=private_key_id,
            public_key_pem=public_key_pem,
        )

    def authorize_client(self, client_id: str, scopes: Iterable[str]) -> None:
        """Admin console: Security > API controls > Domain-wide delegation > Add new."""
        self.auth.authorize_client(client_id, scopes)

    def revoke_client(self, client_id: str) -> None:
        """Remove the delegation; new token requests get ``unauthorized_client``."""
        self.auth.revoke_client(client_id)

    def revoke_tokens(self, subject: str | None = None) -> None:
        """Invalidate issued access tokens (all, or a subject's): next API call → 401."""
        self.auth.revoke_tokens(subject)

    # --- faults and held calls (faults.py, common/faults.py) ---------------------------

    def fail_next(
        self,
        count: int,
        status: int,
        reason: str | None = None,
        *,
        method: str | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next ``count`` API calls (of ``method``, or any) fail with Google's error JSON.

        ``body`` replaces the generated JSON verbatim (e.g. a documented sample).
        """
        self.faults.add(Fault(status, reason, body, retry_after), call=method, count=count)

    def block(self, method: str) -> None:
        """Hold every call of ``method`` (e.g. ``"events.list"``) until ``unblock``.

        ``waiting[method]`` tells how many calls are held: a test can see a sync in flight.
        """
        self.gates.block(method)

    def unblock(self, method: str | None = None) -> None:
        """Let held calls of ``method`` (or of every method) through."""
        self.gates.unblock(method)

    # --- notifications (notifier.py) ---------------------------------------------------

    def send_stale_notification(self, channel_id: str, state: str = "exists") -> threading.Event:
        """Deliver on a stopped/expired channel, as Google may do for a little while."""
        return self.notifier.send(self.channels[channel_id], state)

    def drop_next_notifications(self, count: int) -> None:
        self.notifier.push.drop_next(count)

    def duplicate_next_notifications(self, count: int) -> None:
        self.notifier.push.duplicate_next(count)

    def hold_notifications(self) -> None:
        """Queue notifications without sending them until ``release_notifications``."""
        self.notifier.push.hold()

    def release_notifications(self, *, reverse: bool = False) -> None:
        self.notifier.push.release(reverse=reverse)

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.notifier.push.log)

    def sink_url(self, key: str) -> str:
        """A callback address on the emulator itself that records what it receives."""
        return f"{self.api_root}_sink/{key}"

    def wait_for_sink(self, key: str, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        """Wait until ``count`` notifications reached ``sink_url(key)``; return them all."""
        return self._sink.wait(key, count, timeout)

    def _changed(self, calendar: str) -> None:
        self.notifier.changed(self.live_channels(calendar))

    # --- observation -------------------------------------------------------------------

    def requests_for(self, method: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method]
