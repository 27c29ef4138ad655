"""A real headless Chromium for page tests: Debian's `chromium` driven through Debian's
`chromedriver` by Selenium (scripts/check installs both and sets NEXTSTEP_CHROMIUM /
NEXTSTEP_CHROMEDRIVER). Screenshots go to ``artifacts/screenshots/`` (kept by CI as test
artefacts) so a reviewer can look at what a rep or a manager sees.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

# As the machine's own probe starts it: without the background-networking flags Chromium
# keeps trying hosts this closed network refuses.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
)
PHONE = (412, 915)  # a phone's viewport in CSS pixels: pages must read well on one


def _binary(variable: str, name: str) -> str:
    path = os.environ.get(variable) or shutil.which(name)
    if not path:
        raise RuntimeError(
            f"{name} not found: install Debian's chromium and chromium-driver "
            f"(bash scripts/check does) or set {variable}"
        )
    return path


@contextmanager
def chromium(
    *, size: tuple[int, int] = PHONE, flags: tuple[str, ...] = ()
) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with an empty profile, closed afterwards.

    ``flags`` are added to the command line (e.g. ``--ignore-certificate-errors`` for an
    emulator on a throw-away CA that a fresh profile cannot be taught to trust)."""
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("NEXTSTEP_CHROMIUM", "chromium")
    profile = tempfile.mkdtemp(prefix="nextstep-chromium-")
    for flag in (
        *FLAGS,
        *flags,
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(_binary("NEXTSTEP_CHROMEDRIVER", "chromedriver")), options=options
    )
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Save what the browser shows as ``artifacts/screenshots/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
