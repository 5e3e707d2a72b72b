"""The fleet pages in a real headless Chromium at 1,280 px: charts with points, the graph's nodes and edges,
the state strip, bulk cancel. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import timezone

from opscore_project.observability.tests.browsing import login, save_page, wait_for
from opscore_project.observability.tests.fleet_data import seed_fleet, seed_states
from workflows.models import WorkflowSession

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="Postgres only"),
]


@pytest.fixture
def fleet(settings):
    settings.OPSCORE_AGENT_STALE_SECONDS = 600
    settings.OPSCORE_DASHBOARD_POLL_MS = 250
    # At hh:mm:30, as in the selector tests, so every run falls in the same one-minute bucket as there.
    return seed_fleet(timezone.now().replace(second=30, microsecond=0))


def fits_the_width(browser) -> bool:
    return browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_the_overview_draws_charts_with_points_and_refreshes_counts(browser, live_server, operator, fleet):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    login(browser, live_server, operator)
    browser.get(f"{live_server.url}/dashboard/")
    wait_for(browser, lambda d: d.find_element(By.ID, "chart-dispatch").get_attribute("data-points"))

    def figure(chart_id: str) -> tuple[int, float]:
        element = browser.find_element(By.ID, chart_id)
        assert element.find_element(By.CSS_SELECTOR, "canvas").size["width"] > 300
        return int(element.get_attribute("data-points")), float(element.get_attribute("data-sum"))

    # 60 one-minute buckets per series; 6 sessions started, 2 completed, 2 failed; 3 tasks completed.
    assert figure("chart-sessions") == (180, 10)
    assert figure("chart-tasks") == (60, 3)
    assert figure("chart-queue")[0] == 6  # p50 and p95 in the three buckets where runs were dispatched
    assert figure("chart-dispatch")[0] == 3
    assert "wf-report" in browser.find_element(By.CSS_SELECTOR, "table.slowest-workflows").text
    assert "agent-b" in browser.find_element(By.CSS_SELECTOR, "table.failing-agents").text
    assert fits_the_width(browser)
    save_page(browser, "overview.png")

    # Live: a new session waiting to start shows up without a reload.
    WorkflowSession.objects.create(definition=fleet.report, workflow_id="wf-report")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, '[data-count="sessions.waiting"]').text == "2")

    # Keyboard: the first Tab lands on the skip link, which is visible when focused.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.text == "Skip to content" and focused.location["x"] >= 0

    # One click to drill down: the agent in the failing table.
    browser.find_element(By.CSS_SELECTOR, "table.failing-agents a").click()
    wait_for(browser, lambda d: "/dashboard/agents/agent-b/" in d.current_url)


def test_the_workflow_page_draws_the_graph_and_a_sessions_statuses(browser, live_server, operator, fleet):
    from selenium.webdriver.common.by import By

    login(browser, live_server, operator)
    browser.get(f"{live_server.url}/dashboard/workflows/wf-report/?version=1")
    nodes = browser.find_elements(By.CSS_SELECTOR, "#workflow-graph g.node")
    assert sorted(n.get_attribute("data-task") for n in nodes) == ["fetch", "lite", "publish", "summarise", "translate"]
    edges = {
        (e.get_attribute("data-source"), e.get_attribute("data-target"), e.get_attribute("data-kind"))
        for e in browser.find_elements(By.CSS_SELECTOR, "#workflow-graph path.edge")
    }
    assert edges == {
        ("fetch", "summarise", "next"),
        ("fetch", "translate", "depends"),
        ("summarise", "publish", "depends"),
        ("translate", "publish", "depends"),
        ("translate", "lite", "fallback"),
    }
    boxes = {n.get_attribute("data-task"): n.rect for n in nodes}
    assert boxes["fetch"]["x"] < boxes["translate"]["x"] < boxes["publish"]["x"]
    assert all(box["width"] > 100 for box in boxes.values())
    assert fits_the_width(browser)
    save_page(browser, "workflow-graph.png")

    session = fleet.sessions["S2"]
    browser.get(f"{live_server.url}/dashboard/workflows/wf-report/?session={session.pk}")
    fetch = browser.find_element(By.CSS_SELECTOR, '#workflow-graph g.node[data-task="fetch"]')
    assert fetch.get_attribute("data-status") == "timed_out"
    colour = browser.execute_script("return getComputedStyle(arguments[0].querySelector('rect')).stroke", fetch)
    assert colour == "rgb(214, 69, 69)"  # the error red
    save_page(browser, "workflow-session-graph.png")


def test_the_agent_page_shows_the_state_strip(browser, live_server, operator, fleet):
    from selenium.webdriver.common.by import By

    seed_states(fleet.agents["agent-a"], timezone.now())
    login(browser, live_server, operator)
    browser.get(f"{live_server.url}/dashboard/agents/agent-a/?window=1h")
    periods = browser.find_elements(By.CSS_SELECTOR, "#state-strip .period")
    assert [p.get_attribute("data-state") for p in periods] == [
        "idle", "stale", "active", "idle", "stale", "error", "idle", "stale"
    ]  # fmt: skip
    strip = browser.find_element(By.ID, "state-strip").size["width"]
    assert sum(p.size["width"] for p in periods) == pytest.approx(strip, abs=len(periods) + 2)
    assert fits_the_width(browser)
    save_page(browser, "agent.png")


def test_bulk_cancel_from_the_sessions_list(browser, live_server, operator, fleet):
    from selenium.webdriver.common.by import By

    running = fleet.sessions["S5"]
    login(browser, live_server, operator)
    browser.get(f"{live_server.url}/dashboard/sessions/?status=running")
    browser.find_element(By.ID, "select-all").click()
    browser.find_element(By.ID, "bulk-submit").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "confirm-yes"))
    assert "Cancel 1 session?" in browser.find_element(By.TAG_NAME, "h1").text
    browser.find_element(By.ID, "confirm-yes").click()
    wait_for(browser, lambda d: "1 session(s) cancelled." in d.find_element(By.TAG_NAME, "main").text)
    running.refresh_from_db()
    assert running.status == "cancelled"
    browser.get(f"{live_server.url}/dashboard/sessions/")
    assert fits_the_width(browser)
    save_page(browser, "sessions.png")
