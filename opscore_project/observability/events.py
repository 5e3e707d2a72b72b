"""Event type names for the operation log (``log_operation(events.TASK_DISPATCHED, ...)``).

One dotted name per transition; the dashboard filters and the metrics read these exact strings, so use the
constants rather than literals.
"""

from __future__ import annotations

# Agents (lifecycle, agentkit_bridge)
AGENT_DISCOVERED = "agent.discovered"  # first seen (state report, poll or webhook)
AGENT_REGISTERED = "agent.registered"
AGENT_DEREGISTERED = "agent.deregistered"
AGENT_STATE_CHANGED = "agent.state_changed"  # current state differs from the previous one
AGENT_DRAINED = "agent.drained"  # no new tasks; the current one finishes
AGENT_UNDRAINED = "agent.undrained"
AGENT_QUARANTINED = "agent.quarantined"  # circuit breaker opened (automatic, failed trial, or by hand)
AGENT_QUARANTINE_TRIAL = "agent.quarantine_trial"  # cool-down over: one trial task dispatched (half-open)
AGENT_QUARANTINE_RELEASED = "agent.quarantine_released"  # breaker closed (trial succeeded, or by hand)
AGENT_CAPABILITIES_SET = "agent.capabilities_set"  # by an operator or a report, or replaced by AgentKit's

# AgentKit bridge
SYNC_RUN = "sync.run"  # a polling sync that changed something or changed outcome; context.outcome
WEBHOOK_RECEIVED = "webhook.received"
WEBHOOK_REJECTED = "webhook.rejected"

# Workflow sessions (workflows)
SESSION_CREATED = "session.created"
SESSION_STARTED = "session.started"
SESSION_COMPLETED = "session.completed"
SESSION_FAILED = "session.failed"
SESSION_CANCELLED = "session.cancelled"
SESSION_RETRIED = "session.retried"

# Task runs
TASK_DISPATCHED = "task.dispatched"
TASK_DISPATCH_ATTEMPT = "task.dispatch_attempt"  # one POST /run attempt (agentkit_bridge); context.outcome
TASK_DISPATCH_FAILED = "task.dispatch_failed"  # dispatch failed for good (no more retries)
TASK_DISPATCH_STALE = "task.dispatch_stale"  # a relay message whose dispatch is no longer current: not sent
TASK_DELIVERY_FAILED = "task.delivery_failed"  # accepted by AgentKit, never started by the agent: sent elsewhere
TASK_RUNNING = "task.running"
TASK_COMPLETED = "task.completed"
TASK_FAILED = "task.failed"
TASK_RETRIED = "task.retried"
TASK_TIMED_OUT = "task.timed_out"
TASK_CANCELLED = "task.cancelled"
TASK_SKIPPED = "task.skipped"
TASK_FALLBACK = "task.fallback"  # retries exhausted: the fallback task takes over
TASK_REQUEUED = "task.requeued"  # the agent vanished from AgentKit: the run goes back to the queue
TASK_WAITING_FOR_INPUT = "task.waiting_for_input"  # an approval or input task waits for a person
TASK_INPUT_RECEIVED = "task.input_received"  # a person answered it (or its timeout's default did)
TASK_REMINDER = "task.reminder"  # still waiting after remindAfterSeconds
SCHEDULE_SKIPPED = "schedule.skipped"  # a scheduled run skipped because the previous one is still running
CALLBACK_FAILED = "callback.failed"  # a completion callback could not be delivered

# Operator controls over dispatch (workflows.engine.controls)
WORKFLOW_PAUSED = "workflow.paused"
WORKFLOW_RESUMED = "workflow.resumed"
DISPATCH_PAUSED = "dispatch.paused"  # maintenance mode on
DISPATCH_RESUMED = "dispatch.resumed"
LIMIT_SET = "limit.set"  # a concurrency limit set or removed; context names the workflow or capability

# Housekeeping
EVENTS_PURGED = "events.purged"

ALL_EVENT_TYPES: tuple[str, ...] = (
    AGENT_DISCOVERED,
    AGENT_REGISTERED,
    AGENT_DEREGISTERED,
    AGENT_STATE_CHANGED,
    AGENT_DRAINED,
    AGENT_UNDRAINED,
    AGENT_QUARANTINED,
    AGENT_QUARANTINE_TRIAL,
    AGENT_QUARANTINE_RELEASED,
    AGENT_CAPABILITIES_SET,
    SYNC_RUN,
    WEBHOOK_RECEIVED,
    WEBHOOK_REJECTED,
    SESSION_CREATED,
    SESSION_STARTED,
    SESSION_COMPLETED,
    SESSION_FAILED,
    SESSION_CANCELLED,
    SESSION_RETRIED,
    TASK_DISPATCHED,
    TASK_DISPATCH_ATTEMPT,
    TASK_DISPATCH_FAILED,
    TASK_DISPATCH_STALE,
    TASK_DELIVERY_FAILED,
    TASK_RUNNING,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_RETRIED,
    TASK_TIMED_OUT,
    TASK_CANCELLED,
    TASK_SKIPPED,
    TASK_FALLBACK,
    TASK_REQUEUED,
    TASK_WAITING_FOR_INPUT,
    TASK_INPUT_RECEIVED,
    TASK_REMINDER,
    SCHEDULE_SKIPPED,
    CALLBACK_FAILED,
    WORKFLOW_PAUSED,
    WORKFLOW_RESUMED,
    DISPATCH_PAUSED,
    DISPATCH_RESUMED,
    LIMIT_SET,
    EVENTS_PURGED,
)
