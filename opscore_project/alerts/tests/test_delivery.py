"""Deliveries: signed webhooks, Slack-compatible bodies, email, retries with backoff and jitter, SSRF refusals."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from opscore_project.alerts.delivery import alert_delivery_attempt, backoff_seconds
from opscore_project.alerts.evaluation import alerts_evaluate
from opscore_project.alerts.models import AlertDelivery
from opscore_project.alerts.services import alert_rule_create
from opscore_project.lib.signing import signature_matches

pytestmark = pytest.mark.django_db


@pytest.fixture
def broken_agent(make_agent):
    return make_agent("broken", state="error")


def test_a_webhook_is_signed_like_completion_callbacks(make_rule, broken_agent, receiver, deliver, settings):
    settings.OPSCORE_CALLBACK_SECRET = "alert-secret"
    rule = make_rule("agent_error")
    alerts_evaluate()
    deliver()
    headers, body = receiver.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert signature_matches("alert-secret", headers["X-OpsCore-Timestamp"], body, headers["X-OpsCore-Signature"])
    assert not signature_matches("other", headers["X-OpsCore-Timestamp"], body, headers["X-OpsCore-Signature"])
    payload = receiver.bodies[0]
    assert payload["event"] == "alert.firing"
    assert payload["alert"]["ruleId"] == rule.pk and payload["alert"]["condition"] == "agent_error"
    assert payload["alert"]["key"] == "broken" and payload["alert"]["details"]["agentId"] == "broken"
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.status_code, delivery.attempts) == ("sent", 200, 1)


def test_the_webhook_secret_signs_when_no_callback_secret_is_set(make_rule, broken_agent, receiver, deliver, settings):
    settings.OPSCORE_CALLBACK_SECRET, settings.OPSCORE_WEBHOOK_SECRET = "", "hook-secret"
    make_rule("agent_error")
    alerts_evaluate()
    deliver()
    headers, body = receiver.requests[0]
    assert signature_matches("hook-secret", headers["X-OpsCore-Timestamp"], body, headers["X-OpsCore-Signature"])


def test_a_slack_channel_gets_an_incoming_webhook_body(make_rule, broken_agent, receiver, deliver):
    make_rule("agent_error", channel="slack")
    alerts_evaluate()
    deliver()
    headers, _ = receiver.requests[0]
    body = receiver.bodies[0]
    assert "X-OpsCore-Signature" not in headers
    assert "[FIRING] rule-agent_error: Agent broken is in error" in body["text"]
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"


def test_an_email_channel_sends_through_the_django_backend(broken_agent, deliver, queued, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert_rule_create(name="mail", condition="agent_error", channel="email", target="ops@example.com, b@example.com")
    alerts_evaluate()
    deliver()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com", "b@example.com"]
    assert message.subject == "[Ops-Core FIRING] mail: Agent broken is in error"
    assert "Rule: mail (agent_error)" in message.body
    assert AlertDelivery.objects.get().status == "sent"


def test_a_failed_delivery_is_retried_with_backoff_until_it_succeeds(
    make_rule, broken_agent, receiver, queued, settings
):
    settings.OPSCORE_ALERT_BACKOFF_SECONDS = 10
    receiver.statuses = [500, 503, 200]
    make_rule("agent_error")
    alerts_evaluate()
    (delivery_id,) = queued
    first = alert_delivery_attempt(delivery_id=delivery_id)
    assert first.delivery.status == "pending" and first.delivery.reason == "HTTP 500"
    assert 5 <= first.retry_in <= 10  # 10 s × 2^0, half of it jittered
    early = alert_delivery_attempt(delivery_id=delivery_id)  # not due yet: no request, told when it is
    assert early.delivery is None and 0 < early.retry_in <= first.retry_in
    assert len(receiver.requests) == 1
    later = timezone.now() + timedelta(seconds=first.retry_in + 0.1)
    second = alert_delivery_attempt(delivery_id=delivery_id, now=later)
    assert second.delivery.reason == "HTTP 503" and 10 <= second.retry_in <= 20  # 10 s × 2^1
    third = alert_delivery_attempt(delivery_id=delivery_id, now=later + timedelta(seconds=second.retry_in + 0.1))
    assert third.retry_in is None
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.status_code, delivery.reason) == ("sent", 3, 200, "")
    assert len(receiver.requests) == 3


def test_a_delivery_fails_for_good_after_its_attempts(make_rule, broken_agent, receiver, queued, settings):
    settings.OPSCORE_ALERT_MAX_ATTEMPTS = 2
    receiver.statuses = [500]
    make_rule("agent_error")
    alerts_evaluate()
    (delivery_id,) = queued
    first = alert_delivery_attempt(delivery_id=delivery_id)
    last = alert_delivery_attempt(delivery_id=delivery_id, now=timezone.now() + timedelta(seconds=first.retry_in + 1))
    assert last.retry_in is None
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.reason) == ("failed", 2, "HTTP 500")
    assert alert_delivery_attempt(delivery_id=delivery_id, now=timezone.now() + timedelta(hours=1)).delivery is None
    assert len(receiver.requests) == 2


def test_a_url_the_safety_rules_refuse_fails_at_once_without_a_request(
    make_rule, broken_agent, receiver, queued, settings
):
    make_rule("agent_error")
    settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = []  # loopback no longer allowed when it is sent
    alerts_evaluate()
    outcome = alert_delivery_attempt(delivery_id=queued[0])
    assert outcome.retry_in is None
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "failed" and delivery.reason.startswith("refused:")
    assert receiver.requests == []


def test_an_attempt_is_claimed_once(make_rule, broken_agent, receiver, queued):
    make_rule("agent_error")
    alerts_evaluate()
    AlertDelivery.objects.update(next_attempt_at=timezone.now() + timedelta(seconds=30))  # claimed by another
    assert alert_delivery_attempt(delivery_id=queued[0]).delivery is None
    assert receiver.requests == []


def test_backoff_doubles_up_to_a_cap_with_jitter():
    rng = random.Random(7)
    delays = [backoff_seconds(attempt, base=2, rng=rng) for attempt in range(1, 6)]
    for attempt, delay in enumerate(delays, start=1):
        assert 2**attempt / 2 <= delay <= 2**attempt
    assert len({round(d / 2**a, 3) for a, d in enumerate(delays, start=1)}) > 1  # not in lock-step
    assert backoff_seconds(40, base=2) <= 3000
