"""The page-test browser works here: a real Chromium loads a page from loopback, a form
POSTs when its button is clicked, and a screenshot is written (pages tests build on this)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.common.by import By

from tests.helpers.browser import chromium, screenshot


class _Page(BaseHTTPRequestHandler):
    posts: list[bytes] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._send(b"<h1>Send the invite?</h1><form method=post><button>Send</button></form>")

    def do_POST(self) -> None:  # noqa: N802
        _Page.posts.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
        self._send(b"<h1>Sent</h1>")

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_chromium_loads_a_page_posts_its_form_and_takes_a_screenshot(page_url: str) -> None:
    _Page.posts.clear()
    with chromium() as browser:
        browser.get(page_url)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Send the invite?"
        assert _Page.posts == []  # looking at a page changes nothing
        browser.find_element(By.TAG_NAME, "button").click()
        assert browser.find_element(By.TAG_NAME, "h1").text == "Sent"
        shot = screenshot(browser, "browser-smoke")
    assert _Page.posts == [b""]
    assert shot.stat().st_size > 1000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
