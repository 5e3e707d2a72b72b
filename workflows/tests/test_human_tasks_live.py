"""Human tasks end to end: live Ops-Core, a real Celery worker running the engine (deadlines included), the mock
AgentKit with simulated agents over HTTP, and people answering over the API."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from lifecycle.services import agent_register
from mock_agentkit.testing import AgentSpec, running_mock_agentkit
from opscore_project.testing import free_port, running_celery_worker, running_web_server, wait_until
from workflows.models import TaskRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TERMINAL = ("completed", "failed", "cancelled")


def review_and_publish(workflow_id: str = "rp", **review) -> dict:
    return {
        "id": workflow_id,
        "tasks": [
            {"taskId": "summarise", "agentCapability": "summarise", "parameters": {"text": "{{ payload.text }}"},
             "nextTaskId": "review"},
            {"taskId": "review", "kind": "approval", "prompt": "Publish “{{ tasks.summarise.result.summary }}”?",
             "nextTaskId": "publish", **review},
            {"taskId": "publish", "agentCapability": "publish",
             "parameters": {"text": "{{ tasks.summarise.result.summary }}",
                            "approvedBy": "{{ tasks.review.result.by }}"}},
        ],
    }  # fmt: skip


class People:
    """Operators and agents talking to a live Ops-Core over HTTP."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def define(self, definition: dict) -> None:
        assert self.call("POST", "/v1/opscore/workflows", json=definition).status_code in (200, 201)

    def run(self, workflow_id: str, payload: dict | None = None) -> str:
        answer = self.call("POST", f"/v1/opscore/workflows/{workflow_id}/run", json={"initialPayload": payload or {}})
        assert answer.status_code == 202, answer.text
        return answer.json()["sessionId"]

    def session(self, session_id: str) -> dict:
        return self.call("GET", f"/v1/opscore/sessions/{session_id}").json()

    def wait_for(self, session_id: str, *statuses: str, timeout: float = 20) -> dict:
        try:
            return wait_until(
                lambda: (s := self.session(session_id))["status"] in statuses and s, timeout=timeout, interval=0.1
            )
        except AssertionError:
            raise AssertionError(f"session not {statuses}: {self.session(session_id)}") from None

    def answer(self, session_id: str, task_id: str, body: dict, token: str | None = None, **headers):
        return self.call(
            "POST", f"/v1/opscore/sessions/{session_id}/tasks/{task_id}/input", token, json=body, headers=headers
        )


@pytest.fixture
def people(live_stack) -> People:
    for spec in (AgentSpec("writer", ["summarise"], work_time=0.05), AgentSpec("press", ["publish"], work_time=0.05)):
        live_stack.mock.add_agent(spec)
    return People(live_stack.url, live_stack.operator_token)


def test_an_approval_pauses_the_branch_and_the_answer_reaches_the_next_task(people):
    people.define(review_and_publish())
    session_id = people.run("rp", {"text": "Human steps"})
    waiting = people.wait_for(session_id, "waiting_for_input")
    review = waiting["tasks"][-1]
    assert (review["taskId"], review["status"], review["agentId"]) == ("review", "waiting_for_input", None)
    assert review["prompt"] == "Publish “Human steps”?"
    assert TaskRun.objects.get(pk=review["taskRunId"]).agent_id is None  # no agent held
    inbox = people.call("GET", "/v1/opscore/inbox").json()["results"]
    assert [(i["sessionId"], i["taskId"]) for i in inbox] == [(session_id, "review")]
    answer = people.answer(session_id, "review", {"option": "approve", "comment": "lgtm"}, **{"Idempotency-Key": "k"})
    assert answer.status_code == 200, answer.text
    done = people.wait_for(session_id, *TERMINAL)
    assert done["status"] == "completed"
    publish = done["tasks"][-1]
    assert publish["result"]["echo"] == {"text": "Human steps", "approvedBy": "token:make-run"}
    assert done["tasks"][1]["result"] == {"approved": True, "option": "approve", "comment": "lgtm",
                                          "by": "token:make-run"}  # fmt: skip
    events = people.call("GET", f"/v1/opscore/events?session={session_id}").json()["results"]
    types = {e["eventType"] for e in events}
    assert {"task.waiting_for_input", "task.input_received", "session.completed"} <= types


def test_a_rejection_routes_to_on_reject(people, live_stack):
    live_stack.mock.add_agent(AgentSpec("mailer", ["notify"], work_time=0.05))
    flow = review_and_publish("rp_reject", onReject="tell_author")
    flow["tasks"].append(
        {
            "taskId": "tell_author",
            "agentCapability": "notify",
            "parameters": {"text": "{{ tasks.review.result.comment }}"},
        }
    )
    people.define(flow)
    session_id = people.run("rp_reject", {"text": "x"})
    people.wait_for(session_id, "waiting_for_input")
    assert people.answer(session_id, "review", {"option": "reject", "comment": "too short"}).status_code == 200
    done = people.wait_for(session_id, *TERMINAL)
    assert done["status"] == "completed"
    assert [(t["taskId"], t["status"]) for t in done["tasks"]] == [
        ("summarise", "completed"), ("review", "rejected"), ("tell_author", "completed"),
    ]  # fmt: skip
    assert done["tasks"][-1]["result"]["echo"] == {"text": "too short"}


def test_typed_input_refuses_bad_values_then_takes_a_good_one(people):
    people.define(
        {
            "id": "form",
            "tasks": [
                {"taskId": "form", "kind": "input", "prompt": "Title and length?", "nextTaskId": "publish",
                 "inputSchema": {"type": "object", "required": ["title", "words"], "properties": {
                     "title": {"type": "string", "maxLength": 20},
                     "words": {"type": "integer", "minimum": 10, "maximum": 500},
                     "tone": {"enum": ["formal", "casual"]}}}},
                {"taskId": "publish", "agentCapability": "publish",
                 "parameters": {"text": "{{ tasks.form.result.title }}", "words": "{{ tasks.form.result.words }}"}},
            ],
        }
    )  # fmt: skip
    session_id = people.run("form")
    people.wait_for(session_id, "waiting_for_input")
    bad = people.answer(session_id, "form", {"value": {"title": "t" * 21, "words": 5, "tone": "angry"}})
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"value.title", "value.words", "value.tone"}
    assert people.answer(session_id, "form", {"value": {"words": 50}}).json()["errors"] == {
        "value.title": ["This field is required."]
    }
    assert people.answer(session_id, "form", {"value": {"title": "Hi", "words": 50}}).status_code == 200
    done = people.wait_for(session_id, *TERMINAL)
    assert done["status"] == "completed" and done["tasks"][-1]["result"]["echo"] == {"text": "Hi", "words": 50}


def test_each_on_timeout_is_enforced_by_the_engine(people):
    outcomes = {}
    for name, task in (
        ("fail", {"kind": "approval", "onTimeout": "fail"}),
        ("approve", {"kind": "approval", "onTimeout": "approve"}),
        ("reject", {"kind": "approval", "onTimeout": "reject"}),
        ("default", {"kind": "input", "onTimeout": {"title": "untitled"},
                     "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}}}),
    ):  # fmt: skip
        people.define(
            {
                "id": f"timeout_{name}",
                "tasks": [
                    {"taskId": "ask", "prompt": "Anyone?", "timeoutSeconds": 1, "nextTaskId": "publish", **task},
                    {
                        "taskId": "publish",
                        "agentCapability": "publish",
                        "parameters": {"got": "{{ tasks.ask.result }}"},
                    },
                ],
            }
        )
        outcomes[name] = people.run(f"timeout_{name}")
    ended = {name: people.wait_for(session_id, *TERMINAL) for name, session_id in outcomes.items()}
    assert {name: s["status"] for name, s in ended.items()} == {
        "fail": "failed", "approve": "completed", "reject": "failed", "default": "completed",
    }  # fmt: skip
    assert [t["status"] for t in ended["fail"]["tasks"]] == ["timed_out"]
    assert "nobody answered within 1s" in ended["fail"]["error"]
    assert ended["approve"]["tasks"][-1]["result"]["echo"]["got"]["by"] == "timeout"
    assert ended["reject"]["tasks"][0]["status"] == "rejected"
    assert ended["default"]["tasks"][-1]["result"]["echo"] == {"got": {"title": "untitled"}}
    for session_id in outcomes.values():
        events = people.call("GET", f"/v1/opscore/events?session={session_id}&type=task.timed_out").json()
        assert events["count"] >= 1


def test_a_dag_branch_runs_while_another_waits(people):
    people.define(
        {
            "id": "dag_wait",
            "tasks": [
                {"taskId": "ask", "kind": "approval", "prompt": "Go?"},
                {"taskId": "work", "agentCapability": "summarise", "parameters": {"text": "branch"}},
                {"taskId": "join", "agentCapability": "publish", "dependsOn": ["ask", "work"]},
            ],
        }
    )
    session_id = people.run("dag_wait")
    waiting = people.wait_for(session_id, "waiting_for_input")  # the agent branch finished while the other waits
    assert {t["taskId"]: t["status"] for t in waiting["tasks"]} == {"ask": "waiting_for_input", "work": "completed"}
    people.answer(session_id, "ask", {"option": "approve"})
    assert people.wait_for(session_id, *TERMINAL)["status"] == "completed"


def race(people: People, session_id: str, tokens: list[str]) -> dict[str, requests.Response]:
    """Two operators answer the same task at the same moment (approve and reject)."""
    barrier = threading.Barrier(2)
    answers: dict[str, requests.Response] = {}

    def answer(token: str, option: str) -> None:
        barrier.wait()
        answers[option] = people.answer(session_id, "review", {"option": option}, token=token)

    threads = [threading.Thread(target=answer, args=args) for args in zip(tokens, ("approve", "reject"), strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_two_operators_answering_at_once_one_wins_and_the_other_gets_409(people, make_token):
    people.define(review_and_publish("race"))
    tokens = [make_token("operator", name="ann"), make_token("operator", name="ben")]
    for _ in range(3):
        session_id = people.run("race", {"text": "r"})
        people.wait_for(session_id, "waiting_for_input")
        answers = race(people, session_id, tokens)
        codes = sorted(a.status_code for a in answers.values())
        assert codes == [200, 409], {k: v.text for k, v in answers.items()}
        winner = next(k for k, v in answers.items() if v.status_code == 200)
        loser = next(v for v in answers.values() if v.status_code == 409)
        by = answers[winner].json()["answeredBy"]
        assert f"already answered by {by}" in loser.json()["message"]
        review = TaskRun.objects.get(session_id=session_id, task_id="review")
        assert review.answered_by == by and review.answer["option"] == winner


def test_the_agent_key_and_non_assignees_get_403(people, live_stack, make_token, django_user_model):
    from django.contrib.auth.models import Group

    people.define(review_and_publish("guarded", assignees=["editors"]))
    session_id = people.run("guarded", {"text": "g"})
    people.wait_for(session_id, "waiting_for_input")
    agent = people.answer(session_id, "review", {"option": "approve"}, token=live_stack.api_key)
    assert agent.status_code == 403 and "'operator' scope" in agent.json()["message"]
    outsider = people.answer(session_id, "review", {"option": "approve"})
    assert outsider.status_code == 403 and "editors" in outsider.json()["message"]
    assert people.call("GET", "/v1/opscore/inbox").json()["count"] == 0
    editor = django_user_model.objects.create_user("eve")
    editor.groups.add(Group.objects.create(name="editors"))
    token = make_token("operator", name="eve-cli", user=editor)
    assert people.call("GET", "/v1/opscore/inbox", token).json()["count"] == 1
    answer = people.answer(session_id, "review", {"option": "approve"}, token=token)
    assert answer.status_code == 200 and answer.json()["answeredBy"] == "eve"
    assert people.wait_for(session_id, *TERMINAL)["status"] == "completed"


def test_the_wait_survives_restarts_of_web_and_celery(settings, operator_token, monkeypatch):
    """The web server and the worker are stopped (the worker SIGKILLed) while a task waits, and while a second
    task's timeout passes; new ones pick both up from the database. The web server comes back on the same port
    (the simulated agents keep their Ops-Core URL)."""
    port = free_port()
    monkeypatch.setattr("opscore_project.testing.free_port", lambda: port)
    env = {"OPSCORE_API_KEY": settings.OPSCORE_API_KEY, "OPSCORE_ENGINE_TICK_SECONDS": "0.2"}
    with ExitStack() as stack:
        with running_web_server(env, workers=1) as url:
            mock = stack.enter_context(
                running_mock_agentkit(
                    opscore_url=url, api_key=settings.OPSCORE_API_KEY, webhook_secret=None,
                    agents=[AgentSpec("writer", ["summarise"], work_time=0.05),
                            AgentSpec("press", ["publish"], work_time=0.05)],
                )
            )  # fmt: skip
            for info in mock.agents:
                agent_register(
                    agent_id=info.agent_id, name=info.name, version="1.0", capabilities=list(info.capabilities),
                    contact_endpoint=info.contact_endpoint, metadata={}, source="webhook",
                )  # fmt: skip
            worker_env = {"AGENTKIT_API_URL": mock.url, **env}
            people = People(url, operator_token)
            people.define(review_and_publish("restart"))
            people.define(review_and_publish("restart_timeout", timeoutSeconds=4, onTimeout="approve"))
            with running_celery_worker(worker_env) as worker:
                waiting = people.run("restart", {"text": "kept"})
                people.wait_for(waiting, "waiting_for_input")
                timing_out = people.run("restart_timeout", {"text": "late"})
                people.wait_for(timing_out, "waiting_for_input")
                worker.kill()
        review = TaskRun.objects.get(session_id=timing_out, task_id="review")
        wait_until(lambda: timezone.now() > review.timeout_at + timedelta(seconds=0.5), timeout=10, interval=0.2)
        review.refresh_from_db()
        assert review.status == "waiting_for_input"  # its deadline passed while no engine ran
        with running_web_server(env, workers=1) as again:
            assert again == url
            stack.enter_context(running_celery_worker(worker_env, purge=False))
            people = People(again, operator_token)
            assert people.session(waiting)["status"] == "waiting_for_input"
            assert people.answer(waiting, "review", {"option": "approve"}).status_code == 200
            assert people.wait_for(waiting, *TERMINAL)["status"] == "completed"
            late = people.wait_for(timing_out, *TERMINAL)
            assert late["status"] == "completed" and late["tasks"][1]["result"]["by"] == "timeout"


def test_human_steps_are_posted_signed_to_the_callback_and_the_workflow_webhook(people, live_stack):
    import hashlib
    import hmac
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str, dict, bool]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = hmac.new(
                live_stack.webhook_secret.encode(), self.headers["X-OpsCore-Timestamp"].encode() + b"." + body,
                hashlib.sha256,
            ).hexdigest()  # fmt: skip
            received.append((self.path, json.loads(body), expected == self.headers.get("X-OpsCore-Signature")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        people.define({**review_and_publish("notified"), "notifyUrl": f"{base}/team"})
        answer = people.call(
            "POST",
            "/v1/opscore/workflows/notified/run",
            json={"initialPayload": {"text": "n"}, "callbackUrl": f"{base}/cb"},
        )
        session_id = answer.json()["sessionId"]
        people.wait_for(session_id, "waiting_for_input")
        wait_until(lambda: len(received) >= 2, timeout=15, message="the waiting notices")
        people.answer(session_id, "review", {"option": "approve"})
        people.wait_for(session_id, *TERMINAL)
        wait_until(lambda: len(received) >= 5, timeout=15, message="the answered notices and the completion callback")
    finally:
        server.shutdown()
    notices = sorted((path, body["event"]) for path, body, _ in received)
    assert notices == [
        ("/cb", "session.ended"), ("/cb", "task.input_received"), ("/cb", "task.waiting_for_input"),
        ("/team", "task.input_received"), ("/team", "task.waiting_for_input"),
    ]  # fmt: skip
    assert all(signed for _, _, signed in received)
    waiting = next(body for path, body, _ in received if body["event"] == "task.waiting_for_input")
    assert waiting["task"]["prompt"] == "Publish “n”?" and waiting["session"]["sessionId"] == session_id
