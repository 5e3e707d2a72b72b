"""The services' seam towards Celery: deliveries are queued by task name after the surrounding commit, so the
services never import the tasks module."""

from __future__ import annotations

from django.db import transaction

DELIVER_TASK = "opscore_project.alerts.tasks.deliver_alert"


def enqueue_deliveries(delivery_ids: list[int], *, countdown: float | None = None) -> None:
    """Queue one delivery task per id once the current transaction commits (at once outside a transaction)."""
    if not delivery_ids:
        return

    def send() -> None:
        from opscore_project.celery import app

        for delivery_id in dict.fromkeys(delivery_ids):
            app.send_task(DELIVER_TASK, args=[delivery_id], countdown=countdown)

    transaction.on_commit(send)
