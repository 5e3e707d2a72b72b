"""`make bench-engine`: what the workflow engine itself costs per task, in one process, without HTTP.

``make bench-workflows`` measures the whole stack; its figures move with everything else on a shared machine
(the mock AgentKit, the load generator, other jobs). This one isolates the engine: it registers ``--agents``
agents, starts ``--sessions`` runs of the three-step sample workflow, and then plays the agents itself, in
rounds: every dispatched run gets its ``active`` report, the engine steps, every running run gets its ``idle``
report (the result), the engine steps. Dispatches are not relayed (the outbox rows stay).

It prints the CPU the engine steps used per task completed, in this process (Python) and in its Postgres backend,
measured around the steps only (the state reports between them are the web's work, measured by bench-state).
CPU time, not wall time: the figure holds on a busy machine better than throughput does, so it is the one to
compare before and after an engine change.

    python bench/bench_engine.py --sessions 600 --agents 30
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path

import _harness as h  # bench/ is on sys.path when this runs as a script

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
CAPABILITIES = ["summarise", "translate", "classify"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=600)
    parser.add_argument("--agents", type=int, default=30)
    args = parser.parse_args()

    with h.private_database(f"opscore_bench_engine_{os.getpid()}") as database_url:
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "opscore_project.settings",
                "DEBUG": "false",
                "SECRET_KEY": secrets.token_urlsafe(32),
                "OPSCORE_API_KEY": secrets.token_urlsafe(32),
                "OPSCORE_WEBHOOK_SECRET": secrets.token_urlsafe(32),
                "DATABASE_URL": database_url,
                "LOG_LEVEL": "WARNING",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from django.db import connection

        from opscore_project.observability import counters

        counters.BACKGROUND_FLUSH = False  # flushed below, before the database is dropped (no thread left behind)
        result = run(args, database_url)
        counters.counters_flush()
        connection.close()
    print(json.dumps(result, indent=2))
    return 0


def run(args: argparse.Namespace, database_url: str) -> dict:
    from django.db import connection
    from django.utils import timezone

    from lifecycle.models import Agent, AgentSource
    from lifecycle.services import agent_register, agent_state_report
    from workflows import services
    from workflows.models import TaskRun

    for i in range(args.agents):
        agent_register(
            agent_id=f"bench-{i}", name="", version="", capabilities=CAPABILITIES, contact_endpoint="",
            metadata={}, source=AgentSource.WEBHOOK,
        )  # fmt: skip
        agent_state_report(agent_id=f"bench-{i}", state="idle", details={}, reported_at=timezone.now())
    definition, _ = services.definition_create(
        data=json.loads((BASE_DIR / "workflows/samples/sample_workflow.json").read_text())
    )
    for i in range(args.sessions):
        services.session_start(definition=definition, initial_payload={"text": f"document {i}"})

    connection.ensure_connection()
    backend = [connection.connection.info.backend_pid]
    cpu = {"engine": 0.0, "postgres": 0.0}
    steps = 0

    def drain() -> None:
        nonlocal steps
        python, postgres = time.process_time(), h.process_cpu_seconds(backend)
        steps += len(services.engine_drain(relay=lambda refs: None, check_overdue=False))
        cpu["engine"] += time.process_time() - python
        cpu["postgres"] += h.process_cpu_seconds(backend) - postgres

    names = dict(Agent.objects.values_list("pk", "agent_id"))
    clock = timezone.now()
    began = time.monotonic()
    drain()
    while True:
        runs = list(TaskRun.objects.filter(status__in=["dispatched", "running"]).values_list("agent_id", "status"))
        if not runs:
            break
        for state, wanted in (("active", "dispatched"), ("idle", "running")):
            clock += timedelta(milliseconds=10)
            for agent_pk, status in runs:
                if status == wanted or state == "idle":
                    details = {"result": {"summary": "done"}} if state == "idle" else {}
                    agent_state_report(agent_id=names[agent_pk], state=state, details=details, reported_at=clock)
            drain()
    elapsed = time.monotonic() - began
    completed = TaskRun.objects.filter(status="completed").count()
    return {
        "benchmark": "engine",
        "commit": h.git_commit(),
        "sessions": args.sessions,
        "agents": args.agents,
        "tasksCompleted": completed,
        "engineSteps": steps,
        "elapsedSeconds": round(elapsed, 1),
        "engineCpuMsPerTask": round(1000 * cpu["engine"] / max(completed, 1), 3),
        "postgresCpuMsPerTask": round(1000 * cpu["postgres"] / max(completed, 1), 3),
        "note": "CPU of the engine steps only (the state reports between them are not counted)",
    }


if __name__ == "__main__":
    sys.exit(main())
