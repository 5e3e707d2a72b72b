"""The dashboard's inbox in a real headless Chromium: a form generated from an inputSchema, approve/reject with a
comment, live arrival of new tasks, and the wait drawn as its own bar on the session timeline."""

from __future__ import annotations

import pytest

from opscore_project.observability.tests.browsing import ARTIFACTS, login, save_page, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FORM = {
    "id": "browser_form",
    "tasks": [
        {"taskId": "details", "kind": "input", "prompt": "Release details?", "nextTaskId": "sign_off",
         "inputSchema": {"type": "object", "required": ["version", "words"], "properties": {
             "version": {"type": "string", "maxLength": 8, "title": "Version"},
             "words": {"type": "integer", "minimum": 10, "maximum": 500},
             "tone": {"enum": ["formal", "casual"]},
             "urgent": {"type": "boolean"}}}},
        {"taskId": "sign_off", "kind": "approval", "prompt": "Ship {{ tasks.details.result.version }}?"},
    ],
}  # fmt: skip


def start(definition: dict):
    from workflows import services

    stored, _ = services.definition_create(data=definition)
    session, _ = services.session_start(definition=stored)
    return session


def card(browser, task_id: str):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'.inbox-card[data-task="{task_id}"]')


def test_an_operator_fills_a_form_and_approves_from_the_inbox(browser, live_server, operator, settings):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from workflows.models import TaskRun, WorkflowSession

    settings.OPSCORE_DASHBOARD_POLL_MS = 300
    session = start(FORM)
    login(browser, live_server, operator)
    browser.get(f"{live_server.url}/dashboard/inbox/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '.inbox-card[data-task="details"]'))
    form = card(browser, "details")
    assert "Release details?" in form.text
    inputs = {el.get_attribute("name"): el for el in form.find_elements(By.CSS_SELECTOR, "input, select")}
    assert set(inputs) == {"value.version", "value.words", "value.tone", "value.urgent"}
    assert (
        inputs["value.words"].get_attribute("type") == "number"
        and inputs["value.urgent"].get_attribute("type") == "checkbox"
    )
    assert inputs["value.version"].get_attribute("maxlength") == "8"

    # A value the schema refuses: the server's 400 is shown next to the field.
    inputs["value.version"].send_keys("2.0")
    inputs["value.words"].send_keys("5")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda d: "at least 10" in card(d, "details").text)
    error = form.find_element(By.CSS_SELECTOR, '[data-error-for="value.words"]')
    assert "Must be at least 10" in error.text

    inputs["value.words"].clear()
    inputs["value.words"].send_keys("120")
    Select(inputs["value.tone"]).select_by_visible_text("casual")
    inputs["value.urgent"].click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda d: "Answered by operator" in card(d, "details").text)
    details = TaskRun.objects.get(session=session, task_id="details")
    assert details.result == {"version": "2.0", "words": 120, "tone": "casual", "urgent": True}
    assert details.answered_via == "dashboard"

    # The approval the answer led to arrives on its own, prompt resolved from the answer.
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '.inbox-card[data-task="sign_off"]'))
    approval = card(browser, "sign_off")
    assert "Ship 2.0?" in approval.text
    assert [b.text for b in approval.find_elements(By.CSS_SELECTOR, "button")] == ["approve", "reject"]
    save_page(browser, "inbox.png")
    approval.find_element(By.NAME, "comment").send_keys("good to go")
    approval.find_element(By.CSS_SELECTOR, 'button[data-option="approve"]').click()
    wait_for(browser, lambda d: "Answered by operator" in card(d, "sign_off").text)
    session.refresh_from_db()
    assert session.status == "completed"
    assert TaskRun.objects.get(session=session, task_id="sign_off").result == {
        "approved": True, "option": "approve", "comment": "good to go", "by": "operator",
    }  # fmt: skip

    # Live: a task created while the page is open appears without a reload; a rejection from another session.
    other = start({**FORM, "id": "browser_form_2"})
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, '.inbox-card[data-task="details"]')) == 2)
    assert WorkflowSession.objects.get(pk=other.pk).status == "waiting_for_input"


def test_the_timeline_draws_the_wait_as_its_own_bar(browser, live_server, operator):
    from selenium.webdriver.common.by import By

    session = start(FORM)
    login(browser, live_server, operator)
    browser.get(f"{live_server.url}/dashboard/sessions/{session.pk}/")
    bar = browser.find_element(By.CSS_SELECTOR, ".bar-run.bar-human")
    assert bar.get_attribute("data-task") == "details" and "waiting for input" in bar.text
    assert bar.size["width"] > 10
    assert "waiting_for_input" in browser.find_element(By.ID, "session-status").text
    browser.save_screenshot(str(ARTIFACTS / "session-waiting.png"))
