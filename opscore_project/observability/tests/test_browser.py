"""The dashboard and the session timeline in a real headless Chromium (selenium + system chromedriver)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation
from opscore_project.observability.tests.workflow_run import run_workflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
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
        "--window-size=1400,1000",
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
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(condition)


def test_dashboard_filters_and_shows_a_live_event(browser, live_server, operator, settings):
    from selenium.webdriver.common.by import By

    settings.OPSCORE_DASHBOARD_POLL_MS = 500
    log_operation(events.AGENT_REGISTERED, agent_id="agent-old", message="registered earlier")
    log_operation(events.TASK_FAILED, level="error", agent_id="agent-b", message="an earlier failure")
    login(browser, live_server, operator)
    wait_for(browser, lambda d: d.find_elements(By.ID, "event-rows"))
    assert "registered earlier" in browser.find_element(By.ID, "event-rows").text

    # Filter: errors only.
    browser.find_element(By.CSS_SELECTOR, "select[name=level] option[value=error]").click()
    browser.find_element(By.ID, "apply").click()
    wait_for(browser, lambda d: "level=error" in d.current_url)
    rows = browser.find_element(By.ID, "event-rows").text
    assert "an earlier failure" in rows and "registered earlier" not in rows

    # Live: an event written while the page is open appears without a reload; a non-matching one does not.
    log_operation(events.TASK_DISPATCHED, agent_id="agent-c", message="not an error, filtered out")
    log_operation(events.TASK_FAILED, level="error", agent_id="agent-c", session_id="sess-live", message="live failure")
    wait_for(browser, lambda d: "live failure" in d.find_element(By.ID, "event-rows").text)
    assert "filtered out" not in browser.find_element(By.ID, "event-rows").text
    fresh = browser.find_element(By.CSS_SELECTOR, "#event-rows tr:first-child")
    assert "task.failed" in fresh.text
    assert (
        fresh.find_element(By.CSS_SELECTOR, "a.session")
        .get_attribute("href")
        .endswith("/dashboard/sessions/sess-live/")
    )
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))


def test_session_timeline_page(browser, live_server, operator):
    from selenium.webdriver.common.by import By

    run_workflow("sess-browser")
    login(browser, live_server, operator)
    browser.get(f"{live_server.url}/dashboard/sessions/sess-browser/")
    lanes = browser.find_elements(By.CSS_SELECTOR, "#timeline .lane")
    assert len(lanes) == 2
    failed = browser.find_element(By.CSS_SELECTOR, ".bar-run.status-failed")
    assert failed.size["width"] > 10
    tops = {
        bar.get_attribute("data-task"): bar.location["y"] for bar in browser.find_elements(By.CSS_SELECTOR, ".bar-run")
    }
    assert tops["summarise"] != tops["translate"]  # parallel branches on separate rows
    assert "Quota exceeded" in browser.find_element(By.CSS_SELECTOR, "table.tasks").text
    browser.save_screenshot(str(ARTIFACTS / "session-timeline.png"))
