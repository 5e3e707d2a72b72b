"""Keys, tokens, webhook signatures and passwords sent through every logging path never reach the output:
request log, operation log, error pages and their tracebacks, and a Celery worker's log."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from opscore_project.lib.signing import sign
from opscore_project.observability import events
from opscore_project.observability.models import OperationEvent
from opscore_project.observability.oplog import log_operation

WEBHOOK_SECRET = "never-logged-webhook-secret-0123456789abcdef"
PASSWORD = "never-logged-admin-password-42"


def _bearer(key: str) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.django_db
@pytest.mark.urls("opscore_project.observability.tests.urls_for_errors")
def test_secrets_sent_through_every_request_path_never_reach_the_logs(
    json_logs, settings, api_key, operator_token, django_user_model
):
    settings.OPSCORE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.OPSCORE_THROTTLE_FAILED_AUTH = "2/minute"  # the throttle's own warning is a logging path too
    guessed = "ock_guessedTokenValue0123456789abcdefghij"
    report = {"agentId": "a1", "timestamp": "2026-11-24T09:00:00+00:00", "state": "idle", "details": {}}

    # request log + state fast path, DRF paths, failures and the throttle
    _bearer(api_key).post("/v1/opscore/agent/a1/state", report, format="json")
    _bearer(operator_token).get("/v1/opscore/workflows")
    for _ in range(3):
        _bearer(guessed).get("/v1/opscore/workflows", REMOTE_ADDR="203.0.113.50")
    # error page with a traceback, while an operator token is in the headers
    _bearer(operator_token).get("/v1/opscore/test/boom")
    # the signed webhook: a valid one, a replay, and one with a bad signature
    body = json.dumps({"event_type": "REGISTER", "agent_details": {"agentId": "a1"}}).encode()
    timestamp = str(int(time.time()))
    signature = sign(WEBHOOK_SECRET, timestamp, body)
    for sig in (signature, signature, "0" * 64):
        Client().post(
            "/v1/opscore/internal/agent/notify",
            body,
            content_type="application/json",
            HTTP_X_AGENTKIT_TIMESTAMP=timestamp,
            HTTP_X_AGENTKIT_SIGNATURE=sig,
        )
    # an admin login with a wrong password, then a right one
    django_user_model.objects.create_user("ops", password=PASSWORD, is_staff=True)
    Client().post("/admin/login/", {"username": "ops", "password": PASSWORD + "x", "next": "/admin/"})
    Client().post("/admin/login/", {"username": "ops", "password": PASSWORD, "next": "/admin/"})
    # the operation log, with secrets in its context and message
    log_operation(
        events.SYNC_RUN,
        {"headers": {"Authorization": f"Bearer {operator_token}"}, "note": f"token={guessed}", "password": PASSWORD},
        message=f"called back with {operator_token} and key {api_key}",
    )

    logged = json_logs.text
    stored = json.dumps(list(OperationEvent.objects.values("message", "context")), default=str)
    assert "Unhandled exception" in logged and "boom" in json_logs.text.lower()  # the paths above did log
    assert "replayed AgentKit webhook" in logged and "Blocking API-key authentication" in logged
    for secret in (api_key, operator_token, guessed, signature, WEBHOOK_SECRET, PASSWORD, "hunter2"):
        assert secret not in logged, secret
        assert secret not in stored, secret


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_a_celery_worker_never_logs_the_secrets_of_a_callback(celery_worker, settings):
    """A callback URL carrying a credential is refused (loopback) by the worker; neither its log nor the events
    show the credential."""
    from workflows import services
    from workflows.models import WorkflowSession
    from workflows.tests.conftest import linear

    secret = "cb-query-secret-0123456789"
    definition, _ = services.definition_create(data=linear("nobody_has_this", wf_id="leak"))
    session, _ = services.session_start(
        definition=definition, agent=None, initial_payload={"password": PASSWORD},
        callback_url=f"https://127.0.0.1/hook?api_key={secret}",
    )  # fmt: skip
    services.session_cancel(session_id=session.id)  # ends it: the worker delivers the callback

    from opscore_project.testing import wait_until
    from workflows.models import CallbackDelivery

    wait_until(lambda: CallbackDelivery.objects.filter(session=session).exists(), message="a delivery attempt")
    assert WorkflowSession.objects.get(pk=session.pk).status == "cancelled"
    delivery = CallbackDelivery.objects.get(session=session, attempt=1)
    assert delivery.error.startswith("refused:") and secret not in delivery.error
    events_text = json.dumps(list(OperationEvent.objects.values("message", "context")), default=str)
    worker_log = celery_worker.log()
    assert "deliver_callback" in worker_log
    for value in (secret, PASSWORD, settings.OPSCORE_API_KEY):
        assert value not in worker_log
        assert value not in events_text
