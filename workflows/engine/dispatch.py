"""The dispatch pass: ready runs go to free agents, and each dispatch is written to the bridge's outbox.

Set-based: one SELECT of the ready runs (highest priority, then oldest; SKIP LOCKED, so concurrent passes never
take the same run), one SELECT of the free agents, matching in memory, one compare-and-swap UPDATE claiming the
chosen agents (an agent that stopped being free meanwhile is simply not claimed), one UPDATE of the runs, one
INSERT into the outbox, one INSERT of events. The POST to AgentKit happens later, outside any transaction.

Operator controls (``controls``): maintenance mode makes the pass do nothing; paused workflows and limits that are
full are left out of the ready-runs read, and the room left in the others is handed out in priority order while
matching. With no control configured the pass runs exactly as without them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q

from lifecycle.models import Agent, AgentState, BreakerState, takes_tasks, takes_tasks_sql
from lifecycle.services import agents_claim_idle
from opscore_project.lib.db import WriteBatch, bulk_update_rows, raw_models
from opscore_project.observability import events
from workflows import dispatching, selectors
from workflows.engine.controls import DispatchControls, DispatchGate, dispatch_controls_read, dispatch_gate
from workflows.engine.oplog import EventBuffer
from workflows.models import SessionStatus, TaskRun, TaskRunStatus, WorkflowSession

FREE_AGENTS_LIMIT = 5000
# Ready runs read per free agent: enough to find work for every agent when the first runs in priority order
# avoid it, without locking the whole queue on every pass.
RUNS_PER_FREE_AGENT = 2
# What the pass reads of a ready run and its session (no results, no timestamps it does not set).
_DISPATCH_FIELDS = (
    "id", "session_id", "task_id", "attempt", "capability", "priority", "target_agent_id", "avoid_agent_id",
    "parameters", "dispatch_count", "ready_at", "created_at", "status",
    "session__id", "session__definition_id", "session__workflow_id", "session__status",
)  # fmt: skip


@dataclass(frozen=True)
class Dispatched:
    run_id: uuid.UUID
    session_id: uuid.UUID
    agent_id: str
    dispatch_ref: str


def free_agents(now: datetime):
    """Registered, idle, holding nothing, recently seen, not drained and not quarantined (or past the cool-down: one
    trial task): least recently assigned first (spreads load)."""
    cutoff = now - timedelta(seconds=settings.OPSCORE_AGENT_STALE_SECONDS)
    return (
        Agent.objects.filter(
            takes_tasks(now),
            state=AgentState.IDLE,
            assigned_task="",
            deregistered_at__isnull=True,
            last_seen_at__gte=cutoff,
        )
        .only(
            "id",
            "agent_id",
            "capabilities",
            "capabilities_known",
            "state_timestamp",
            "last_assigned_at",
            "breaker_state",
        )  # fmt: skip
        .order_by(F("last_assigned_at").asc(nulls_first=True), "id")
    )


# The pass's two reads as plain SQL on Postgres: they run on every step, and building them with the ORM cost more
# than Postgres answering them (measured). The ORM versions below are their twins for SQLite.
_FREE_AGENTS_SQL = f"""
SELECT id, agent_id, capabilities, capabilities_known, state_timestamp, last_assigned_at, breaker_state
FROM lifecycle_agent
WHERE state = 'idle' AND assigned_task = '' AND deregistered_at IS NULL AND last_seen_at >= %s
  AND {takes_tasks_sql("", "%s")}
ORDER BY last_assigned_at ASC NULLS FIRST, id LIMIT %s
"""
_READY_RUNS_SQL = """
SELECT r.id, r.session_id, r.task_id, r.attempt, r.capability, r.priority, r.target_agent_id, r.avoid_agent_id,
       r.parameters, r.dispatch_count, r.ready_at, r.created_at, r.status,
       s.definition_id AS session_definition_id, s.workflow_id AS session_workflow_id, s.status AS session_status
FROM workflows_taskrun r JOIN workflows_workflowsession s ON s.id = r.session_id
WHERE r.status = 'pending' AND r.ready_at <= %(now)s
  AND (r.target_agent_id = ANY(%(agents)s::bigint[])
       OR (r.target_agent_id IS NULL AND r.capability = ANY(%(capabilities)s::text[])))
{held}ORDER BY r.priority DESC, r.ready_at, r.created_at
LIMIT %(limit)s
FOR UPDATE OF r SKIP LOCKED
"""
# Added to the ready-runs read only while something is paused or a limit is full.
_HELD_WORKFLOWS_SQL = "  AND NOT (s.status = 'pending' AND s.workflow_id = ANY(%(held_workflows)s::text[]))\n"
_FULL_CAPABILITIES_SQL = "  AND NOT (r.capability = ANY(%(full_capabilities)s::text[]))\n"


def _free_agents(now: datetime) -> list[Agent]:
    if not settings.IS_POSTGRES:
        return list(free_agents(now)[:FREE_AGENTS_LIMIT])
    cutoff = now - timedelta(seconds=settings.OPSCORE_AGENT_STALE_SECONDS)
    return raw_models(Agent, _FREE_AGENTS_SQL, [cutoff, now, FREE_AGENTS_LIMIT])


def _ready_runs(agents: list[Agent], now: datetime, limit: int, gate: DispatchGate | None = None) -> list[TaskRun]:
    """Pending runs the free agents could take, best first, locked (SKIP LOCKED), each with its session; runs the
    gate holds back entirely (paused workflow, full limit) are not read, so they never crowd out others."""
    capabilities = sorted({c for agent in agents if agent.capabilities_known for c in agent.capabilities or []})
    held_workflows = gate.held_workflows if gate is not None else []
    full_capabilities = gate.full_capabilities if gate is not None else []
    if not settings.IS_POSTGRES:
        routes = Q(target_agent_id__in=[agent.pk for agent in agents]) | Q(
            target_agent__isnull=True, capability__in=capabilities
        )
        return list(
            TaskRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("session")
            .only(*_DISPATCH_FIELDS)
            .filter(routes, status=TaskRunStatus.PENDING, ready_at__lte=now)
            .exclude(session__status=SessionStatus.PENDING, session__workflow_id__in=held_workflows)
            .exclude(capability__in=full_capabilities)
            .order_by("-priority", "ready_at", "created_at")[:limit]
        )
    params = {"now": now, "agents": [agent.pk for agent in agents], "capabilities": capabilities, "limit": limit}
    held = ""
    if held_workflows:
        held += _HELD_WORKFLOWS_SQL
        params["held_workflows"] = held_workflows
    if full_capabilities:
        held += _FULL_CAPABILITIES_SQL
        params["full_capabilities"] = full_capabilities
    runs = raw_models(TaskRun, _READY_RUNS_SQL.format(held=held), params)
    for run in runs:
        run.session = WorkflowSession(
            pk=run.session_id,
            definition_id=run.session_definition_id,
            workflow_id=run.session_workflow_id,
            status=run.session_status,
        )
    return runs


def _match(runs: list[TaskRun], agents: list[Agent], gate: DispatchGate | None = None) -> list[tuple[TaskRun, Agent]]:
    """Pair runs (in priority order) with free agents (least recently assigned first). A run avoids the agent
    that failed to start it unless that agent is the only one able to take it. A run the gate holds back (its
    limit has no room left) waits, and the runs behind it are still matched."""
    by_pk = {agent.pk: agent for agent in agents}
    by_capability: dict[str, list[Agent]] = defaultdict(list)
    for agent in agents:
        if agent.capabilities_known:
            for capability in agent.capabilities or []:
                by_capability[capability].append(agent)
    taken: set[int] = set()
    pairs: list[tuple[TaskRun, Agent]] = []
    for run in runs:
        if len(taken) == len(by_pk):
            break
        if gate is not None and not gate.allows(run):
            continue
        if run.target_agent_id is not None:
            candidates = [by_pk[run.target_agent_id]] if run.target_agent_id in by_pk else []
        else:
            candidates = by_capability.get(run.capability, [])
        choice = avoided = None
        for agent in candidates:
            if agent.pk in taken:
                continue
            if agent.pk == run.avoid_agent_id:
                avoided = avoided or agent
                continue
            choice = agent
            break
        choice = choice or avoided
        if choice is not None:
            if gate is not None:
                gate.take(run)
            taken.add(choice.pk)
            pairs.append((run, choice))
    return pairs


def dispatch_ready(
    *, now: datetime, events_buffer: EventBuffer, limit: int, controls: DispatchControls | None = None
) -> list[Dispatched]:
    """Dispatch as many ready runs as there are able free agents, within the operator's controls (read now
    unless the step passes what it read). Call inside a transaction, under the engine lock (``engine_step``)."""
    if controls is None:
        controls = dispatch_controls_read()
    if controls.dispatch_paused:
        return []  # maintenance mode
    agents = _free_agents(now)
    if not agents:
        return []  # saturated: nothing to lock or read (the common case under load)
    gate = dispatch_gate(controls)
    runs = _ready_runs(agents, now, min(limit, RUNS_PER_FREE_AGENT * len(agents)), gate)
    if not runs:
        return []
    pairs = _match(runs, agents, gate)
    if not pairs:
        return []
    claimed = agents_claim_idle(claims={agent.pk: str(run.pk) for run, agent in pairs}, now=now)
    done: list[Dispatched] = []
    changed: list[TaskRun] = []
    outbox: list[dict] = []
    for run, agent in pairs:
        if agent.pk not in claimed:
            continue  # the agent reported a new state or was taken meanwhile: the run waits for the next pass
        policy = selectors.definition_of(run.session).policy(run.task_id)
        run.status = TaskRunStatus.DISPATCHED
        run.agent = agent
        run.dispatched_at = now
        run.timeout_at = now + timedelta(seconds=policy["timeoutSeconds"])
        run.start_deadline = now + timedelta(seconds=policy["startTimeoutSeconds"])
        run.dispatch_count += 1
        run.dispatch_ref = f"{run.pk}:{run.dispatch_count}"
        run.agent_clock_at_dispatch = agent.state_timestamp
        run.early_idle_at, run.early_result, run.reported_active_at = None, None, None
        changed.append(run)
        outbox.append(
            dispatching.outbox_entry(
                dispatch_ref=run.dispatch_ref,
                agent_id=agent.agent_id,
                task_name=run.capability,
                parameters=run.parameters,
                session_id=str(run.session_id),
                task_run_id=str(run.pk),
            )
        )
        events_buffer.add(
            events.TASK_DISPATCHED,
            {"taskId": run.task_id, "attempt": run.attempt, "capability": run.capability},
            message=f"Task {run.task_id} (attempt {run.attempt}) dispatched to {agent.agent_id}",
            agent_id=agent.agent_id,
            session_id=run.session_id,
            task_id=run.pk,
        )
        if agent.breaker_state != BreakerState.CLOSED:
            _trial_event(events_buffer, agent, run)
        done.append(Dispatched(run.pk, run.session_id, agent.agent_id, run.dispatch_ref))
    if changed:
        # On Postgres the run updates, the outbox rows, the events and the sessions' start are one statement.
        batch = WriteBatch() if settings.IS_POSTGRES else None
        bulk_update_rows(TaskRun, changed, _DISPATCH_WRITES, batch=batch)
        dispatching.send_tasks(outbox, batch=batch)
        first = {run.session_id: run.agent.agent_id for run in changed if run.session.status == SessionStatus.PENDING}
        if batch is not None and not first:
            events_buffer.flush(batch)  # with the step's other events: all its writes in one statement
        sessions_mark_started(first, now, events_buffer, batch=batch)
    return done


_DISPATCH_WRITES = [
    "status", "agent", "dispatched_at", "timeout_at", "start_deadline", "dispatch_count", "dispatch_ref",
    "agent_clock_at_dispatch", "early_idle_at", "early_result", "reported_active_at",
]  # fmt: skip
_MARK_STARTED_SQL = """
UPDATE workflows_workflowsession SET status = 'running', started_at = %s
WHERE id IN (
    SELECT id FROM workflows_workflowsession WHERE id = ANY(%s::uuid[]) AND status = 'pending'
    FOR UPDATE SKIP LOCKED
)
RETURNING id, workflow_id
"""


def sessions_mark_started(
    first_agent: dict[uuid.UUID, str], now: datetime, events_buffer: EventBuffer, *, batch: WriteBatch | None = None
) -> None:
    """Pending sessions whose first task went out are running. SKIP LOCKED: this transaction holds task-run locks,
    and a cancel holding a session's lock may be waiting for one of them; that session is ended by the cancel (or
    marked running when its first run reports ``active``). Runs ``batch`` (with this as its last statement)."""
    if not settings.IS_POSTGRES:
        started = list(
            WorkflowSession.objects.filter(pk__in=list(first_agent), status=SessionStatus.PENDING)
            .select_for_update(skip_locked=True)
            .values_list("pk", "workflow_id")
        )
        WorkflowSession.objects.filter(pk__in=[pk for pk, _ in started]).update(
            status=SessionStatus.RUNNING, started_at=now
        )
    elif first_agent:
        batch = batch if batch is not None else WriteBatch()
        started = batch.execute(returning=(_MARK_STARTED_SQL, [now, list(first_agent)]))
    else:
        if batch:
            batch.execute()
        return
    for pk, workflow_id in started:
        events_buffer.add(
            events.SESSION_STARTED,
            {"workflowId": workflow_id},
            message="Session started (first task dispatched)",
            agent_id=first_agent[pk],
            session_id=pk,
        )


def _trial_event(events_buffer: EventBuffer, agent: Agent, run: TaskRun) -> None:
    """A quarantined agent past its cool-down took its one trial task (the claim moved its breaker to half-open)."""
    events_buffer.add(
        events.AGENT_QUARANTINE_TRIAL,
        {"taskId": run.task_id},
        level="warning",
        message=f"Agent {agent.agent_id} cool-down over: trial task {run.task_id} dispatched (half-open)",
        agent_id=agent.agent_id,
        session_id=run.session_id,
        task_id=run.pk,
    )
