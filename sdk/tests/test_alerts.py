"""Alert rules and alerts through the SDK and ``opscore alerts`` against a live Ops-Core."""

from __future__ import annotations

import json

import pytest
from opscore_sdk import ConflictError, NotFoundError, ValidationError
from opscore_sdk.cli import EXIT_NOT_FOUND, EXIT_USAGE, EXIT_VALIDATION, main

pytestmark = pytest.mark.django_db(transaction=True)

TARGET = "https://alerts.example.com/hook"


@pytest.fixture(autouse=True)
def _public_target(monkeypatch):
    # The rule's URL is checked like a callback URL: answer its DNS lookup with a public address, offline.
    monkeypatch.setattr("workflows.callback_safety.resolve_host", lambda host, port: ["93.184.215.14"])
    # No worker runs here: keep delivery messages off the broker.
    monkeypatch.setattr("opscore_project.alerts.evaluation.dispatching.enqueue_deliveries", lambda ids, **kw: None)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_client_manages_rules_and_lists_alerts(client):
    rule = client.create_alert_rule(
        name="queue", condition="task_queue_wait", channel="webhook", target=TARGET, threshold=30, workflow_id="wf"
    )
    assert (rule.name, rule.threshold, rule.workflow_id, rule.quiet_period_seconds) == ("queue", 30, "wf", 300)
    assert [r.id for r in client.list_alert_rules()] == [rule.id]
    changed = client.update_alert_rule(rule.id, enabled=False, quietPeriodSeconds=60)
    assert changed.enabled is False and changed.quiet_period_seconds == 60
    assert client.get_alert_rule(rule.id).enabled is False
    with pytest.raises(ValidationError) as refused:
        client.update_alert_rule(rule.id, threshold=-1)
    assert "threshold" in refused.value.errors
    with pytest.raises(ConflictError):
        client.create_alert_rule(name="queue", condition="agent_error", channel="webhook", target=TARGET)
    client.delete_alert_rule(rule.id)
    with pytest.raises(NotFoundError):
        client.get_alert_rule(rule.id)


def test_listed_alerts_carry_their_deliveries(client):
    from lifecycle.models import Agent
    from opscore_project.alerts.evaluation import alerts_evaluate
    from opscore_project.alerts.models import AlertDelivery

    rule = client.create_alert_rule(name="errors", condition="agent_error", channel="webhook", target=TARGET)
    Agent.objects.create(agent_id="broken", source="state_report", state="error")
    alerts_evaluate()
    AlertDelivery.objects.update(attempts=1, reason="HTTP 500", status_code=500)
    (alert,) = client.list_alerts(status="firing")
    assert (alert.rule_id, alert.key, alert.status) == (rule.id, "broken", "firing")
    assert alert.deliveries[0].kind == "firing" and alert.deliveries[0].reason == "HTTP 500"
    assert len(client.list_alerts(status="resolved")) == 0


def test_the_cli_creates_lists_updates_and_deletes_rules(capsys, cli_env):
    code, out, err = run(
        capsys, "alerts", "rules", "create", "stale", "--condition", "agent_stale", "--channel", "slack",
        "--target", TARGET, "--threshold", "120", "--quiet", "600",
    )  # fmt: skip
    assert code == 0, err
    assert "stale" in out
    code, out, _ = run(capsys, "--json", "alerts", "rules", "list")
    (rule,) = json.loads(out)
    assert (rule["condition"], rule["threshold"], rule["quietPeriodSeconds"]) == ("agent_stale", 120, 600)
    code, out, _ = run(capsys, "alerts", "rules", "list")
    assert "agent_stale > 120" in out and "600s" in out
    code, out, _ = run(capsys, "alerts", "rules", "update", str(rule["id"]), "--disable")
    assert code == 0 and "updated" in out
    code, _, _ = run(capsys, "alerts", "rules", "update", str(rule["id"]))
    assert code == EXIT_USAGE
    code, _, err = run(capsys, "alerts", "rules", "update", str(rule["id"]), "--threshold", "-5")
    assert code == EXIT_VALIDATION and "threshold" in err
    code, out, _ = run(capsys, "alerts", "rules", "delete", str(rule["id"]))
    assert code == 0
    code, _, _ = run(capsys, "alerts", "rules", "delete", str(rule["id"]))
    assert code == EXIT_NOT_FOUND


def test_the_cli_lists_alerts(capsys, cli_env):
    from lifecycle.models import Agent
    from opscore_project.alerts.evaluation import alerts_evaluate
    from opscore_project.alerts.services import alert_rule_create

    code, out, _ = run(capsys, "alerts", "list")
    assert code == 0 and "No alerts." in out
    alert_rule_create(name="errors", condition="agent_error", channel="email", target="ops@example.com")
    Agent.objects.create(agent_id="broken", source="state_report", state="error")
    alerts_evaluate()
    code, out, _ = run(capsys, "alerts", "list", "--status", "firing")
    assert code == 0 and "broken" in out and "errors" in out and "firing:pending" in out
