"""The fleet pages as a staff member sees them: overview, sessions list (with bulk actions), agent, workflow."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.utils import timezone

from opscore_project.observability.tests.fleet_data import seed_fleet, seed_states
from workflows.models import SessionStatus, TaskRun, WorkflowSession

# The charts and tables are Postgres statements (the embedded SQLite mode shows counts only).
pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not settings.IS_POSTGRES, reason="Postgres only")]


@pytest.fixture
def fleet(settings):
    settings.OPSCORE_AGENT_STALE_SECONDS = 600
    # At hh:mm:30, as in the selector tests, so every run falls in the same one-minute bucket as there.
    return seed_fleet(timezone.now().replace(second=30, microsecond=0))


def count_of(html: str, key: str) -> str:
    match = re.search(rf'data-count="{re.escape(key)}">([^<]*)<', html)
    assert match, key
    return match.group(1)


def test_the_overview_shows_counts_tables_and_chart_data(staff_client, fleet):
    response = staff_client.get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert (count_of(html, "agents.idle"), count_of(html, "agents.error"), count_of(html, "agents.stale")) == (
        "1",
        "1",
        "1",
    )
    assert count_of(html, "sessions.running") == "1"
    assert count_of(html, "sessions.failed_last_hour") == "2"
    assert 'href="/dashboard/workflows/wf-report/"' in html and 'href="/dashboard/agents/agent-b/"' in html
    assert "/dashboard/sessions/?status=running" in html
    waiting = html[html.index('id="waiting-by-capability"') :]
    assert '<code>fetch</code></td><td class="num">1</td>' in waiting
    assert "uPlot.iife.min.js" in html and "cdn" not in html.lower()
    config = response.context["config"]
    assert sum(config["charts"]["sessions"]["started"]) == 6  # S1–S6 in the last hour, one per minute bucket


def test_the_overview_data_endpoint_answers_json_and_rejects_an_unknown_window(staff_client, fleet):
    body = staff_client.get("/dashboard/overview.json?window=24h").json()
    assert body["counts"]["sessions"]["waiting"] == 1
    assert body["counts"]["agents"]["stale"] == 1
    assert len(body["charts"]["sessions"]["x"]) == 96
    response = staff_client.get("/dashboard/overview.json?window=2y")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error" and "window" in response.json()["errors"]


def test_old_operation_log_links_redirect_to_the_events_page(staff_client):
    response = staff_client.get("/dashboard/?level=error&agent=a1")
    assert response.status_code == 301
    assert response["Location"] == "/dashboard/events/?level=error&agent=a1"
    assert staff_client.get("/dashboard/events/").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/",
        "/dashboard/overview.json",
        "/dashboard/sessions/",
        "/dashboard/agents/a/",
        "/dashboard/workflows/w/",
    ],
)
def test_anonymous_users_are_sent_to_the_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_the_sessions_list_filters_sorts_and_pages(staff_client, fleet):
    html = staff_client.get("/dashboard/sessions/?status=failed").content.decode()
    assert html.count('class="session-failed"') == 3 and "session-completed" not in html
    html = staff_client.get("/dashboard/sessions/?workflow=wf-other").content.decode()
    assert html.count("data-session=") == 2
    html = staff_client.get("/dashboard/sessions/?agent=agent-b").content.decode()  # ran a task of S2
    assert html.count("data-session=") == 1 and str(fleet.sessions["S2"].pk) in html
    since = fleet.sessions["S4"].ended_at.isoformat()
    html = staff_client.get("/dashboard/sessions/", {"time": "ended", "since": since}).content.decode()
    assert html.count("data-session=") == 1  # S4 ended exactly then; the others ended earlier or run
    response = staff_client.get("/dashboard/sessions/?sort=-duration&status=failed")
    rows = [s.pk for s in response.context["page"].object_list]
    assert rows == [fleet.sessions[name].pk for name in ("S7", "S2", "S4")]  # 30 min, 90 s, 30 s
    html = staff_client.get("/dashboard/sessions/?since=yesterday").content.decode()
    assert "Invalid filter" in html and html.count("data-session=") == 7
    for _ in range(50):
        WorkflowSession.objects.create(definition=fleet.report, workflow_id="wf-report", status="completed")
    response = staff_client.get("/dashboard/sessions/?page=2")
    assert len(response.context["page"].object_list) == 7 and "Page 2 of 2" in response.content.decode()


def test_bulk_cancel_asks_for_confirmation_then_cancels(staff_client, fleet):
    running, done = fleet.sessions["S5"], fleet.sessions["S1"]
    response = staff_client.post("/dashboard/sessions/", {"action": "cancel", "session": [running.pk, done.pk]})
    assert response.status_code == 200 and "Cancel 2 sessions?" in response.content.decode()
    running.refresh_from_db()
    assert running.status == SessionStatus.RUNNING  # nothing happens before the confirmation
    response = staff_client.post(
        "/dashboard/sessions/",
        {"action": "cancel", "confirm": "yes", "session": [running.pk, done.pk], "next": "/dashboard/sessions/"},
        follow=True,
    )
    html = response.content.decode()
    assert "1 session(s) cancelled." in html and "already ended" in html
    running.refresh_from_db()
    assert running.status == SessionStatus.CANCELLED
    assert TaskRun.objects.get(pk=fleet.runs["r7"].pk).status == "cancelled"


def test_bulk_retry_retries_failed_sessions_only(staff_client, fleet):
    failed, running = fleet.sessions["S2"], fleet.sessions["S5"]
    response = staff_client.post(
        "/dashboard/sessions/",
        {"action": "retry", "confirm": "yes", "session": [failed.pk, running.pk, "not-a-uuid"]},
        follow=True,
    )
    html = response.content.decode()
    assert "1 session(s) retried." in html and "Only a failed session can be retried" in html
    assert "not-a-uuid: Not a session id." in html
    failed.refresh_from_db()
    assert failed.status in (SessionStatus.RUNNING, SessionStatus.PENDING) and failed.retry_round == 1


def test_a_bulk_action_without_sessions_is_refused(staff_client, fleet):
    html = staff_client.post("/dashboard/sessions/", {"action": "cancel"}, follow=True).content.decode()
    assert "Choose an action and at least one session." in html


def test_the_agent_page_shows_facts_history_and_failures(staff_client, fleet):
    seed_states(fleet.agents["agent-a"], timezone.now())
    html = staff_client.get("/dashboard/agents/agent-a/?window=1h").content.decode()
    assert 'data-state="active"' in html and 'data-state="stale"' in html
    assert "Registration webhook" in html and '<code class="chip">fetch</code>' in html
    assert "/dashboard/events/?agent=agent-a" in html and "/dashboard/sessions/?agent=agent-a" in html
    assert 'data-stat="success">100 %' in html
    html = staff_client.get("/dashboard/agents/agent-b/?window=1h").content.decode()
    assert "Source unreachable" in html and "No report within 60 s" in html
    assert 'data-stat="success">0 %' in html
    response = staff_client.get("/dashboard/agents/nobody/")
    assert response.status_code == 404 and "/dashboard/events/?agent=nobody" in response.content.decode()


def test_the_workflow_page_draws_the_chosen_version_and_a_sessions_status(staff_client, fleet):
    html = staff_client.get("/dashboard/workflows/wf-report/").content.decode()
    assert html.count('class="node"') == 2  # latest version: fetch → summarise
    html = staff_client.get("/dashboard/workflows/wf-report/?version=1").content.decode()
    assert html.count('class="node"') == 5
    assert 'data-source="translate" data-target="lite" data-kind="fallback"' in html
    session = fleet.sessions["S2"]
    html = staff_client.get(f"/dashboard/workflows/wf-report/?session={session.pk}").content.decode()
    assert 'data-task="fetch" data-status="timed_out"' in html
    assert 'data-task="publish" data-status="not_run"' in html
    assert staff_client.get("/dashboard/workflows/nope/").status_code == 404


def test_the_session_timeline_links_to_its_graph(staff_client, fleet):
    session = fleet.sessions["S1"]
    html = staff_client.get(f"/dashboard/sessions/{session.pk}/").content.decode()
    assert f"/dashboard/workflows/wf-report/?session={session.pk}" in html
