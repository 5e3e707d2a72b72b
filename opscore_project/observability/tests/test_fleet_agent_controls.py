"""Drained and quarantined agents on the dashboard: the overview counts them, the agent page says so."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from lifecycle import controls
from lifecycle.models import Agent, AgentSource

pytestmark = pytest.mark.django_db


def count_of(html: str, key: str) -> str:
    match = re.search(rf'data-count="{re.escape(key)}">([^<]*)<', html)
    assert match, key
    return match.group(1)


@pytest.fixture
def agents():
    now = timezone.now()
    for agent_id in ("a1", "a2", "a3"):
        Agent.objects.create(
            agent_id=agent_id, source=AgentSource.WEBHOOK, state="idle", registered_at=now, last_seen_at=now
        )
    controls.agent_drain(agent_id="a1")
    controls.agent_quarantine(agent_id="a2", seconds=300, reason="bad answers")
    controls.agent_quarantine(agent_id="a3")


def test_the_overview_counts_drained_and_quarantined_agents(staff_client, agents):
    html = staff_client.get("/dashboard/").content.decode()
    assert count_of(html, "agents.drained") == "1"
    assert count_of(html, "agents.quarantined") == "2"


def test_the_agent_page_shows_drain_and_quarantine(staff_client, agents):
    html = staff_client.get("/dashboard/agents/a1/").content.decode()
    assert re.search(r'id="rotation"><span class="badge badge-warning">drained</span> since', html)
    assert 'id="quarantine">no ·' in html
    html = staff_client.get("/dashboard/agents/a2/").content.decode()
    assert "quarantined</span> until" in html and "then one trial task" in html and "bad answers" in html
    html = staff_client.get("/dashboard/agents/a3/").content.decode()
    assert "until released" in html and 'id="rotation">in rotation' in html
