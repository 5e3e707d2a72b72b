"""Errors the AgentKit client raises. ``transient`` says whether trying again later may succeed."""

from __future__ import annotations


class AgentKitError(Exception):
    """Base class. ``error_kind`` is the short name reported to dispatch listeners."""

    transient: bool = False
    error_kind: str = "error"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class AgentKitUnreachable(AgentKitError):
    """No connection to AgentKit (refused, DNS, connect timeout, connection reset)."""

    transient = True
    error_kind = "unreachable"


class AgentKitTimeout(AgentKitError):
    """AgentKit accepted the connection but did not answer within AGENTKIT_READ_TIMEOUT."""

    transient = True
    error_kind = "timeout"


class AgentUnknownToAgentKit(AgentKitError):
    """404 on ``/v1/agents/{id}/run``: AgentKit does not know the agent (it restarted, or the agent left)."""

    error_kind = "agent_unknown"


class ListingUnsupported(AgentKitError):
    """404/405 on ``GET /v1/agents``: today's AgentKit does not serve the listing (contract 1a)."""

    error_kind = "listing_unsupported"


class AgentKitRejected(AgentKitError):
    """A 4xx other than 404/429: AgentKit refused the request (400 no contact endpoint, 422 bad body, ...)."""

    error_kind = "rejected"


class AgentKitRateLimited(AgentKitError):
    """429 from AgentKit. ``retry_after`` is the Retry-After header in seconds, when it sent one."""

    transient = True
    error_kind = "rate_limited"

    def __init__(self, message: str, *, status_code: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class AgentKitServerError(AgentKitError):
    """A 5xx from AgentKit."""

    transient = True
    error_kind = "server_error"


class AgentKitMalformedResponse(AgentKitError):
    """AgentKit answered 2xx with a body that is not what the contract describes."""

    error_kind = "malformed"
