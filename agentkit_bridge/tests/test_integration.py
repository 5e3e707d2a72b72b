"""End to end with real processes: a live Ops-Core server, the mock AgentKit with simulated agents (real HTTP,
signed webhooks, state reports) and a real Celery worker on the test database and Redis."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentkit_bridge.client import build_task_message
from agentkit_bridge.dispatch import dispatches_enqueue
from agentkit_bridge.models import DispatchAttempt, SyncRun
from agentkit_bridge.tasks import sync_agents
from lifecycle.models import Agent, AgentStateRecord
from mock_agentkit.testing import AgentSpec, running_mock_agentkit
from opscore_project.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SECRET = "integration-webhook-secret"


@pytest.fixture
def webhook_secret(settings) -> str:
    settings.OPSCORE_WEBHOOK_SECRET = SECRET  # the live server runs in this process: it sees the override
    return SECRET


def run_sync_and_wait(expected_runs: int) -> SyncRun:
    sync_agents.delay(min_gap_seconds=0)  # now, not once per polling interval
    wait_until(lambda: SyncRun.objects.count() >= expected_runs, timeout=30, message=f"sync run #{expected_runs}")
    return SyncRun.objects.order_by("-id").first()


def test_simulated_agents_register_through_the_signed_webhook(live_server, settings, webhook_secret):
    with running_mock_agentkit(
        opscore_url=live_server.url, api_key=settings.OPSCORE_API_KEY, webhook_secret=webhook_secret, agents=3
    ) as mock:
        assert mock.drain()
        webhooks = [o for o in mock.outbound() if o.kind == "webhook:REGISTER"]
        assert len(webhooks) == 3 and {o.status for o in webhooks} == {200}
        for info in mock.agents:
            agent = Agent.objects.get(agent_id=info.agent_id)
            assert agent.name == info.name
            assert agent.capabilities == list(info.capabilities) and agent.capabilities_known
            assert agent.contact_endpoint == info.contact_endpoint
            assert agent.registered_at is not None and agent.deregistered_at is None
            assert agent.state == "idle"  # the report and the webhook race; either order keeps the state
            assert agent.source in ("state_report", "webhook")
        mock.deregister(mock.agents[0].agent_id)
        assert mock.drain()
        assert Agent.objects.get(agent_id=mock.agents[0].agent_id).deregistered_at is not None


def test_a_real_worker_syncs_agents_from_the_listing(live_server, settings, celery_worker_factory):
    # No webhook secret on AgentKit's side: agents are known from their state reports only, until the sync.
    with running_mock_agentkit(
        opscore_url=live_server.url, api_key=settings.OPSCORE_API_KEY, webhook_secret=None, agents=2
    ) as mock:
        celery_worker_factory({"AGENTKIT_API_URL": mock.url})
        assert all(Agent.objects.get(agent_id=a.agent_id).registered_at is None for a in mock.agents)

        run = run_sync_and_wait(1)
        assert (run.outcome, run.listed, run.updated, run.added) == ("success", 2, 2, 0)
        for info in mock.agents:
            agent = Agent.objects.get(agent_id=info.agent_id)
            assert agent.name == info.name and agent.capabilities_known and agent.state == "idle"

        extra_id = mock.register_agent("extra", capabilities=["classify"], contact_endpoint="http://nowhere.test/")
        run = run_sync_and_wait(2)
        assert (run.added, run.updated) == (1, 0)
        assert Agent.objects.get(agent_id=extra_id).source == "poll"

        mock.deregister(mock.agents[0].agent_id)
        run = run_sync_and_wait(3)
        assert run.deregistered == 1
        gone = Agent.objects.get(agent_id=mock.agents[0].agent_id)
        assert gone.deregistered_at is not None and gone.history.exists()  # kept, with its history


def test_a_real_worker_records_listing_unsupported(live_server, settings, celery_worker_factory):
    with running_mock_agentkit(
        opscore_url=live_server.url, api_key=settings.OPSCORE_API_KEY, webhook_secret=None, agents=1, listing=False
    ) as mock:
        celery_worker_factory({"AGENTKIT_API_URL": mock.url})
        run = run_sync_and_wait(1)
        assert run.outcome == "unsupported" and "404" in run.error
        assert Agent.objects.get(agent_id=mock.agents[0].agent_id).deregistered_at is None


def test_a_dispatch_through_the_real_worker_reaches_the_agent_and_its_reports_come_back(
    live_server, settings, webhook_secret, celery_worker_factory
):
    with running_mock_agentkit(
        opscore_url=live_server.url,
        api_key=settings.OPSCORE_API_KEY,
        webhook_secret=webhook_secret,
        agents=[AgentSpec("summariser", ["summarise"], work_time=0.1)],
    ) as mock:
        celery_worker_factory({"AGENTKIT_API_URL": mock.url})
        agent_id = mock.agent("summariser").agent_id
        message = build_task_message(
            task_name="summarise", parameters={"text": "hello"}, session_id="sess-42", task_run_id="run-42"
        )
        dispatches_enqueue(entries=[{"dispatch_ref": "run-42", "agent_id": agent_id, "message": message}])

        [task] = mock.wait_for_tasks(agent_id, count=1, timeout=20)
        assert task["payload"] == {"task_name": "summarise", "task_parameters": {"text": "hello"}}
        assert (task["opscore_task_id"], task["opscore_session_id"]) == ("run-42", "sess-42")
        attempt = wait_until(lambda: DispatchAttempt.objects.filter(dispatch_ref="run-42").first(), timeout=20)
        assert (attempt.outcome, attempt.status_code, attempt.attempt) == ("accepted", 202, 1)

        def states():
            return list(
                AgentStateRecord.objects.filter(agent__agent_id=agent_id)
                .order_by("reported_at")
                .values_list("state", flat=True)
            )

        wait_until(lambda: states() == ["idle", "active", "idle"], timeout=20, message="active then idle reports")
        assert Agent.objects.get(agent_id=agent_id).state == "idle"


class FlakyAgentKit:
    """An AgentKit stand-in whose /run answers 503 a given number of times, then 202."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.calls.append(body)
                failing = len(owner.calls) <= owner.failures
                answer = (
                    {"status": "error", "message": "overloaded"}
                    if failing
                    else {"status": "success", "message": "Task accepted", "data": {"dispatch_status": "scheduled"}}
                )
                raw = json.dumps(answer).encode()
                self.send_response(503 if failing else 202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_real_worker_retries_a_server_error_with_backoff(celery_worker_factory):
    agentkit = FlakyAgentKit(failures=2)
    try:
        celery_worker_factory({"AGENTKIT_API_URL": agentkit.url, "AGENTKIT_DISPATCH_BACKOFF_SECONDS": "0.2"})
        message = build_task_message(task_name="t", parameters={}, session_id="s", task_run_id="r")
        dispatches_enqueue(entries=[{"dispatch_ref": "r-flaky", "agent_id": "agent-x", "message": message}])
        wait_until(
            lambda: DispatchAttempt.objects.filter(dispatch_ref="r-flaky", outcome="accepted").exists(), timeout=30
        )
        rows = list(DispatchAttempt.objects.filter(dispatch_ref="r-flaky").order_by("attempt"))
        assert [(r.attempt, r.outcome, r.status_code) for r in rows] == [
            (1, "retrying", 503),
            (2, "retrying", 503),
            (3, "accepted", 202),
        ]
        assert (rows[1].created_at - rows[0].created_at).total_seconds() >= 0.1  # backed off, not hammered
        assert len(agentkit.calls) == 3 and agentkit.calls[0] == message
    finally:
        agentkit.server.shutdown()
