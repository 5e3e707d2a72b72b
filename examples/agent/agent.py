"""A sample AgentKit-style agent: registers with AgentKit, does the tasks Ops-Core sends it, reports its state.

Standalone (needs only ``requests``): it speaks the wire contract in docs/agentkit-contract.md and imports nothing
from Ops-Core. Start it next to ``make run``::

    python examples/agent/agent.py --capability summarise

What it does, in contract order:

1. starts an HTTP server (its *contact endpoint*) and registers with AgentKit: ``POST /v1/agents/register``;
2. reports ``idle`` to Ops-Core at once (``POST /v1/opscore/agent/{id}/state``, Bearer key), as AgentKit's SDK does,
   announcing its capabilities in ``details.capabilities`` (Ops-Core then knows them even when AgentKit's
   registration webhook never comes, see docs/agentkit.md);
3. for each ``workflow_task`` message AgentKit forwards to it: reports ``active``, does the work, then reports
   ``idle`` with ``{"result": …}`` — or ``error`` with ``{"error_code", "message"}`` followed by ``idle`` with
   ``{}`` so it can take the next task;
4. on Ctrl-C or SIGTERM: finishes the task in hand, reports ``finished`` (so Ops-Core sends it nothing more) and
   deregisters from AgentKit (``DELETE /v1/agents/{id}``).

The "work" is a toy: ``summarise`` shortens ``text``, ``translate`` tags it with the language, ``classify`` labels
it short or long, anything else echoes its parameters. To try failures and retries, put ``fail_times: N`` in the
task parameters: the agent fails its first N attempts at that task of that session, then succeeds.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import secrets
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

# Seconds between an ``error`` report and the ``idle`` that makes the agent available again: the error report must
# be the newest state while Ops-Core reads it as the task's outcome.
IDLE_AFTER_ERROR_DELAY = 0.05


def do_work(task_name: str, parameters: dict[str, Any], agent_name: str) -> dict[str, Any]:
    """The agent's skill. Replace this with your own."""
    text = str(parameters.get("text") or "")
    result: dict[str, Any] = {"task_name": task_name, "agent": agent_name}
    if task_name == "summarise":
        first_sentence = text.split(". ")[0].strip()
        result["summary"] = first_sentence if len(first_sentence) <= 80 else first_sentence[:79] + "…"
    elif task_name == "translate":
        result["translation"] = f"[{parameters.get('target_language', 'fr')}] {text}"
    elif task_name == "classify":
        result["label"] = "long" if len(text) > 40 else "short"
    else:
        result["echo"] = parameters
    return result


class SampleAgent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.name = args.name or f"sample-{args.capabilities[0]}-{secrets.token_hex(2)}"
        self.capabilities = args.capabilities
        self.agentkit_url = args.agentkit_url.rstrip("/")
        self.opscore_url = args.opscore_url.rstrip("/")
        self.api_key = args.api_key
        self.work_time = args.work_time
        self.host = args.host
        self.agent_id: str | None = None
        self.http = requests.Session()
        self.tasks: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.failures: dict[tuple[str, str], int] = {}  # (session id, task name) -> failures so far
        self._last_timestamp: datetime | None = None
        self.server = ThreadingHTTPServer((args.host, args.port), self._handler_class())
        self.server.daemon_threads = True

    # --- talking to AgentKit and Ops-Core -------------------------------------------------------------------

    @property
    def contact_endpoint(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}/"

    def register(self) -> None:
        try:
            answer = self._post_registration()
        except requests.ConnectionError:
            raise SystemExit(f"cannot reach AgentKit at {self.agentkit_url} (is `make run` running?)") from None
        if answer.status_code != 201:
            raise SystemExit(f"registration failed: {answer.status_code} {answer.text}")
        self.agent_id = answer.json()["data"]["agentId"]
        say(f"registered {self.name} ({', '.join(self.capabilities)}) as {self.agent_id} at {self.contact_endpoint}")
        self.report("idle", {"capabilities": list(self.capabilities)})

    def _post_registration(self) -> requests.Response:
        return self.http.post(
            f"{self.agentkit_url}/v1/agents/register",
            json={
                "agentName": self.name,
                "version": "1.0",
                "capabilities": self.capabilities,
                "contactEndpoint": self.contact_endpoint,
                # Keep metadata empty: today's AgentKit sends no registration webhook for agents that have some.
                "metadata": {},
            },
            timeout=10,
        )

    def report(self, state: str, details: dict[str, Any]) -> None:
        """One state report, exactly as AgentKit's SDK sends it (contract §2). Not retried, like the SDK."""
        body = {"agentId": self.agent_id, "timestamp": self._timestamp(), "state": state, "details": details}
        try:
            answer = self.http.post(
                f"{self.opscore_url}/v1/opscore/agent/{self.agent_id}/state",
                data=json.dumps(body),
                headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
                allow_redirects=False,
                timeout=10,
            )
        except requests.RequestException as exc:
            say(f"state report {state} failed: {exc}")
            return
        if not answer.ok:
            say(f"state report {state} answered {answer.status_code}: {answer.text[:200]}")

    def deregister(self) -> None:
        self.report("finished", {})
        try:
            answer = self.http.delete(f"{self.agentkit_url}/v1/agents/{self.agent_id}", timeout=10)
            outcome = "deregistered" if answer.ok else f"AgentKit answered {answer.status_code} to deregistration of"
        except requests.RequestException as exc:
            outcome = f"could not deregister ({exc})"
        say(f"{outcome} {self.agent_id}")

    def _timestamp(self) -> str:
        # Strictly increasing, so two reports in the same microsecond still have an order.
        now = datetime.now(UTC)
        if self._last_timestamp is not None and now <= self._last_timestamp:
            now = self._last_timestamp + timedelta(microseconds=1)
        self._last_timestamp = now
        return now.isoformat()

    # --- doing tasks, one at a time ---------------------------------------------------------------------------

    def handle(self, message: dict[str, Any]) -> None:
        payload = message.get("payload") if isinstance(message.get("payload"), dict) else {}
        task_name = str(payload.get("task_name") or message.get("task_name") or "")
        parameters = payload.get("task_parameters") if isinstance(payload.get("task_parameters"), dict) else {}
        session_id = str(message.get("opscore_session_id") or "")
        say(f"task {task_name} (session {session_id}): active")
        self.report("active", {"task_name": task_name})
        time.sleep(self.work_time)
        key = (session_id, task_name)
        if self.failures.get(key, 0) < int(parameters.get("fail_times") or 0):
            self.failures[key] = self.failures.get(key, 0) + 1
            say(f"task {task_name} (session {session_id}): error (failure {self.failures[key]} as asked)")
            self.report("error", {"error_code": "ASKED_TO_FAIL", "message": f"{task_name} failed on purpose"})
            time.sleep(IDLE_AFTER_ERROR_DELAY)
            self.report("idle", {})
            return
        result = do_work(task_name, parameters, self.name)
        say(f"task {task_name} (session {session_id}): done")
        self.report("idle", {"result": result})

    def work_loop(self) -> None:
        while (message := self.tasks.get()) is not None:
            try:
                self.handle(message)
            except Exception as exc:  # noqa: BLE001 - one bad task must not stop the agent
                say(f"task crashed: {exc!r}")
                self.report("error", {"error_code": "AGENT_CRASH", "message": str(exc)})
                time.sleep(IDLE_AFTER_ERROR_DELAY)
                self.report("idle", {})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    message = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                except ValueError:
                    return self._answer(400, {"status": "error", "message": "invalid JSON"})
                if not isinstance(message, dict) or message.get("messageType") != "workflow_task":
                    return self._answer(400, {"status": "error", "message": "expected a workflow_task message"})
                agent.tasks.put(message)
                self._answer(200, {"status": "success", "message": "Task received."})

            def do_GET(self) -> None:
                self._answer(200, {"status": "ok", "agentId": agent.agent_id, "agentName": agent.name})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    # --- running ----------------------------------------------------------------------------------------------

    def run(self) -> None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.register()  # tasks that arrive before the worker starts wait in the queue
        worker = threading.Thread(target=self.work_loop)
        worker.start()
        stop.wait()
        say("stopping: finishing the task in hand")
        self.server.shutdown()
        self.tasks.put(None)
        worker.join()
        self.deregister()


def say(text: str) -> None:
    print(f"[agent] {text}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A sample AgentKit-style agent for Ops-Core workflows.")
    parser.add_argument(
        "--capability",
        dest="capabilities",
        action="append",
        required=True,
        help="a task it can do (repeat for several): summarise, translate, classify, or your own",
    )
    parser.add_argument("--name", help="agent name, unique within AgentKit (default: sample-<capability>-<random>)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on and advertise (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="contact endpoint port (default: any free port)")
    parser.add_argument(
        "--agentkit-url", default=os.environ.get("AGENTKIT_API_URL", "http://127.0.0.1:8000"), help="AgentKit API"
    )
    parser.add_argument(
        "--opscore-url", default=os.environ.get("OPSCORE_API_URL", "http://127.0.0.1:8080"), help="Ops-Core URL"
    )
    parser.add_argument("--api-key", default=os.environ.get("OPSCORE_API_KEY", ""), help="env OPSCORE_API_KEY")
    parser.add_argument("--work-time", type=float, default=0.5, help="seconds each task takes (0.5)")
    args = parser.parse_args(argv)
    args.capabilities = [c.strip() for item in args.capabilities for c in item.split(",") if c.strip()]
    if not args.api_key:
        parser.error("set OPSCORE_API_KEY (or --api-key): Ops-Core refuses state reports without it")
    return args


def main() -> None:
    SampleAgent(parse_args(sys.argv[1:])).run()


if __name__ == "__main__":
    main()
