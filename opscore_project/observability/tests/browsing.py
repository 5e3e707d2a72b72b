"""Headless Chromium for the dashboard tests (selenium + Debian's chromium and chromium-driver)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


def chromium_driver():
    """Yield a headless Chromium driver (skips when Chromium is missing, except in CI, where it fails)."""
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Chromium and chromedriver are required in CI (see .ci/run).")
        pytest.skip("chromium/chromedriver not installed")
    try:
        from selenium import webdriver
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip("selenium not installed (pip install -r requirements-dev.txt)")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="opscore-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def login(browser, live_server, operator) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/admin/login/?next=/dashboard/")
    browser.find_element(By.NAME, "username").send_keys(operator.username)
    browser.find_element(By.NAME, "password").send_keys("operator-pass-123")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, lambda d: "/admin/login/" not in d.current_url)


def wait_for(browser, condition, timeout: float = 15):
    """Poll ``condition`` until it is truthy. An element replaced while it was read (the page navigating or
    refreshing itself) counts as "not yet", not as a failure."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(condition)


def save_page(browser, name: str) -> None:
    """Screenshot the whole page at the current width (the window grows to the page's height, then returns)."""
    size = browser.get_window_size()
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(size["width"], max(height + 140, size["height"]))
    try:
        browser.save_screenshot(str(ARTIFACTS / name))
    finally:
        browser.set_window_size(size["width"], size["height"])
