"""Approval and input tasks on the engine: waiting, answers, rejections, timeouts, cancel and retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from opscore_project.errors import Conflict, ValidationFailed
from opscore_project.observability.models import OperationEvent
from workflows import services
from workflows.engine.human import Actor, Forbidden
from workflows.models import TaskRun, WorkflowSession
from workflows.validation import DefinitionInvalid, validate_definition

pytestmark = pytest.mark.django_db

ALICE = Actor("alice")


def review_flow(**review) -> dict:
    return {
        "id": "review_flow",
        "tasks": [
            {"taskId": "draft", "agentCapability": "write", "parameters": {"topic": "{{ payload.topic }}"},
             "nextTaskId": "review"},
            {"taskId": "review", "kind": "approval", "prompt": "Publish {{ tasks.draft.result.title }}?",
             "nextTaskId": "publish", **review},
            {"taskId": "publish", "agentCapability": "publish",
             "parameters": {"approved": "{{ tasks.review.result.approved }}", "by": "{{ tasks.review.result.by }}"}},
        ],
    }  # fmt: skip


def form_flow(**form) -> dict:
    return {
        "id": "form_flow",
        "tasks": [
            {"taskId": "form", "kind": "input", "prompt": "Amount?", "nextTaskId": "pay",
             "inputSchema": {"type": "object", "required": ["amount"], "properties": {
                 "amount": {"type": "integer", "minimum": 1, "maximum": 100},
                 "note": {"type": "string", "maxLength": 5},
                 "currency": {"enum": ["EUR", "USD"]}}}, **form},
            {"taskId": "pay", "agentCapability": "pay", "parameters": {"amount": "{{ tasks.form.result.amount }}"}},
        ],
    }  # fmt: skip


def answer(session, task_id="review", actor=ALICE, **body):
    run, _ = services.human_task_answer(session_id=session.pk, task_id=task_id, actor=actor, body=body)
    services.engine_drain()
    session.refresh_from_db()
    return run


def runs(session) -> list[tuple[str, str]]:
    return [(r.task_id, r.status) for r in TaskRun.objects.filter(session=session).order_by("created_at", "attempt")]


@pytest.fixture
def drafted(define, make_agent, start, report, sent):
    """A review_flow session whose draft completed: the review waits."""

    def make(**review):
        make_agent("w1", ["write", "publish"])
        session = start(define(review_flow(**review)), payload={"topic": "t"})
        report("w1", "active")
        report("w1", "idle", {"result": {"title": "Hello"}})
        session.refresh_from_db()
        return session

    return make


def test_an_approval_waits_without_holding_an_agent_and_its_answer_is_the_result(drafted, report, sent):
    session = drafted()
    assert session.status == "waiting_for_input"
    review = TaskRun.objects.get(session=session, task_id="review")
    assert (review.status, review.agent_id, review.prompt) == ("waiting_for_input", None, "Publish Hello?")
    assert len(sent.calls) == 1  # only the draft went to an agent
    answer(session, option="approve", comment="fine")
    review.refresh_from_db()
    assert review.result == {"approved": True, "option": "approve", "comment": "fine", "by": "alice"}
    assert (review.answered_by, review.answered_via, review.answer) == (
        "alice",
        "api",
        {"option": "approve", "comment": "fine"},
    )
    assert session.status == "running"
    assert sent.calls[-1]["parameters"] == {"approved": True, "by": "alice"}
    report("w1", "active")
    report("w1", "idle", {"result": "ok"})
    session.refresh_from_db()
    assert session.status == "completed"
    types = list(OperationEvent.objects.filter(session_id=str(session.pk)).values_list("event_type", flat=True))
    assert "task.waiting_for_input" in types and "task.input_received" in types


def test_a_second_answer_gets_a_conflict_naming_who_answered_first(drafted):
    session = drafted()
    answer(session, option="approve")
    with pytest.raises(Conflict, match="already answered by alice"):
        answer(session, actor=Actor("bob"), option="reject")
    assert TaskRun.objects.get(session=session, task_id="review").result["approved"] is True


def test_the_same_idempotency_key_returns_the_stored_answer(drafted):
    session = drafted()
    kwargs = {"session_id": session.pk, "task_id": "review", "actor": ALICE, "idempotency_key": "k1"}
    first, created = services.human_task_answer(body={"option": "approve"}, **kwargs)
    again, created_again = services.human_task_answer(body={"option": "reject"}, **kwargs)
    assert (created, created_again, again.pk, again.result["approved"]) == (True, False, first.pk, True)


def test_a_rejection_without_on_reject_fails_the_session(drafted):
    session = drafted()
    answer(session, option="reject", comment="too long")
    assert session.status == "failed" and "rejected by alice: too long" in session.error
    assert ("review", "rejected") in runs(session) and ("publish", "pending") not in runs(session)


def test_a_rejection_routes_to_on_reject_and_the_session_completes_without_the_approved_path(
    define, make_agent, start, report, sent
):
    make_agent("w1", ["write", "publish", "notify"])
    flow = review_flow(onReject="tell")
    flow["tasks"].append(
        {"taskId": "tell", "agentCapability": "notify", "parameters": {"why": "{{ tasks.review.result.comment }}"}}
    )
    session = start(define(flow))
    report("w1", "active")
    report("w1", "idle", {"result": {"title": "x"}})
    answer(session, option="reject", comment="no")
    assert sent.calls[-1]["task_name"] == "notify" and sent.calls[-1]["parameters"] == {"why": "no"}
    report("w1", "active")
    report("w1", "idle", {"result": "told"})
    session.refresh_from_db()
    assert session.status == "completed"
    assert runs(session) == [("draft", "completed"), ("review", "rejected"), ("tell", "completed")]


def test_bad_input_values_are_refused_naming_each_field(define, start):
    session = start(define(form_flow()))
    assert session.status == "waiting_for_input" and session.started_at is not None
    with pytest.raises(ValidationFailed) as caught:
        answer(session, "form", value={"amount": 500, "note": "far too long", "currency": "GBP", "extra": 1})
    assert set(caught.value.errors) == {"value.amount", "value.note", "value.currency", "value.extra"}
    with pytest.raises(ValidationFailed) as caught:
        answer(session, "form", value={"note": "x"})
    assert caught.value.errors == {"value.amount": ["This field is required."]}
    with pytest.raises(ValidationFailed):
        answer(session, "form", option="approve")
    assert TaskRun.objects.get(session=session, task_id="form").answered_at is None


def test_a_valid_input_becomes_the_result_later_tasks_read(define, make_agent, start, sent):
    make_agent("p1", ["pay"])
    session = start(define(form_flow()))
    answer(session, "form", value={"amount": 7, "currency": "EUR"})
    assert TaskRun.objects.get(session=session, task_id="form").result == {"amount": 7, "currency": "EUR"}
    assert sent.calls[-1]["parameters"] == {"amount": 7}


def test_only_assignees_may_answer(define, start, django_user_model):
    session = start(define(form_flow(assignees=["finance", "carol"])))
    with pytest.raises(Forbidden):
        answer(session, "form", actor=Actor("dave"), value={"amount": 1})
    answer(session, "form", actor=Actor("erin", frozenset({"finance"})), value={"amount": 1})
    assert TaskRun.objects.get(session=session, task_id="form").answered_by == "erin"


@pytest.mark.parametrize(
    ("on_timeout", "status", "result"),
    [
        (None, "failed", None),
        ("fail", "failed", None),
        ("approve", "running", {"approved": True, "option": "approve", "comment": "", "by": "timeout"}),
        ("reject", "failed", {"approved": False, "option": "reject", "comment": "", "by": "timeout"}),
    ],
)
def test_an_unanswered_approval_times_out_by_its_on_timeout(drafted, on_timeout, status, result):
    extra = {"timeoutSeconds": 60} | ({"onTimeout": on_timeout} if on_timeout else {})
    session = drafted(**extra)
    review = TaskRun.objects.get(session=session, task_id="review")
    assert review.timeout_at is not None
    services.engine_step(now=timezone.now() + timedelta(seconds=30))
    review.refresh_from_db()
    assert review.status == "waiting_for_input"
    services.engine_step(now=timezone.now() + timedelta(seconds=61))
    review.refresh_from_db()
    session.refresh_from_db()
    assert session.status == status
    assert review.result == result
    assert (
        review.status
        == {None: "timed_out", "fail": "timed_out", "approve": "completed", "reject": "rejected"}[on_timeout]
    )
    assert OperationEvent.objects.filter(session_id=str(session.pk), event_type="task.timed_out").exists()


def test_an_unanswered_input_takes_its_default_value(define, make_agent, start, sent):
    make_agent("p1", ["pay"])
    session = start(define(form_flow(timeoutSeconds=5, onTimeout={"amount": 3})))
    services.engine_step(now=timezone.now() + timedelta(seconds=6))
    services.engine_drain()
    form = TaskRun.objects.get(session=session, task_id="form")
    assert (form.status, form.result, form.answered_by) == ("completed", {"amount": 3}, "timeout")
    assert sent.calls[-1]["parameters"] == {"amount": 3}


def test_a_reminder_is_logged_once(define, start):
    session = start(define(form_flow(remindAfterSeconds=10)))
    for _ in range(2):
        services.engine_step(now=timezone.now() + timedelta(seconds=11))
    assert OperationEvent.objects.filter(session_id=str(session.pk), event_type="task.reminder").count() == 1


def test_a_dag_branch_runs_while_another_waits(define, make_agent, start, report, sent):
    make_agent("w1", ["work"])
    flow = {
        "id": "dag",
        "tasks": [
            {"taskId": "ask", "kind": "approval", "prompt": "Go?"},
            {"taskId": "work", "agentCapability": "work"},
            {"taskId": "join", "agentCapability": "work", "dependsOn": ["ask", "work"]},
        ],
    }
    session = start(define(flow))
    assert session.status == "running" and [c["task_name"] for c in sent.calls] == ["work"]
    report("w1", "active")
    report("w1", "idle", {"result": 1})
    session.refresh_from_db()
    assert session.status == "waiting_for_input"
    answer(session, "ask", option="approve")
    assert session.status == "running" and len(sent.calls) == 2


def test_a_waiting_session_can_be_cancelled_and_a_rejected_one_retried(drafted):
    session = drafted()
    services.session_cancel(session_id=session.pk)
    session.refresh_from_db()
    assert session.status == "cancelled" and ("review", "cancelled") in runs(session)
    with pytest.raises(Conflict, match="not waiting"):
        answer(session, option="approve")


def test_a_failed_session_retried_asks_again(drafted):
    session = drafted()
    answer(session, option="reject")
    services.session_retry(session_id=session.pk)
    session.refresh_from_db()
    assert session.status == "waiting_for_input"
    assert runs(session)[-1] == ("review", "waiting_for_input")
    answer(session, actor=Actor("bob"), option="approve")
    first = TaskRun.objects.filter(session=session, task_id="review").order_by("attempt").first()
    assert (first.answered_by, first.result["approved"]) == ("alice", False)  # the audit of the first answer stays


def test_agent_capability_is_needed_only_when_tasks_are_routed_by_capability(define, make_agent, start, sent):
    flow = {"id": "solo", "tasks": [{"taskId": "a"}]}
    definition = define(flow)
    with pytest.raises(ValidationFailed) as caught:
        services.session_start(definition=definition)
    assert "tasks[0].agentCapability" in caught.value.errors
    agent = make_agent("solo-agent", ["anything"])
    session = start(definition, agent=agent)
    assert sent.calls[0]["agent_id"] == "solo-agent" and session.status == "running"
    assert WorkflowSession.objects.count() == 1


@pytest.mark.parametrize(
    ("task", "path"),
    [
        ({"kind": "approval"}, "tasks[0].prompt"),
        ({"kind": "approval", "prompt": "p", "agentCapability": "x"}, "tasks[0].agentCapability"),
        ({"kind": "approval", "prompt": "p", "options": ["only"]}, "tasks[0].options"),
        ({"kind": "approval", "prompt": "p", "onTimeout": "approve"}, "tasks[0].onTimeout"),
        ({"kind": "approval", "prompt": "p", "onReject": "nowhere"}, "tasks[0].onReject"),
        ({"kind": "input", "prompt": "p"}, "tasks[0].inputSchema"),
        ({"kind": "input", "prompt": "p", "inputSchema": {"type": "array"}}, "tasks[0].inputSchema.type"),
        (
            {"kind": "input", "prompt": "p", "inputSchema": {"type": "object", "properties": {"a": {"type": "x"}}}},
            "tasks[0].inputSchema.properties.a.type",
        ),
        (
            {
                "kind": "input",
                "prompt": "p",
                "timeoutSeconds": 5,
                "onTimeout": {"a": "no"},
                "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
            },
            "tasks[0].onTimeout.a",
        ),  # fmt: skip
        ({"kind": "robot"}, "tasks[0].kind"),
        ({"agentCapability": "c", "prompt": "p"}, "tasks[0].prompt"),
    ],
)
def test_definition_errors_name_the_field_path(task, path):
    with pytest.raises(DefinitionInvalid) as caught:
        validate_definition({"id": "x", "tasks": [{"taskId": "t", **task}]})
    assert path in caught.value.errors, caught.value.errors


def test_an_agent_definition_keeps_its_content_hash():
    spec = validate_definition({"id": "x", "tasks": [{"taskId": "t", "agentCapability": "c"}]})
    assert "kind" not in spec["tasks"][0] and "notifyUrl" not in spec


def test_a_failed_notice_is_retried_for_the_failed_url_only_then_logged(define, start, monkeypatch, settings):
    from workflows import tasks
    from workflows.callback_safety import CallbackResult

    settings.OPSCORE_CALLBACK_MAX_ATTEMPTS = 2
    posted: list[str] = []

    def post(url, **kwargs):
        posted.append(url)
        return CallbackResult(500, "HTTP 500") if "team" in url else CallbackResult(204, "")

    monkeypatch.setattr("workflows.engine.human.post_callback", post)
    retries: list[dict] = []
    monkeypatch.setattr(tasks.deliver_human_notice, "apply_async", lambda **kwargs: retries.append(kwargs))
    session = start(
        define({**form_flow(), "notifyUrl": "https://team.example/hook"}), callback_url="https://a.example/cb"
    )
    run = TaskRun.objects.get(session=session, task_id="form")
    tasks.deliver_human_notice(str(run.pk), "task.waiting_for_input")
    assert posted == ["https://a.example/cb", "https://team.example/hook"]
    assert retries[0]["args"] == [str(run.pk), "task.waiting_for_input", 2, ["https://team.example/hook"]]
    assert not OperationEvent.objects.filter(event_type="callback.failed").exists()
    tasks.deliver_human_notice(*retries[0]["args"])
    assert posted[-1] == "https://team.example/hook" and len(posted) == 3 and len(retries) == 1
    assert OperationEvent.objects.filter(event_type="callback.failed", session_id=str(session.pk)).count() == 1


def test_a_session_waiting_for_a_person_keeps_its_place_under_a_workflow_limit(define, make_agent, start, report, sent):
    from workflows.engine import controls

    make_agent("w1", ["work"])
    flow = {
        "id": "limited",
        "tasks": [
            {"taskId": "work", "agentCapability": "work", "nextTaskId": "ask"},
            {"taskId": "ask", "kind": "approval", "prompt": "Go?"},
        ],
    }
    definition = define(flow)
    controls.workflow_limits_set(workflow_id="limited", max_running_sessions=1)
    first, second = start(definition), start(definition)
    assert (first.status, second.status) == ("running", "pending")
    report("w1", "active")
    report("w1", "idle", {"result": 1})
    services.engine_drain()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("waiting_for_input", "pending")  # the wait keeps the slot
    answer(first, "ask", option="approve")
    second.refresh_from_db()
    assert first.status == "completed" and second.status == "running"
