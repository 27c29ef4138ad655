"""Nudge webhooks to an HTTPS receiver behind a private CA named by REQUESTS_CA_BUNDLE
(the contract's TLS rule; httpx alone reads only SSL_CERT_FILE/SSL_CERT_DIR)."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.delivery.channels import Outbound, WebhookChannel
from tests.emulators.microsoft.harness import generate_self_signed_cert


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def https_receiver(tmp_path):
    cert = generate_self_signed_cert(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.certfile, cert.keyfile)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/hook", cert
    server.shutdown()
    server.server_close()
    thread.join()


async def test_webhook_trusts_the_ca_named_by_requests_ca_bundle(https_receiver, monkeypatch):
    url, cert = https_receiver
    out = Outbound(nudge_id="n-1", payload={"id": "n-1", "kind": "no_next_step"})
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)

    untrusting = WebhookChannel(url, "s3cret")
    refused = await untrusting.send(out)
    await untrusting.aclose()
    assert not refused.ok  # a private CA is not trusted by default

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert.certfile)
    channel = WebhookChannel(url, "s3cret")
    result = await channel.send(out)
    await channel.aclose()
    assert result.ok, result.detail
