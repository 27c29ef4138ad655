"""Reusable helpers to run the Microsoft emulator over HTTPS in tests.

    cert = generate_self_signed_cert(tmp_path)             # CN/SAN 127.0.0.1 + localhost
    monkeypatch.setenv(...) for k, v in trust_env(cert)     # MSAL (requests) + httpx trust it
    with run_emulator(cert) as ms:                          # uvicorn in a thread, HTTPS
        ms.emulator.add_user("rep@contoso.com")
        connector = MicrosoftConnector(ms.tenant_id, ms.client_id, ms.client_secret,
                                       authority=ms.authority, graph_root=ms.graph_root)
    with WebhookReceiver() as hook:                          # plain-HTTP webhook endpoint
        channel = await connector.watch(cal, hook.url)

``trust_env`` must be applied before the connector is built (httpx reads the CA bundle
at construction; MSAL's requests session reads it per request).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.emulators.common.server import LoopbackServer
from tests.emulators.common.tls import write_self_signed_certificate
from tests.emulators.microsoft.emulator import GraphEmulator


@dataclass(frozen=True)
class CertPair:
    certfile: str
    keyfile: str


def generate_self_signed_cert(directory: Path | str) -> CertPair:
    """A self-signed server certificate for 127.0.0.1/localhost (also its own CA)."""
    certfile, keyfile = write_self_signed_certificate(
        Path(directory), "emulator-cert.pem", "emulator-key.pem"
    )
    return CertPair(str(certfile), str(keyfile))


def ssl_context(cert: CertPair) -> ssl.SSLContext:
    """A client SSL context trusting the emulator (for raw httpx calls in tests)."""
    return ssl.create_default_context(cafile=cert.certfile)


def trust_env(cert: CertPair) -> dict[str, str]:
    """Environment variables that make MSAL (requests) and httpx trust the emulator."""
    return {"SSL_CERT_FILE": cert.certfile, "REQUESTS_CA_BUNDLE": cert.certfile}


@dataclass
class RunningEmulator:
    emulator: GraphEmulator
    base_url: str
    cert: CertPair
    _server: LoopbackServer

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.emulator.tenant_id}"

    @property
    def graph_root(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def tenant_id(self) -> str:
        return self.emulator.tenant_id

    @property
    def client_id(self) -> str:
        return self.emulator.default_client_id

    @property
    def client_secret(self) -> str:
        return self.emulator.default_client_secret

    def stop(self) -> None:
        self._server.stop()
        self.emulator.stop_sender()


def start_emulator(cert: CertPair, emulator: GraphEmulator | None = None) -> RunningEmulator:
    """Serve the emulator over HTTPS on 127.0.0.1 (random port) in a background thread."""
    emulator = emulator or GraphEmulator(ca_file=cert.certfile)
    if emulator.ca_file is None:
        emulator.ca_file = cert.certfile
    server = LoopbackServer(
        emulator.app, name="graph-emulator", certfile=cert.certfile, keyfile=cert.keyfile
    )
    emulator.base_url = server.base_url
    server.start()
    emulator.start_sender()
    return RunningEmulator(emulator, emulator.base_url, cert, server)


@contextmanager
def run_emulator(
    cert: CertPair, emulator: GraphEmulator | None = None
) -> Iterator[RunningEmulator]:
    """Context manager around ``start_emulator``; always stops the server thread."""
    running = start_emulator(cert, emulator)
    try:
        yield running
    finally:
        running.stop()


# --- a webhook endpoint for subscription tests -------------------------------------


@dataclass
class WebhookReceiver:
    """A plain-HTTP endpoint on 127.0.0.1 that answers Graph's validation handshake.

    ``mode``: ``"echo"`` (correct), ``"wrong"`` (bad body), ``"json"`` (wrong type),
    ``"error"`` (500), ``"slow"`` (sleeps ``delay`` seconds, then echoes).
    Every POST is recorded in ``received`` as ``(path, query, body)``.
    """

    mode: str = "echo"
    delay: float = 0.0
    received: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/webhooks/microsoft"

    def notifications(self, path_suffix: str = "/webhooks/microsoft") -> list[Any]:
        return [
            body
            for path, query, body in self.received
            if path == path_suffix and "validationToken" not in query
        ]

    def validations(self) -> list[str]:
        return [path for path, query, _ in self.received if "validationToken" in query]

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                receiver.received.append((parts.path, query, body))
                token = query.get("validationToken")
                if token is not None:
                    if receiver.mode == "slow":
                        time.sleep(receiver.delay)
                    if receiver.mode == "error":
                        self._send(500, "text/plain", b"boom")
                    elif receiver.mode == "wrong":
                        self._send(200, "text/plain", b"not-the-token")
                    elif receiver.mode == "json":
                        self._send(200, "application/json", json.dumps(token).encode())
                    else:
                        self._send(200, "text/plain; charset=utf-8", token.encode())
                    return
                self._send(202, "text/plain", b"")

            def _send(self, status: int, ctype: str, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = None


# --- conveniences for end-to-end tests ----------------------------------------------


def register_user(running: RunningEmulator, email: str, **options: Any) -> str:
    """Add a mailbox to the emulator; returns its Entra object id (what notifications name).

    Options: ``allowed=False`` (application access policy refuses it),
    ``rest_enabled=False`` (MailboxNotEnabledForRESTAPI), ``honour_prefer_timezone=False``
    (times come in each event's own Windows/IANA zone), ``share_details=False``.
    """
    return running.emulator.add_user(email, **options).id


def app_env(running: RunningEmulator) -> dict[str, str]:
    """NEXTSTEP_* settings (and CA trust) that point the app at this emulator."""
    return {
        "NEXTSTEP_MS_TENANT_ID": running.tenant_id,
        "NEXTSTEP_MS_CLIENT_ID": running.client_id,
        "NEXTSTEP_MS_CLIENT_SECRET": running.client_secret,
        "NEXTSTEP_MS_AUTHORITY": running.authority,
        "NEXTSTEP_GRAPH_API_ROOT": running.graph_root,
        **trust_env(running.cert),
    }


def connector_kwargs(running: RunningEmulator) -> dict[str, Any]:
    """Keyword arguments for ``MicrosoftConnector(**connector_kwargs(running))``."""
    return {
        "tenant_id": running.tenant_id,
        "client_id": running.client_id,
        "client_secret": running.client_secret,
        "authority": running.authority,
        "graph_root": running.graph_root,
    }
