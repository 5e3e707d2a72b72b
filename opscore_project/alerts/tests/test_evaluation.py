"""The evaluation pass: its cursor on the operation log, its lock, and the safety net for lost deliveries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from opscore_project.alerts.evaluation import CURSOR_NAME, EVALUATE_LOCK, alerts_evaluate, alerts_evaluate_locked
from opscore_project.alerts.models import Alert, AlertCursor, AlertDelivery
from opscore_project.locks import try_lock
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import log_operation
from opscore_project.schedules import default_schedules

pytestmark = pytest.mark.django_db


def test_the_first_pass_starts_at_the_end_of_the_log(make_rule, queued):
    log_operation("agent.quarantined", agent_id="old")
    make_rule("agent_quarantined")
    alerts_evaluate()
    assert not Alert.objects.exists()
    assert AlertCursor.objects.get(name=CURSOR_NAME).last_event_id == OperationEvent.objects.latest("pk").pk


def test_the_cursor_waits_at_a_fresh_gap_and_passes_an_old_one(make_rule, queued):
    make_rule("agent_quarantined")
    log_operation("agent.registered", agent_id="a0")
    alerts_evaluate()
    start = AlertCursor.objects.get(name=CURSOR_NAME).last_event_id
    # An id taken by a transaction that has not committed yet: the event after it is held back.
    OperationEvent.objects.create(id=start + 2, event_type="agent.quarantined", agent_id="a1")
    alerts_evaluate()
    assert not Alert.objects.exists()
    assert AlertCursor.objects.get(name=CURSOR_NAME).last_event_id == start
    alerts_evaluate(now=timezone.now() + timedelta(seconds=60))  # the missing id never came (a rollback)
    assert Alert.objects.get().dedupe_key == "a1"
    assert AlertCursor.objects.get(name=CURSOR_NAME).last_event_id == start + 2


def test_an_event_is_acted_on_once(make_rule, queued):
    make_rule("agent_quarantined", quiet_period_seconds=0)
    alerts_evaluate()
    log_operation("agent.quarantined", agent_id="a1")
    alerts_evaluate()
    alerts_evaluate()
    assert Alert.objects.get().occurrences == 1
    assert len(queued) == 1


def test_an_evaluation_already_running_is_not_overlapped(make_rule, make_agent, queued):
    make_rule("agent_error")
    make_agent("a1", state="error")
    with try_lock(EVALUATE_LOCK) as acquired:
        assert acquired
        report = _in_another_connection(alerts_evaluate_locked)
    assert report.skipped_locked and not Alert.objects.exists()
    assert alerts_evaluate_locked().fired == 1


def _in_another_connection(function):
    """Run ``function`` on a thread (its own database connection, so its own advisory-lock session)."""
    import threading

    from django.db import connection

    result = {}

    def run():
        try:
            result["value"] = function()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result["value"]


def test_a_pending_delivery_whose_message_was_lost_is_queued_again(make_rule, make_agent, queued):
    make_rule("agent_error")
    make_agent("a1", state="error")
    alerts_evaluate()
    delivery = AlertDelivery.objects.get()
    assert queued == [delivery.pk]
    queued.clear()
    alerts_evaluate()
    assert queued == []
    later = timezone.now() + timedelta(seconds=120)
    alerts_evaluate(now=later)
    assert queued == [delivery.pk]
    alerts_evaluate(now=later + timedelta(seconds=15))  # queued again only a minute later
    assert queued == [delivery.pk]
    alerts_evaluate(now=later + timedelta(seconds=75))
    assert queued == [delivery.pk, delivery.pk]


def test_the_evaluation_is_a_default_periodic_task(settings):
    spec = next(s for s in default_schedules() if s.task == "opscore_project.alerts.tasks.evaluate_alerts")
    assert spec.every_seconds == settings.OPSCORE_ALERT_EVALUATE_SECONDS and spec.expires_seconds


def test_a_long_backlog_is_read_batch_by_batch(make_rule, queued, monkeypatch):
    monkeypatch.setattr("opscore_project.alerts.evaluation.EVENT_BATCH", 3)
    make_rule("agent_quarantined")
    log_operation("agent.registered", agent_id="a0")
    alerts_evaluate()
    for n in range(10):
        log_operation("agent.quarantined" if n == 8 else "agent.state_changed", agent_id=f"a{n}")
    report = alerts_evaluate()
    assert report.events_read == 1 and Alert.objects.get().dedupe_key == "a8"
    assert AlertCursor.objects.get(name=CURSOR_NAME).last_event_id == OperationEvent.objects.latest("pk").pk


def test_without_event_rules_the_cursor_follows_the_log(make_rule, queued):
    make_rule("agent_error")
    alerts_evaluate()
    log_operation("agent.quarantined", agent_id="before-the-rule")
    alerts_evaluate()
    assert AlertCursor.objects.get(name=CURSOR_NAME).last_event_id == OperationEvent.objects.latest("pk").pk
    make_rule("agent_quarantined")
    alerts_evaluate()
    assert not Alert.objects.filter(dedupe_key="before-the-rule").exists()
