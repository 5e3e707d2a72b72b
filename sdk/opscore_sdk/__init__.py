"""Python client for Ops-Core: ``OpsCoreClient``, typed models and exceptions. The CLI is ``opscore``."""

import logging

from opscore_sdk._version import __version__
from opscore_sdk.client import DEFAULT_API_URL, OpsCoreClient
from opscore_sdk.exceptions import (
    APIError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    OpsCoreConnectionError,
    OpsCoreError,
    OpsCoreTimeoutError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    SessionWaitTimeout,
    ValidationError,
)
from opscore_sdk.models import (
    Agent,
    AgentState,
    Alert,
    AlertDelivery,
    AlertRule,
    CapabilityLimit,
    DispatchStatus,
    Event,
    HumanTask,
    Page,
    Session,
    SessionStarted,
    StateRecord,
    StateReportAccepted,
    TaskRun,
    WaitingTask,
    WorkflowControl,
    WorkflowDefinition,
    WorkflowTask,
)

# A library adds no handlers of its own: the application decides where "opscore_sdk" logs go.
logging.getLogger("opscore_sdk").addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_API_URL",
    "APIError",
    "Agent",
    "AgentState",
    "Alert",
    "AlertDelivery",
    "AlertRule",
    "AuthenticationError",
    "CapabilityLimit",
    "ConflictError",
    "DispatchStatus",
    "Event",
    "HumanTask",
    "NotFoundError",
    "OpsCoreClient",
    "OpsCoreConnectionError",
    "OpsCoreError",
    "OpsCoreTimeoutError",
    "Page",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "Session",
    "SessionStarted",
    "SessionWaitTimeout",
    "StateRecord",
    "StateReportAccepted",
    "TaskRun",
    "ValidationError",
    "WaitingTask",
    "WorkflowControl",
    "WorkflowDefinition",
    "WorkflowTask",
    "__version__",
]
