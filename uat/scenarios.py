"""The acceptance scenarios, each from one user's point of view. A scenario returns the sentence that says how it
ended, or raises ``Failed``/``Skipped``; every step it takes is written to the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from uat.agents import Agent, FlakyAgent, SilentAgent, capability

SHOTS = Path(__file__).resolve().parent.parent / "var" / "uat"


class Failed(AssertionError):
    pass


class Skipped(Exception):
    pass


@dataclass
class Context:
    target: Any
    steps: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    browser: Any = None

    def step(self, text: str) -> None:
        self.steps.append(text)

    def api(self, method: str, path: str, **kwargs) -> Any:
        answer = requests.request(
            method,
            f"{self.target.url}{path}",
            headers={"Authorization": f"Bearer {self.target.api_key}"},
            timeout=15,
            **kwargs,
        )
        if answer.status_code >= 400:
            raise Failed(f"{method} {path} answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()

    def store(self, definition: dict[str, Any]) -> None:
        self.api("POST", "/v1/opscore/workflows", json=definition)

    def trigger(self, workflow_id: str, payload: dict[str, Any] | None = None) -> str:
        started = self.api("POST", f"/v1/opscore/workflows/{workflow_id}/run", json={"initialPayload": payload or {}})
        return started["sessionId"]

    def wait_session(self, session_id: str, timeout: float = 60) -> dict[str, Any]:
        return wait(
            lambda: (
                (s := self.api("GET", f"/v1/opscore/sessions/{session_id}"))["status"]
                in {"completed", "failed", "cancelled"}
                and s
            ),
            timeout,
            f"session {session_id} to end",
        )

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.browser.save_screenshot(str(path))
        self.screenshots.append(path)


def wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.3)


def one_task(workflow_id: str, cap: str, **policy: Any) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "version": "1.0",
        "tasks": [
            {
                "taskId": "work",
                "agentCapability": cap,
                "parameters": {"text": "{{ payload.text }}", "fail_times": "{{ payload.fail_times }}"},
                **policy,
            }
        ],
    }


# --- developer -------------------------------------------------------------------------------------------------


def developer_runs_the_tutorial_with_the_sdk(ctx: Context) -> str:
    """Developer: loads a workflow and runs it with the Python SDK, as in Getting started."""
    from opscore_sdk import OpsCoreClient

    cap = capability("dev")
    agent = Agent(ctx.target, cap).start()
    ctx.step(f"started the sample agent {agent.name} ({cap})")
    try:
        with OpsCoreClient(ctx.target.url, ctx.target.api_key) as ops:
            wait(lambda: ops.get_agent(agent.agent_id).capabilities == [cap], 20, "Ops-Core to know the agent")
            ops.create_workflow(
                {
                    "id": f"{cap}-flow",
                    "version": "1.0",
                    "tasks": [
                        {"taskId": "summarise", "agentCapability": cap, "parameters": {"text": "{{ payload.text }}"},
                         "nextTaskId": "report"},
                        {"taskId": "report", "agentCapability": cap,
                         "parameters": {"previous": "{{ tasks.summarise.result }}"}},
                    ],
                }
            )  # fmt: skip
            ctx.step("stored a two-task workflow with the SDK")
            started = ops.trigger_workflow(f"{cap}-flow", initial_payload={"text": "UAT. Second sentence."})
            ctx.step(f"triggered session {started.session_id}")
            session = ops.wait_for_session(started.session_id, timeout=60, poll_interval=0.3)
    finally:
        agent.stop()
    if session.status != "completed":
        raise Failed(f"session ended {session.status}: {session.error}")
    passed_on = session.tasks[1].result["echo"]["previous"]["task_name"]
    ctx.step(f"session completed; the second task received the first one's result ({passed_on!r})")
    return f"session {session.session_id} completed in {session.timings.get('totalMs')} ms, results chained"


# --- agent author ----------------------------------------------------------------------------------------------


def agent_author_joins_takes_tasks_and_leaves(ctx: Context) -> str:
    """Agent author: the sample agent joins, takes tasks, and leaves."""
    cap = capability("author")
    agent = Agent(ctx.target, cap).start()
    ctx.step(f"sample agent {agent.name} registered with AgentKit as {agent.agent_id}")
    known = wait(
        lambda: (a := ctx.api("GET", f"/v1/opscore/agents/{agent.agent_id}"))["capabilities"] == [cap] and a,
        20,
        "Ops-Core to list the agent with its capability",
    )
    ctx.step(f"Ops-Core lists it: state {known['state']}, registered {known['registered']}, source {known['source']}")
    ctx.store(one_task(f"{cap}-flow", cap))
    sessions = [ctx.trigger(f"{cap}-flow", {"text": f"task {i}"}) for i in range(3)]
    ended = [ctx.wait_session(s) for s in sessions]
    if any(s["status"] != "completed" for s in ended):
        raise Failed(f"not every session completed: {[s['status'] for s in ended]}")
    if any(t["agentId"] != agent.agent_id for s in ended for t in s["tasks"]):
        raise Failed("a task went to another agent")
    ctx.step(f"3 sessions completed, every task done by {agent.name} (it handled {agent.handled})")
    agent.stop()
    gone = wait(
        lambda: not (a := ctx.api("GET", f"/v1/opscore/agents/{agent.agent_id}"))["registered"] and a,
        20,
        "the agent to be deregistered",
    )
    ctx.step(f"stopped it: Ops-Core shows it deregistered, state {gone['state']}")
    return f"joined, completed 3 sessions, left (state {gone['state']}, deregistered)"


# --- operator (browser) ----------------------------------------------------------------------------------------


def operator_finds_a_failed_session_and_retries_it(ctx: Context) -> str:
    """Operator: logs in, finds a failed session from the dashboard, sees why on its timeline, retries it, sees it
    complete."""
    from selenium.webdriver.common.by import By

    if ctx.browser is None:
        raise Skipped("no headless Chromium (install chromium and chromium-driver)")
    if not ctx.target.admin_password:
        raise Skipped("no admin password (set OPSCORE_ADMIN_PASSWORD)")
    cap = capability("ops")
    agent = Agent(ctx.target, cap).start()
    try:
        wait(lambda: ctx.api("GET", f"/v1/opscore/agents/{agent.agent_id}")["capabilities"], 20, "the agent")
        ctx.store(one_task(f"{cap}-flow", cap, maxRetries=0))
        session_id = ctx.trigger(f"{cap}-flow", {"text": "will fail once", "fail_times": 1})
        failed = ctx.wait_session(session_id)
        if failed["status"] != "failed":
            raise Failed(f"setup: expected a failed session, got {failed['status']}")
        ctx.step(f"setup: session {session_id} failed (the agent was asked to fail once)")

        b = ctx.browser
        b.get(f"{ctx.target.url}/admin/login/?next=/dashboard/%3Flevel%3Derror")
        b.find_element(By.NAME, "username").send_keys(ctx.target.admin_user)
        b.find_element(By.NAME, "password").send_keys(ctx.target.admin_password)
        b.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait(lambda: "/dashboard/" in b.current_url, 15, "the dashboard after logging in")
        ctx.step("logged in; the dashboard shows error events")
        link = wait(
            lambda: next(
                (a for a in b.find_elements(By.CSS_SELECTOR, "#event-rows a.session")
                 if a.get_attribute("href").endswith(f"/dashboard/sessions/{session_id}/")),
                None,
            ),
            20,
            "the failed session among the error events",
        )  # fmt: skip
        ctx.shot("operator-1-dashboard-errors")
        link.click()
        wait(lambda: session_id in b.current_url, 10, "the session page")
        reason = b.find_element(By.CSS_SELECTOR, "p.error").text
        if "ASKED_TO_FAIL" not in reason:
            raise Failed(f"the timeline does not say why: {reason!r}")
        ctx.step(f"the timeline says why: {reason!r}")
        ctx.shot("operator-2-timeline-failed")

        b.get(f"{ctx.target.url}/admin/workflows/workflowsession/?q={session_id}")
        b.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{session_id}']").click()
        b.find_element(By.CSS_SELECTOR, "select[name=action] option[value=retry_sessions]").click()
        b.find_element(By.CSS_SELECTOR, "button[name=index]").click()
        message = wait(lambda: b.find_elements(By.CSS_SELECTOR, "ul.messagelist li"), 10, "the admin's message")
        ctx.step(f"retried it from the admin: {message[0].text!r}")
        done = ctx.wait_session(session_id)
        if done["status"] != "completed":
            raise Failed(f"after the retry the session ended {done['status']}")
        b.get(f"{ctx.target.url}/dashboard/sessions/{session_id}/")
        wait(lambda: "completed" in b.find_element(By.TAG_NAME, "body").text, 10, "the page to show completed")
        ctx.shot("operator-3-timeline-completed")
        ctx.step("the timeline shows the failed attempt and the completed retry")
    finally:
        agent.stop()
    return f"found failed session {session_id} on the dashboard, saw why, retried it, it completed"


# --- failures --------------------------------------------------------------------------------------------------


def failure_an_agent_stays_silent(ctx: Context) -> str:
    """Failures: an agent accepts a task and never reports. The task times out; the session fails, saying so."""
    cap = capability("silent")
    agent = SilentAgent(ctx.target, cap).start()
    try:
        wait(lambda: ctx.api("GET", f"/v1/opscore/agents/{agent.agent_id}")["capabilities"], 20, "the agent")
        ctx.store(one_task(f"{cap}-flow", cap, maxRetries=0, timeoutSeconds=3))
        session_id = ctx.trigger(f"{cap}-flow", {"text": "nobody will answer"})
        ctx.step(f"triggered {session_id}: one task, timeoutSeconds 3, no retry, for a silent agent")
        ended = ctx.wait_session(session_id, timeout=45)
    finally:
        agent.stop()
    run = ended["tasks"][0]
    if ended["status"] != "failed" or run["status"] != "timed_out":
        raise Failed(f"expected failed/timed_out, got {ended['status']}/{run['status']}")
    ctx.step(f"task run timed_out; session failed: {ended['error']!r}")
    return f"session failed with a clear reason: {ended['error']!r}"


def failure_an_agent_fails_half_its_tasks(ctx: Context) -> str:
    """Failures: an agent fails every other task. With one retry per task every session still completes, and the
    failed attempts are on record with the agent's error."""
    cap = capability("flaky")
    agent = FlakyAgent(ctx.target, cap).start()
    try:
        wait(lambda: ctx.api("GET", f"/v1/opscore/agents/{agent.agent_id}")["capabilities"], 20, "the agent")
        ctx.store(one_task(f"{cap}-flow", cap, maxRetries=1, retryBackoffSeconds=0.2))
        ended = [ctx.wait_session(ctx.trigger(f"{cap}-flow", {"text": f"job {i}"})) for i in range(4)]
    finally:
        agent.stop()
    runs = [t for s in ended for t in s["tasks"]]
    failed = [t for t in runs if t["status"] == "failed"]
    if any(s["status"] != "completed" for s in ended):
        raise Failed(f"sessions ended {[s['status'] for s in ended]}")
    if not failed or any("FLAKY" not in (t["error"] or "") for t in failed):
        raise Failed(f"expected failed attempts with the agent's error, got {[t['error'] for t in runs]}")
    ctx.step(f"4 sessions completed; {len(failed)} of {len(runs)} attempts failed with FLAKY and were retried")
    return f"4/4 sessions completed; {len(failed)} failed attempts retried, each with the agent's error"


def failure_agentkit_is_down(ctx: Context) -> str:
    """Failures: AgentKit stops answering. Dispatch fails after its retries; the session fails naming AgentKit,
    and Ops-Core itself stays healthy."""
    if ctx.target.mock is None:
        raise Skipped("needs the UAT's own stack, whose AgentKit it can stop (run without make run, or UAT_STACK=own)")
    cap = capability("akdown")
    agent = Agent(ctx.target, cap).start()
    wait(lambda: ctx.api("GET", f"/v1/opscore/agents/{agent.agent_id}")["capabilities"], 20, "the agent")
    ctx.store(one_task(f"{cap}-flow", cap, maxRetries=0))
    ctx.target.mock.stop()
    ctx.step("stopped AgentKit")
    try:
        session_id = ctx.trigger(f"{cap}-flow", {"text": "AgentKit is gone"})
        ended = ctx.wait_session(session_id, timeout=60)
    finally:
        agent.server.shutdown()
    if ended["status"] != "failed":
        raise Failed(f"expected the session to fail, got {ended['status']}")
    if "agentkit" not in (ended["error"] or "").lower():
        raise Failed(f"the reason does not name AgentKit: {ended['error']!r}")
    health = requests.get(f"{ctx.target.url}/health", timeout=10)
    ctx.step(f"session failed: {ended['error']!r}; /health answers {health.status_code}")
    if health.status_code != 200:
        raise Failed(f"Ops-Core itself became unhealthy: {health.text}")
    return f"session failed naming AgentKit ({ended['error']!r}); Ops-Core healthy"


SCENARIOS: list[tuple[str, str, Callable[[Context], str], bool]] = [
    ("developer", "runs the tutorial's workflow with the SDK", developer_runs_the_tutorial_with_the_sdk, False),
    ("agent author", "the sample agent joins, takes tasks, leaves", agent_author_joins_takes_tasks_and_leaves, False),
    ("operator", "finds a failed session, sees why, retries it", operator_finds_a_failed_session_and_retries_it, True),
    ("failures", "an agent stays silent", failure_an_agent_stays_silent, False),
    ("failures", "an agent fails half its tasks", failure_an_agent_fails_half_its_tasks, False),
    ("failures", "AgentKit is down", failure_agentkit_is_down, False),  # last: it stops AgentKit
]
