"""The service in-process (ASGI) with the Google and Microsoft identity emulators over
HTTPS, and what a browser does with it: open a link, post a form with its CSRF field,
visit the identity provider, come back to the callback.

The "browser" is an httpx client with a cookie jar talking to the app; the trip to the
identity provider is a real HTTP request to the emulator, whose redirect brings the
browser back to our callback.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.clock import Clock
from app.config import load_settings
from app.db import migrate
from app.db.engine import make_engine
from app.main import build_runtime, close_runtime, create_app
from app.runtime import Runtime
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.microsoft.harness import (
    RunningEmulator,
    generate_self_signed_cert,
    start_emulator,
)

PUBLIC = "https://nextstep.test"
KEY = {"Authorization": "Bearer test-key"}
ANNE, BOB, MALLORY = "anne@seller.io", "bob@seller.io", "mallory@seller.io"
MIA, MAX, ADA = "mia@seller.io", "max@seller.io", "ada@seller.io"  # managers and admin


@dataclass
class Stack:
    rt: Runtime
    google: GoogleEmulator
    ms: RunningEmulator
    ca: ssl.SSLContext
    app: object

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC, follow_redirects=False
        )

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC, headers=KEY
        )

    def idp_answer(self, url: str) -> str:
        """The browser at the identity provider: where it is sent back to (path + query)."""
        resp = httpx.get(url, verify=self.ca, follow_redirects=False)
        assert resp.status_code == 302, resp.text
        back = urlsplit(resp.headers["location"])
        assert f"{back.scheme}://{back.netloc}" == PUBLIC
        return f"{back.path}?{back.query}"


def emulators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """Both emulators, trusted through SSL_CERT_FILE / REQUESTS_CA_BUNDLE, with people."""
    google = GoogleEmulator.start(tls_dir=tmp_path / "tls")
    cert = generate_self_signed_cert(tmp_path)
    bundle = tmp_path / "cas.pem"
    bundle.write_text(Path(str(google.ca_file)).read_text() + Path(cert.certfile).read_text())
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(name, str(bundle))
    ms = start_emulator(cert)
    google.oauth.idp.register_client("g-web", "g-secret", {f"{PUBLIC}/auth/google/callback"})
    ms.emulator.auth.delegated.idp.register_client(
        "m-web", "m-secret", {f"{PUBLIC}/auth/microsoft/callback"}
    )
    ms.emulator.register_app("m-web", "m-secret", roles=set())
    for email in (ANNE, BOB, MALLORY, MIA, MAX, ADA):
        google.oauth.idp.add_person(email)
        ms.emulator.auth.delegated.idp.add_person(email)
    for email in (ANNE, BOB):
        google.add_user(email)
        ms.emulator.add_user(email)
    try:
        yield google, ms, ssl.create_default_context(cafile=str(bundle))
    finally:
        ms.stop()
        google.stop()


@asynccontextmanager
async def running_stack(
    database_url: str, emulators: tuple, *, clock: Clock | None = None, **overrides: Any
) -> AsyncIterator[Stack]:
    google, ms, ca = emulators
    if not database_url.startswith("sqlite"):
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
    settings = load_settings(
        database_url=database_url,
        api_keys="test-key",
        internal_domains="seller.io",
        public_url=PUBLIC,
        google_api_root=google.api_root,
        google_oauth_client_id="g-web",
        google_oauth_client_secret="g-secret",
        google_oauth_issuer=google.api_root,
        ms_oauth_client_id="m-web",
        ms_oauth_client_secret="m-secret",
        ms_oauth_authority=f"{ms.base_url}/organizations",
        graph_api_root=ms.graph_root,
        admin_emails=ADA,
        sync_min_interval_seconds=0,
        **overrides,
    )
    rt = build_runtime(settings, clock=clock or Clock())
    app = create_app(runtime=rt, start_scheduler=False)
    try:
        yield Stack(rt, google, ms, ca, app)
    finally:
        await close_runtime(rt)


async def register(stack: Stack, email: str, provider: str = "google", **extra: str) -> dict:
    async with stack.api() as api:
        resp = await api.post(
            "/v1/reps",
            json={"email": email, "provider": provider, "timezone": "UTC", "auth": "user", **extra},
        )
    assert resp.status_code == 201, resp.text
    return resp.json()


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


async def connect(stack: Stack, browser: httpx.AsyncClient, rep: dict) -> httpx.Response:
    """Open the connect link, press the button, consent, come back: the callback's answer."""
    page = await browser.get(rep["connect_url"].removeprefix(PUBLIC))
    assert page.status_code == 200 and "Connect" in page.text
    start = await browser.post(
        rep["connect_url"].removeprefix(PUBLIC), data={"csrf": csrf_of(page.text)}
    )
    assert start.status_code == 303, start.text
    return await browser.get(stack.idp_answer(start.headers["location"]))


async def sign_in(stack: Stack, browser: httpx.AsyncClient, email: str) -> None:
    stack.google.oauth.idp.signed_in = email
    page = await browser.get("/signin")
    start = await browser.post("/signin/google", data={"csrf": csrf_of(page.text)})
    assert start.status_code == 303, start.text
    back = await browser.get(stack.idp_answer(start.headers["location"]))
    assert back.status_code == 303, back.text


async def rep_row(stack: Stack, rep_id: str) -> dict:
    async with stack.api() as api:
        return (await api.get(f"/v1/reps/{rep_id}")).json()
