"""Operator controls over dispatch: maintenance mode, workflow pause, concurrency limits.

What they are (rows in ``DispatchControl``, ``WorkflowControl``, ``CapabilityLimit``):
- maintenance mode: the dispatch pass sends nothing; state reports are still applied, and queue timeouts stop
  counting until dispatch resumes;
- a paused workflow: its sessions that have not started stay ``pending`` (queue timeouts stop counting for them);
  sessions already running go on. With ``reject_when_paused`` new sessions are refused (409);
- ``max_running_sessions`` per workflow: a pending session starts (its first dispatch) only below the limit;
- ``max_in_flight`` per capability: runs of that capability dispatched or running, across every agent.

The engine reads all of it once per step (``dispatch_controls_read``, one statement on tables that are empty
unless an operator set something) and the current usage only when a limit exists (``limit_usage``). Usage is
read in the dispatch pass, after the step's transitions, under an advisory lock held until the pass commits
(``LIMITS_LOCK_KEY``; inside an engine step, which is exclusive cluster-wide already, it is never contended).
The only writes that raise usage are dispatches, made in such a pass, so two dispatchers can never both see room
for the same slot. (Retrying a failed session, which resumes it as running outside the pass, checks the
workflow's limit under the same lock: ``sessions.session_retry``.)
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from opscore_project.errors import NotFound
from opscore_project.observability import events
from opscore_project.observability.oplog import log_operation
from workflows.control_selectors import (
    NO_CONTROLS,
    DispatchControls,
    LimitUsage,
    dispatch_controls_read,
    dispatch_controls_read_locked,
    limit_usage,
)
from workflows.engine.reports import engine_wake
from workflows.models import (
    CapabilityLimit,
    DispatchControl,
    SessionStatus,
    TaskRun,
    TaskRunStatus,
    WorkflowControl,
    WorkflowDefinition,
)

__all__ = ["NO_CONTROLS", "DispatchControls", "dispatch_controls_read", "dispatch_controls_read_locked"]

# --- operator writes -------------------------------------------------------------------------------------------


def _known_workflow(workflow_id: str) -> None:
    if not WorkflowDefinition.objects.filter(workflow_id=workflow_id).exists():
        raise NotFound(f"Workflow definition {workflow_id!r} does not exist.")


def _extend_queue_deadlines(*, since: datetime, now: datetime, workflow_id: str | None = None) -> int:
    """Runs held by a pause did not wait for an agent: move their queue deadlines by the time the pause lasted."""
    held = TaskRun.objects.filter(status=TaskRunStatus.PENDING, queue_deadline__isnull=False)
    if workflow_id is not None:
        held = held.filter(session__workflow_id=workflow_id, session__status=SessionStatus.PENDING)
    return held.update(queue_deadline=F("queue_deadline") + (now - since))


def workflow_control_get(*, workflow_id: str) -> WorkflowControl:
    """The workflow's controls (an unsaved default row when none were ever set). Raises NotFound."""
    _known_workflow(workflow_id)
    return WorkflowControl.objects.filter(workflow_id=workflow_id).first() or WorkflowControl(workflow_id=workflow_id)


def workflow_pause(
    *, workflow_id: str, reject_when_paused: bool = False, reason: str = "", now: datetime | None = None
) -> WorkflowControl:
    """Pause every version of a workflow: sessions that have not started wait as ``pending`` (or, with
    ``reject_when_paused``, new ones are refused); running sessions go on. Pausing again updates the options and
    keeps the original pause time. Raises NotFound."""
    now = now or timezone.now()
    _known_workflow(workflow_id)
    with transaction.atomic():
        control, _ = WorkflowControl.objects.select_for_update().get_or_create(workflow_id=workflow_id)
        was_paused = control.paused_at is not None
        control.paused_at = control.paused_at or now
        control.reject_when_paused = reject_when_paused
        control.pause_reason = reason
        control.updated_at = now
        control.save()
        if not was_paused:
            log_operation(
                events.WORKFLOW_PAUSED,
                {"workflowId": workflow_id, "rejectWhenPaused": reject_when_paused, "reason": reason},
                message=f"Workflow {workflow_id} paused" + (f": {reason}" if reason else ""),
            )
    return control


def workflow_resume(*, workflow_id: str, now: datetime | None = None) -> WorkflowControl:
    """Resume a paused workflow: its pending sessions start as agents and limits allow. Resuming a workflow that
    is not paused changes nothing. Raises NotFound."""
    now = now or timezone.now()
    _known_workflow(workflow_id)
    with transaction.atomic():
        control = WorkflowControl.objects.select_for_update().filter(workflow_id=workflow_id).first()
        if control is None or control.paused_at is None:
            return control or WorkflowControl(workflow_id=workflow_id)
        _extend_queue_deadlines(since=control.paused_at, now=now, workflow_id=workflow_id)
        paused_for = (now - control.paused_at).total_seconds()
        control.paused_at = None
        control.reject_when_paused = False
        control.pause_reason = ""
        control.updated_at = now
        control.save()
        log_operation(
            events.WORKFLOW_RESUMED,
            {"workflowId": workflow_id, "pausedSeconds": round(paused_for, 3)},
            message=f"Workflow {workflow_id} resumed after {paused_for:.0f}s",
        )
        engine_wake()
    return control


def workflow_limits_set(
    *, workflow_id: str, max_running_sessions: int | None, now: datetime | None = None
) -> WorkflowControl:
    """Set (or clear, with None) the most sessions of a workflow running at once. Raises NotFound."""
    now = now or timezone.now()
    _known_workflow(workflow_id)
    with transaction.atomic():
        control, _ = WorkflowControl.objects.select_for_update().get_or_create(workflow_id=workflow_id)
        control.max_running_sessions = max_running_sessions
        control.updated_at = now
        control.save()
        log_operation(
            events.LIMIT_SET,
            {"workflowId": workflow_id, "maxRunningSessions": max_running_sessions},
            message=f"Workflow {workflow_id}: max running sessions "
            + ("removed" if max_running_sessions is None else f"set to {max_running_sessions}"),
        )
        engine_wake()  # a raised limit lets waiting sessions start
    return control


def workflow_pause_state(*, workflow_id: str) -> bool | None:
    """None when the workflow is not paused; else whether new sessions are refused (``reject_when_paused``)."""
    return (
        WorkflowControl.objects.filter(workflow_id=workflow_id, paused_at__isnull=False)
        .values_list("reject_when_paused", flat=True)
        .first()
    )


def dispatch_control_get() -> DispatchControl:
    return DispatchControl.objects.filter(pk=DispatchControl.SINGLETON).first() or DispatchControl()


def dispatch_pause(*, reason: str = "", now: datetime | None = None) -> DispatchControl:
    """Maintenance mode on: no engine loop in the cluster dispatches anything until ``dispatch_resume``. Tasks
    already dispatched run on and their reports are applied. Pausing again keeps the original pause time."""
    now = now or timezone.now()
    with transaction.atomic():
        control, _ = DispatchControl.objects.select_for_update().get_or_create(pk=DispatchControl.SINGLETON)
        was_paused = control.paused_at is not None
        control.paused_at = control.paused_at or now
        control.reason = reason
        control.updated_at = now
        control.save()
        if not was_paused:
            log_operation(
                events.DISPATCH_PAUSED,
                {"reason": reason},
                level="warning",
                message="Dispatch paused (maintenance mode)" + (f": {reason}" if reason else ""),
            )
    return control


def dispatch_resume(*, now: datetime | None = None) -> DispatchControl:
    """Maintenance mode off: dispatch starts again at once; waiting runs' queue timeouts are moved by the time
    the pause lasted. Resuming when not paused changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        control = DispatchControl.objects.select_for_update().filter(pk=DispatchControl.SINGLETON).first()
        if control is None or control.paused_at is None:
            return control or DispatchControl()
        _extend_queue_deadlines(since=control.paused_at, now=now)
        paused_for = (now - control.paused_at).total_seconds()
        control.paused_at = None
        control.reason = ""
        control.updated_at = now
        control.save()
        log_operation(
            events.DISPATCH_RESUMED,
            {"pausedSeconds": round(paused_for, 3)},
            level="warning",
            message=f"Dispatch resumed after {paused_for:.0f}s",
        )
        engine_wake()
    return control


def capability_limit_set(*, capability: str, max_in_flight: int, now: datetime | None = None) -> CapabilityLimit:
    """Set the most runs of ``capability`` dispatched or running at once (all agents, all workflows)."""
    now = now or timezone.now()
    with transaction.atomic():
        limit, _ = CapabilityLimit.objects.update_or_create(
            capability=capability, defaults={"max_in_flight": max_in_flight, "updated_at": now}
        )
        log_operation(
            events.LIMIT_SET,
            {"capability": capability, "maxInFlight": max_in_flight},
            message=f"Capability {capability}: max in flight set to {max_in_flight}",
        )
        engine_wake()
    return limit


def capability_limit_delete(*, capability: str) -> None:
    """Remove a capability's limit. Raises NotFound when it has none."""
    with transaction.atomic():
        deleted, _ = CapabilityLimit.objects.filter(capability=capability).delete()
        if not deleted:
            raise NotFound(f"Capability {capability!r} has no limit.")
        log_operation(
            events.LIMIT_SET,
            {"capability": capability, "maxInFlight": None},
            message=f"Capability {capability}: limit removed",
        )
        engine_wake()


class DispatchGate:
    """The limits and pauses one dispatch pass applies, with the room left in each limit as the pass hands out
    work. Runs it holds back do not block the ones behind them: the pass goes on down the priority order."""

    def __init__(self, controls: DispatchControls, usage: LimitUsage) -> None:
        self.paused_workflows = controls.paused_workflows
        self.capacity = {c: max(0, n - usage.in_flight.get(c, 0)) for c, n in controls.capability_limits.items()}
        self.session_slots = {
            w: max(0, n - usage.running_sessions.get(w, 0)) for w, n in controls.workflow_limits.items()
        }
        self._admitted: set = set()  # pending sessions started by this pass (their other first runs may follow)

    @property
    def held_workflows(self) -> list[str]:
        """Workflows whose pending sessions may not start now: paused, or at their running-sessions limit."""
        return sorted(self.paused_workflows | {w for w, room in self.session_slots.items() if room <= 0})

    @property
    def full_capabilities(self) -> list[str]:
        return sorted(c for c, room in self.capacity.items() if room <= 0)

    def _starts_session(self, run: TaskRun) -> bool:
        return run.session.status == SessionStatus.PENDING and run.session_id not in self._admitted

    def allows(self, run: TaskRun) -> bool:
        if self.capacity.get(run.capability, 1) <= 0:
            return False
        if self._starts_session(run):
            workflow_id = run.session.workflow_id
            if workflow_id in self.paused_workflows or self.session_slots.get(workflow_id, 1) <= 0:
                return False
        return True

    def take(self, run: TaskRun) -> None:
        if run.capability in self.capacity:
            self.capacity[run.capability] -= 1
        if self._starts_session(run):
            self._admitted.add(run.session_id)
            if run.session.workflow_id in self.session_slots:
                self.session_slots[run.session.workflow_id] -= 1


# Serialises the passes that enforce limits, from the usage read to their commit. Engine steps are exclusive
# already (step.ENGINE_LOCK_KEY), so inside a step this lock is never contended; it makes a dispatch pass run
# outside a step (two engines by mistake, a test) just as safe.
LIMITS_LOCK_KEY = 0x0C0E_E262


def dispatch_gate(controls: DispatchControls) -> DispatchGate | None:
    """The pass's gate, or None when nothing is paused or limited (the pass then costs what it always did).
    With limits, takes the limits lock (held until the pass's transaction ends) before reading their usage."""
    if not (controls.has_limits or controls.paused_workflows):
        return None
    if controls.has_limits and not controls.limits_locked:
        limits_lock()
    return DispatchGate(controls, limit_usage(controls))


def limits_lock() -> None:
    """Take the limits lock for the rest of the transaction (re-entrant). Taken before any row lock, by the
    engine step right after its own lock and by a pass on its own, so the two never wait for each other."""
    if settings.IS_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LIMITS_LOCK_KEY])
