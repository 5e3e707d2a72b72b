"""Fixtures shared by every app's tests: API clients, an operator, an API token."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from opscore_project.authn.authentication import token_cache
from opscore_project.authn.throttling import blocked_addresses
from opscore_project.observability import counters

# Metric counters of this (test) process are written when a test flushes them or reads /metrics, never by a
# background thread that would write outside the test's transaction.
counters.BACKGROUND_FLUSH = False


@pytest.fixture(autouse=True)
def _clear_token_cache():
    token_cache.clear()
    yield
    token_cache.clear()


@pytest.fixture(autouse=True)
def _fresh_throttle_counters(settings):
    """Each test has its own throttle counters, seen webhook signatures (they live in the real Redis) and metric
    counter buffer."""
    settings.OPSCORE_CACHE_NAMESPACE = f"test:{uuid.uuid4().hex}"
    blocked_addresses.clear()
    counters.counters_discard()
    yield
    blocked_addresses.clear()


@pytest.fixture
def api_key() -> str:
    return settings.OPSCORE_API_KEY


@pytest.fixture
def api_client(api_key) -> APIClient:
    """A client authenticated with the shared key, as agents are."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


@pytest.fixture
def make_token(db):
    """``make_token("operator", "metrics", agent_id=..., expires_at=...)`` → the raw key of a new API token."""
    from opscore_project.authn.services import api_token_create

    def make(*scopes: str, name: str = "test", **kwargs) -> str:
        return api_token_create(name=name, scopes=list(scopes) or ["operator"], **kwargs)[1]

    return make


@pytest.fixture
def operator_token(make_token) -> str:
    """An API token with the operator scope (definitions, sessions, events), as the SDK and CLI use."""
    return make_token("operator", name="operator-tests")


@pytest.fixture
def operator_api_client(operator_token) -> APIClient:
    """A client authenticated with an operator token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {operator_token}")
    return client


@pytest.fixture
def metrics_client(make_token) -> APIClient:
    """A client with a metrics-scoped token, as a Prometheus scraper uses."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token('metrics', name='prometheus')}")
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user(
        username="operator", password="operator-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def celery_worker_factory(transactional_db):
    """Start real Celery workers (Redis broker, test database): ``celery_worker_factory(extra_env)``."""
    from contextlib import ExitStack

    from opscore_project.testing import running_celery_worker

    with ExitStack() as stack:

        def start(extra_env: dict[str, str] | None = None, **kwargs):
            return stack.enter_context(running_celery_worker(extra_env, **kwargs))

        yield start


@pytest.fixture
def celery_worker(celery_worker_factory):
    """One real Celery worker with the default settings."""
    return celery_worker_factory()


@pytest.fixture
def live_stack(live_server, settings, api_key, make_token, celery_worker_factory):
    """What ``make run`` starts, on free ports against the test database: a live Ops-Core, a real Celery worker
    and the mock AgentKit with no simulated agents yet (add them with
    ``live_stack.mock.add_agent(AgentSpec(...))``). The webhook secret is shared, so agents appear with their
    names and capabilities. ``operator_token`` is what ``make run`` saves in ``var/operator-token.txt``."""
    from types import SimpleNamespace

    from mock_agentkit.testing import running_mock_agentkit

    secret = "live-stack-webhook-secret"
    settings.OPSCORE_WEBHOOK_SECRET = secret
    # Completion callbacks may reach a receiver on loopback, as on a developer's machine (docs/security.md).
    loopback_callbacks = {"OPSCORE_CALLBACK_ALLOW_HTTP": "true", "OPSCORE_CALLBACK_ALLOWED_HOSTS": "127.0.0.1"}
    settings.OPSCORE_CALLBACK_ALLOW_HTTP, settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = True, ["127.0.0.1"]
    with running_mock_agentkit(opscore_url=live_server.url, api_key=api_key, webhook_secret=secret) as mock:
        settings.AGENTKIT_API_URL = mock.url
        celery_worker_factory({"AGENTKIT_API_URL": mock.url, "OPSCORE_WEBHOOK_SECRET": secret, **loopback_callbacks})
        yield SimpleNamespace(
            url=live_server.url,
            api_key=api_key,
            operator_token=make_token("operator", name="make-run"),
            webhook_secret=secret,
            mock=mock,
        )
