"""The dashboard and the session timeline in a real headless Chromium (selenium + system chromedriver)."""

from __future__ import annotations

import pytest

from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation
from opscore_project.observability.tests.browsing import ARTIFACTS, login, wait_for
from opscore_project.observability.tests.workflow_run import run_workflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_filters_and_shows_a_live_event(browser, live_server, operator, settings):
    from selenium.webdriver.common.by import By

    settings.OPSCORE_DASHBOARD_POLL_MS = 500
    log_operation(events.AGENT_REGISTERED, agent_id="agent-old", message="registered earlier")
    log_operation(events.TASK_FAILED, level="error", agent_id="agent-b", message="an earlier failure")
    login(browser, live_server, operator)
    browser.get(f"{live_server.url}/dashboard/events/")
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
