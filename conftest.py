"""Fixtures shared by every app's tests: API clients, an operator, an API token."""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from opscore_project.authn.authentication import token_cache


@pytest.fixture(autouse=True)
def _clear_token_cache():
    token_cache.clear()
    yield
    token_cache.clear()


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
