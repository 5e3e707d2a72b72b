import pytest

from opscore_project import health

pytestmark = pytest.mark.django_db


def test_health_is_ok_when_database_and_redis_answer(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_health_names_redis_when_it_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"] == {"database": "ok", "redis": "down"}
    assert "redis" in body["message"]


def test_health_names_the_database_when_it_is_down(client, monkeypatch):
    monkeypatch.setattr(health, "check_database", lambda: "database: OperationalError")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "down"
