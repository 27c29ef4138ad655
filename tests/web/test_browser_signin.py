"""In a real browser (Debian's Chromium): a rep connects a Google calendar from the link
the CRM sent, lands on their page, acts on a meeting; their manager signs in and sees
the team's board. `nextstep serve` runs as a process against the Google emulator (its
OAuth endpoints and Calendar API); screenshots are kept in artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.serving import FAST_POLICY
from tests.helpers.browser import chromium, screenshot
from tests.helpers.serve import free_port, serve, wait_for

ANNE, MIA = "anne@seller.io", "mia@seller.io"


@pytest.fixture
def google(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleEmulator]:
    emu = GoogleEmulator.start(tls_dir=tmp_path / "tls")
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(name, str(emu.ca_file))  # the serve process inherits them
    try:
        yield emu
    finally:
        emu.stop()


def _wait(browser: WebDriver, css: str) -> None:
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _click_and_leave(browser: WebDriver, css: str) -> None:
    """Click, then wait until the browser has left the page (no stale element races)."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, css).click()

    def left(_: WebDriver) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:  # stale, or "does not belong to the document": gone
            return True
        return False

    WebDriverWait(browser, 30).until(left)


def test_a_rep_connects_sees_the_page_acts_and_the_manager_sees_the_board(
    google: GoogleEmulator, tmp_path: Path
) -> None:
    port = free_port()
    public = f"http://localhost:{port}"
    google.oauth.idp.register_client("g-web", "g-secret", {f"{public}/auth/google/callback"})
    for email in (ANNE, MIA):
        google.oauth.idp.add_person(email)
    google.add_user(ANNE)
    now = datetime.now(UTC)
    google.create_event(
        ANNE,
        summary="Acme discovery",
        start=now - timedelta(hours=1),
        end=now - timedelta(minutes=5),
        attendees=["dana@acme.test"],
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(FAST_POLICY)
    env = {
        "NEXTSTEP_PUBLIC_URL": public,
        "NEXTSTEP_GOOGLE_API_ROOT": google.api_root,
        "NEXTSTEP_GOOGLE_OAUTH_CLIENT_ID": "g-web",
        "NEXTSTEP_GOOGLE_OAUTH_CLIENT_SECRET": "g-secret",
        "NEXTSTEP_GOOGLE_OAUTH_ISSUER": google.api_root,
        "NEXTSTEP_INTERNAL_DOMAINS": "seller.io",
        "NEXTSTEP_POLICY_FILE": str(policy),
    }
    with serve(env, tmp_path, port=port) as srv, srv.client() as api:
        rep = api.post(
            "/v1/reps",
            json={
                "email": ANNE,
                "provider": "google",
                "timezone": "UTC",
                "auth": "user",
                "manager_email": MIA,
            },
        ).json()
        assert rep["status"] == "pending_connection", rep
        with chromium(flags=("--ignore-certificate-errors",)) as browser:
            google.oauth.idp.signed_in = ANNE  # the browser's Google account
            browser.get(rep["connect_url"])
            _wait(browser, "#connect")
            screenshot(browser, "signin-1-connect")
            _click_and_leave(browser, "#connect")
            _wait(browser, "#health")  # Google's consent, then back on the rep's page
            assert browser.current_url == f"{public}/reps/{rep['id']}"
            assert "code=" not in browser.current_url
            assert browser.find_element(By.ID, "health").text == "connected"
            wait_for(lambda: api.get(f"/v1/reps/{rep['id']}").json()["status"] == "active")

            def meeting_listed() -> bool:
                browser.refresh()
                return "Acme discovery" in browser.page_source

            wait_for(meeting_listed, timeout=30, interval=0.5)
            screenshot(browser, "signin-2-rep-page")
            if browser.find_elements(
                By.CSS_SELECTOR, 'a[data-kind="send_invite"]'
            ):  # the nudge's own action link (the action page confirms by POST)
                _click_and_leave(browser, 'a[data-kind="send_invite"]')
                _wait(browser, "form button")
                screenshot(browser, "signin-3-send-invite")
                _click_and_leave(browser, "form button")
            else:  # no action links on this build: the page's own action, reconnect
                _click_and_leave(browser, "#reconnect")
                _wait(browser, "#health")
            screenshot(browser, "signin-3-action-done")

            browser.get(f"{public}/reps/{rep['id']}")
            _click_and_leave(browser, "header button")  # sign out
            _wait(browser, "#signin-google")
            google.oauth.idp.signed_in = MIA
            _click_and_leave(browser, "#signin-google")
            _wait(browser, "#trend")
            assert browser.current_url == f"{public}/team"
            assert ANNE in browser.find_element(By.ID, "reps").text
            shot = screenshot(browser, "signin-4-manager-board")
            # The page is sized for a phone: nothing wider than the viewport.
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= browser.execute_script("return window.innerWidth")
    assert shot.stat().st_size > 1000
