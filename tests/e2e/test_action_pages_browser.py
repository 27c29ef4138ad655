"""The action page in a real headless Chromium (a phone's viewport), against `nextstep serve`
and the Google emulator: the rep opens the nudge's link, reads what will happen, taps the
button, and the invitation is on the rep's Google calendar with the prospect invited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.test_google import Stack, _rep, stack  # noqa: F401 - the module's stack
from tests.emulators.google.serving import meetings
from tests.helpers.browser import chromium, screenshot
from tests.helpers.serve import wait_for


def test_the_rep_opens_the_action_page_taps_send_and_the_event_is_on_google(
    stack: Stack,  # noqa: F811
) -> None:
    emu, api = stack.emu, stack.api
    email = "phone@corp.test"
    rep = _rep(stack, email)
    now = datetime.now(UTC)
    event_id = emu.create_event(
        email,
        summary="Initech discovery",
        start=now - timedelta(minutes=30),
        end=now + timedelta(seconds=1),
        attendees=["peter@initech.test"],
    )
    meeting = wait_for(lambda: meetings(api, rep["id"]).get(event_id))
    nudge = wait_for(
        lambda: next(
            (
                n
                for n in stack.receiver.nudges
                if (n.get("meeting") or {}).get("id") == meeting["id"]
            ),
            None,
        )
    )
    send = nudge["actions"][0]

    def inserts() -> list:
        return [r for r in emu.requests_for("events.insert") if r.subject == email]

    with chromium() as browser:
        browser.get(send["url"])
        assert browser.find_element(By.TAG_NAME, "h1").text == "Send the follow-up invite"
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Initech discovery: follow-up and next steps" in body
        assert "peter@initech.test" in body
        # Readable on a phone: nothing wider than the viewport.
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= browser.execute_script("return window.innerWidth")
        screenshot(browser, "action-send-invite")
        assert inserts() == [], "opening the page sends nothing"
        browser.find_element(By.TAG_NAME, "button").click()
        # the answer page arrives when the server has sent the invite (slow under load)
        WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda b: (
                [h.text for h in b.find_elements(By.TAG_NAME, "h1")] == ["The invite is sent."]
            )
        )
        screenshot(browser, "action-send-invite-done")

    (insert,) = inserts()
    follow_up = insert.body["id"]
    stored = emu.calendars[email].events[follow_up].body
    assert [p["email"] for p in stored["attendees"]] == ["peter@initech.test"]
    assert stored["start"]["dateTime"].startswith(send["slot"]["start"][:16])
    assert stored["hangoutLink"].startswith("https://meet.google.com/")
    wait_for(lambda: api.get(f"/v1/meetings/{meeting['id']}").json()["state"] == "invited")
