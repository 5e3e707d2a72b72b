"""The Celery tasks on a real worker: a failed delivery is retried by the worker after its backoff."""

from __future__ import annotations

import pytest

from lifecycle.models import Agent
from opscore_project.alerts.evaluation import alerts_evaluate
from opscore_project.alerts.models import AlertDelivery
from opscore_project.alerts.services import alert_rule_create
from opscore_project.testing import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_the_worker_retries_a_failed_delivery_after_its_backoff(celery_worker_factory, receiver):
    celery_worker_factory(
        {
            "OPSCORE_CALLBACK_ALLOW_HTTP": "true",
            "OPSCORE_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
            "OPSCORE_ALERT_BACKOFF_SECONDS": "0.5",
        }
    )
    receiver.statuses = [503, 500, 200]
    alert_rule_create(name="errors", condition="agent_error", channel="webhook", target=receiver.url)
    Agent.objects.create(agent_id="broken", source="state_report", state="error")
    alerts_evaluate()  # queues the delivery for the worker once committed
    wait_until(
        lambda: AlertDelivery.objects.filter(status="sent").exists(), timeout=30, message="the delivery to be sent"
    )
    delivery = AlertDelivery.objects.get()
    assert (delivery.attempts, delivery.status_code, delivery.reason) == (3, 200, "")
    assert len(receiver.requests) == 3
    assert len({body for _, body in receiver.requests}) == 1  # the same notification each time
    first_wait, second_wait = (b - a for a, b in zip(receiver.times, receiver.times[1:], strict=False))
    assert first_wait >= 0.25 and second_wait >= 0.5  # 0.5 s then 1 s, each at least half of it (jitter)
