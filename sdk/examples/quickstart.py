"""Report a state for an agent, trigger the sample workflow and wait for it to end.

Run against `make run` (from the repository root):

    export OPSCORE_API_KEY=$(grep OPSCORE_API_KEY var/local.env | cut -d= -f2)
    .venv/bin/python sdk/examples/quickstart.py
"""

import logging
import sys

from opscore_sdk import OpsCoreClient, OpsCoreError, SessionWaitTimeout

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def main() -> int:
    # URL and key from OPSCORE_API_URL / OPSCORE_API_KEY (URL default http://127.0.0.1:8080).
    with OpsCoreClient(timeout=10, retries=3) as ops:
        # 1. Report a state, exactly as the AgentKit SDK does from inside an agent.
        ops.report_state("quickstart-agent", "idle", {"note": "hello from opscore_sdk"})
        state = ops.get_state("quickstart-agent")
        print(f"{state.agent_id} is {state.state} since {state.timestamp:%H:%M:%S}")

        # 2. The simulated agents make run started, and what the sample workflow needs.
        for agent in ops.iter_agents(registered=True):
            print(f"  {agent.name or agent.agent_id:<16} {agent.state or '-':<8} {', '.join(agent.capabilities)}")
        workflow = ops.get_workflow("sample_workflow")
        print(f"workflow {workflow.id} v{workflow.version}: {len(workflow.tasks)} tasks, needs {workflow.capabilities}")

        # 3. Trigger it (each task routed by its capability) and wait for the outcome.
        started = ops.trigger_workflow(
            "sample_workflow",
            initial_payload={"text": "Ops-Core keeps track of AgentKit agents and runs workflows on them."},
        )
        print(f"started session {started.session_id}")
        try:
            session = ops.wait_for_session(started.session_id, timeout=300, poll_interval=1)
        except SessionWaitTimeout as exc:
            print(f"gave up waiting: {exc}")
            return 1
        for task in session.tasks:
            print(f"  {task.task_id:<12} #{task.attempt} {task.status:<10} {task.agent_id} {task.duration_ms} ms")
        print(f"session {session.session_id} {session.status} in {session.timings.get('totalMs')} ms")
        return 0 if session.status == "completed" else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OpsCoreError as exc:  # AuthenticationError, NotFoundError, OpsCoreConnectionError, ...
        sys.exit(f"error: {exc}")
