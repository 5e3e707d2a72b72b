from types import SimpleNamespace

from opscore_project.observability import celery_signals
from opscore_project.observability.context import get_log_ids, get_request_id, request_id_var


def test_the_request_id_travels_with_an_enqueued_task(json_logs):
    headers: dict = {}
    token = request_id_var.set("req-enqueue-001")
    try:
        celery_signals._add_request_id(headers=headers)
    finally:
        request_id_var.reset(token)
    assert headers == {"opscore_request_id": "req-enqueue-001"}

    task = SimpleNamespace(
        name="workflows.tasks.dispatch", request=SimpleNamespace(opscore_request_id="req-enqueue-001")
    )
    celery_signals._bind_request_id(task_id="c0ffee00-1111-2222-3333-444455556666", task=task)
    assert get_request_id() == "req-enqueue-001"
    assert get_log_ids()["celery_task"] == "workflows.tasks.dispatch"
    celery_signals._unbind_request_id(task_id="c0ffee00-1111-2222-3333-444455556666", task=task, state="SUCCESS")
    assert get_request_id() == ""
    (span,) = json_logs.find(logger="opscore.trace")
    assert span["span"]["name"] == "celery.workflows.tasks.dispatch" and span["span"]["status"] == "ok"
    assert span["request_id"] == "req-enqueue-001"
    assert span["celery_task_id"] == "c0ffee00-1111-2222-3333-444455556666"


def test_a_task_without_a_request_uses_its_own_id():
    task = SimpleNamespace(name="t", request=SimpleNamespace())
    celery_signals._bind_request_id(task_id="c0ffee00-aaaa-bbbb-cccc-ddddeeeeffff", task=task)
    assert get_request_id() == "c0ffee00-aaaa-bbbb-cccc-ddddeeeeffff"
    celery_signals._unbind_request_id(task_id="c0ffee00-aaaa-bbbb-cccc-ddddeeeeffff")
