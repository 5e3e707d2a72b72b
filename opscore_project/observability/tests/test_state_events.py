"""The state endpoint records agent.discovered / agent.state_changed inside its single statement."""

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle import services
from opscore_project.observability.context import request_id_var
from opscore_project.observability.models import OperationEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["postgres", "generic"])
def report(request, settings):
    """Run every test through the one-statement Postgres path and the ORM path of the embedded mode."""
    settings.IS_POSTGRES = request.param == "postgres"

    def send(state: str, at: datetime, agent_id: str = "agent-1"):
        return services.agent_state_report(agent_id=agent_id, state=state, details={}, reported_at=at)

    return send


def log():
    return list(OperationEvent.objects.order_by("id").values_list("event_type", "agent_id", "context"))


def test_a_new_agent_is_discovered_and_gets_its_first_state(report):
    report("idle", T0)
    (discovered, changed) = log()
    assert discovered[:2] == ("agent.discovered", "agent-1")
    assert changed[0] == "agent.state_changed"
    assert (changed[2]["from"], changed[2]["to"]) == ("", "idle")


def test_only_real_state_changes_are_recorded(report):
    report("idle", T0)
    report("idle", T0 + timedelta(seconds=1))  # heartbeat, same state
    report("idle", T0 + timedelta(seconds=1))  # exact duplicate
    report("active", T0 + timedelta(seconds=2))
    report("idle", T0 + timedelta(seconds=1, milliseconds=500))  # older than the current state: history only
    assert [row[0] for row in log()] == ["agent.discovered", "agent.state_changed", "agent.state_changed"]
    last = log()[-1][2]
    assert (last["from"], last["to"], last["source"]) == ("idle", "active", "state_report")


def test_state_events_carry_the_request_id(report):
    token = request_id_var.set("req-state-00001")
    try:
        report("error", T0, agent_id="agent-9")
    finally:
        request_id_var.reset(token)
    assert set(OperationEvent.objects.values_list("request_id", flat=True)) == {"req-state-00001"}


def test_both_paths_write_the_same_events(settings):
    results = {}
    for mode in ("postgres", "generic"):
        settings.IS_POSTGRES = mode == "postgres"
        agent = f"agent-{mode}"
        for index, state in enumerate(["initializing", "idle", "idle", "active", "finished"]):
            services.agent_state_report(
                agent_id=agent, state=state, details={}, reported_at=T0 + timedelta(seconds=index)
            )
        results[mode] = [
            (e.event_type, e.level, e.message, e.context["from"], e.context["to"], e.context["reported_at"][:19])
            for e in OperationEvent.objects.filter(agent_id=agent).order_by("id")
        ]
    assert results["postgres"] == results["generic"]
    assert len(results["postgres"]) == 5  # discovered + 4 changes
