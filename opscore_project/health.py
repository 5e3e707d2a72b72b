"""``GET /health``: database and broker checks (contract section 5: ``{"status": "ok"}`` when healthy)."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        return f"database: {exc.__class__.__name__}"
    return None


def check_broker() -> str | None:
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return None
    import redis

    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"redis: {exc.__class__.__name__}"
    return None


@require_GET
def health(request):
    problems = [p for p in (check_database(), check_broker()) if p]
    checks = {"database": "ok", "redis": "ok"}
    for problem in problems:
        checks[problem.split(":", 1)[0]] = "down"
    if problems:
        return JsonResponse(
            {"status": "error", "code": "unavailable", "message": "Down: " + "; ".join(problems), "checks": checks},
            status=503,
        )
    return JsonResponse({"status": "ok", "checks": checks})
