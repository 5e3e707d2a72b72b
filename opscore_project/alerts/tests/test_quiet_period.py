"""The same alert is not repeated inside its rule's quiet period; a resolution follows only a sent firing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from lifecycle.models import Agent
from opscore_project.alerts.evaluation import alerts_evaluate
from opscore_project.alerts.models import Alert
from opscore_project.observability.oplog import log_operation

pytestmark = pytest.mark.django_db


def _events(receiver) -> list[str]:
    return [body["event"] for body in receiver.bodies]


def test_a_flapping_agent_is_notified_once_per_quiet_period(make_rule, make_agent, receiver, deliver):
    make_rule("agent_error", quiet_period_seconds=600)
    agent = make_agent("flappy", state="error")
    t0 = timezone.now()

    def at(seconds: int, state: str) -> None:
        Agent.objects.filter(pk=agent.pk).update(state=state)
        alerts_evaluate(now=t0 + timedelta(seconds=seconds))
        deliver(now=t0 + timedelta(seconds=seconds))

    at(0, "error")
    at(10, "idle")
    assert _events(receiver) == ["alert.firing", "alert.resolved"]
    at(20, "error")  # again within the quiet period: the same alert reopens, nothing is sent
    at(30, "idle")  # nor its resolution, since its firing was not sent
    at(40, "error")
    assert _events(receiver) == ["alert.firing", "alert.resolved"]
    alert = Alert.objects.get()
    assert alert.status == "firing" and alert.occurrences == 3
    at(300, "error")
    assert len(receiver.requests) == 2
    at(611, "error")  # a quiet period after the last notification, still firing: now it is sent
    assert _events(receiver) == ["alert.firing", "alert.resolved", "alert.firing"]
    at(620, "idle")
    assert _events(receiver)[-1] == "alert.resolved"
    assert Alert.objects.count() == 1


def test_after_the_quiet_period_a_new_alert_is_raised(make_rule, make_agent, receiver, deliver):
    make_rule("agent_error", quiet_period_seconds=60)
    agent = make_agent("a1", state="error")
    t0 = timezone.now()
    alerts_evaluate(now=t0)
    Agent.objects.filter(pk=agent.pk).update(state="idle")
    alerts_evaluate(now=t0 + timedelta(seconds=10))
    Agent.objects.filter(pk=agent.pk).update(state="error")
    alerts_evaluate(now=t0 + timedelta(seconds=120))
    deliver(now=t0 + timedelta(seconds=120))
    assert _events(receiver) == ["alert.firing", "alert.resolved", "alert.firing"]
    assert list(Alert.objects.order_by("id").values_list("status", flat=True)) == ["resolved", "firing"]


def test_repeated_quarantines_of_one_agent_are_sent_once_inside_the_quiet_period(make_rule, receiver, deliver):
    make_rule("agent_quarantined", quiet_period_seconds=300)
    t0 = timezone.now()
    alerts_evaluate(now=t0)
    for offset in (1, 2, 3):
        log_operation("agent.quarantined", agent_id="a1")
        alerts_evaluate(now=t0 + timedelta(seconds=offset))
    deliver(now=t0 + timedelta(seconds=3))
    assert _events(receiver) == ["alert.firing"]
    assert Alert.objects.get().occurrences == 3
    log_operation("agent.quarantined", agent_id="a1")  # still quarantined after the quiet period: sent again
    alerts_evaluate(now=t0 + timedelta(seconds=400))
    deliver(now=t0 + timedelta(seconds=400))
    assert _events(receiver) == ["alert.firing", "alert.firing"]


def test_each_rule_keeps_its_own_alert_for_the_same_subject(make_rule, make_agent, receiver, deliver):
    make_rule("agent_error", name="first")
    make_rule("agent_error", name="second")
    make_agent("a1", state="error")
    alerts_evaluate()
    alerts_evaluate()
    deliver()
    assert sorted(Alert.objects.values_list("rule__name", flat=True)) == ["first", "second"]
    assert len(receiver.requests) == 2
