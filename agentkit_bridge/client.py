"""The only code that speaks HTTP to AgentKit (contract sections 1a and 3).

One pooled ``requests.Session`` per process (re-created after a fork), connect/read timeouts from settings.
Every failure becomes one of the exceptions in :mod:`agentkit_bridge.exceptions`, which say whether it is
transient.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from agentkit_bridge.exceptions import (
    AgentKitError,
    AgentKitMalformedResponse,
    AgentKitRateLimited,
    AgentKitRejected,
    AgentKitServerError,
    AgentKitTimeout,
    AgentKitUnreachable,
    AgentUnknownToAgentKit,
    ListingUnsupported,
)

SENDER_ID = "opscore"
MESSAGE_TYPE = "workflow_task"
_ERROR_TEXT_LIMIT = 500


@dataclass(frozen=True)
class ListedAgent:
    """One item of ``GET /v1/agents`` (contract 1a), normalised."""

    agent_id: str
    name: str = ""
    version: str = ""
    capabilities: list[str] = field(default_factory=list)
    contact_endpoint: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunAccepted:
    """AgentKit's 2xx answer to ``POST /v1/agents/{id}/run``: accepted for background delivery only."""

    status_code: int
    dispatch_status: str
    message: str
    body: dict[str, Any]


_session: requests.Session | None = None
_session_pid: int | None = None
_session_lock = threading.Lock()


def get_session() -> requests.Session:
    """The process's pooled session, shared by its threads (urllib3's pool is thread-safe).

    Re-created in a forked child: a pooled socket inherited from the parent must not be shared. The environment's
    proxy and CA-bundle settings are read once here, for ``AGENTKIT_API_URL``, instead of on every request
    (``requests`` would otherwise look them up per call: a fifth of the relay's CPU per dispatch).
    """
    global _session, _session_pid
    if _session is not None and _session_pid == os.getpid():
        return _session
    with _session_lock:
        if _session is None or _session_pid != os.getpid():
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update({"User-Agent": "ops-core/1.0", "Accept": "application/json"})
            environment = session.merge_environment_settings(settings.AGENTKIT_API_URL, {}, None, None, None)
            session.proxies, session.verify = environment["proxies"], environment["verify"]
            session.trust_env = False
            _session, _session_pid = session, os.getpid()
        return _session


def _timeouts() -> tuple[float, float]:
    return (settings.AGENTKIT_CONNECT_TIMEOUT, settings.AGENTKIT_READ_TIMEOUT)


def _url(path: str) -> str:
    return f"{settings.AGENTKIT_API_URL.rstrip('/')}{path}"


def _request(method: str, path: str, **kwargs: Any) -> requests.Response:
    url = _url(path)
    try:
        return get_session().request(method, url, timeout=_timeouts(), **kwargs)
    except requests.exceptions.ConnectTimeout as exc:
        # Checked before ConnectionError (it is both): nothing was sent, so this is "unreachable".
        raise AgentKitUnreachable(f"Connecting to AgentKit at {url} timed out: {exc}") from exc
    except requests.exceptions.Timeout as exc:
        raise AgentKitTimeout(
            f"AgentKit did not answer {method} {url} within {settings.AGENTKIT_READ_TIMEOUT}s"
        ) from exc
    except requests.exceptions.ConnectionError as exc:
        raise AgentKitUnreachable(f"AgentKit at {url} is unreachable: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        raise AgentKitUnreachable(f"{method} {url} failed: {exc}") from exc


def _error_text(response: requests.Response) -> str:
    """AgentKit's own error message: its envelope's ``message``, FastAPI's ``detail``, or the raw text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if value:
                text = value if isinstance(value, str) else str(value)
                code = body.get("error_code")
                return f"{text} ({code})" if code else text
    return (response.text or response.reason or "").strip()[:_ERROR_TEXT_LIMIT]


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP-date: rare, and our own backoff applies instead


def _raise_for_status(response: requests.Response, what: str) -> None:
    """Map a non-2xx answer to an exception (404 is handled by the callers, it means different things)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    text = _error_text(response)
    message = f"{what}: AgentKit answered {status}" + (f": {text}" if text else "")
    if status == 429:
        raise AgentKitRateLimited(message, status_code=status, retry_after=_retry_after(response))
    if status >= 500:
        raise AgentKitServerError(message, status_code=status)
    raise AgentKitRejected(message, status_code=status)


def _json_object(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise AgentKitMalformedResponse(
            f"{what}: AgentKit answered {response.status_code} with a body that is not JSON",
            status_code=response.status_code,
        ) from exc
    if not isinstance(body, dict):
        raise AgentKitMalformedResponse(
            f"{what}: AgentKit answered {response.status_code} with JSON that is not an object",
            status_code=response.status_code,
        )
    return body


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _parse_listed_agent(item: Any) -> ListedAgent | None:
    if not isinstance(item, dict):
        return None
    agent_id = item.get("agentId")
    if not isinstance(agent_id, str) or not agent_id or len(agent_id) > 255:
        return None
    capabilities = item.get("capabilities")
    metadata = item.get("metadata")
    return ListedAgent(
        agent_id=agent_id,
        name=_text(item.get("agentName"))[:255],
        version=_text(item.get("version"))[:100],
        capabilities=[c for c in capabilities if isinstance(c, str)] if isinstance(capabilities, list) else [],
        contact_endpoint=_text(item.get("contactEndpoint"))[:2048],
        metadata=metadata if isinstance(metadata, dict) else {},
    )


def list_agents() -> list[ListedAgent]:
    """``GET /v1/agents``: every agent AgentKit knows (contract 1a).

    Items without a usable ``agentId`` are skipped; other fields of the wrong type become empty values.
    Raises ListingUnsupported on 404/405 (today's AgentKit), AgentKitRateLimited, AgentKitServerError,
    AgentKitRejected, AgentKitUnreachable, AgentKitTimeout, or AgentKitMalformedResponse when ``data`` is not
    a list.
    """
    what = "GET /v1/agents"
    response = _request("GET", "/v1/agents")
    if response.status_code in (404, 405):
        raise ListingUnsupported(
            f"AgentKit does not support listing agents ({what} answered {response.status_code})",
            status_code=response.status_code,
        )
    _raise_for_status(response, what)
    body = _json_object(response, what)
    data = body.get("data")
    if not isinstance(data, list):
        raise AgentKitMalformedResponse(f"{what}: 'data' is not a list", status_code=response.status_code)
    agents: dict[str, ListedAgent] = {}
    for item in data:
        listed = _parse_listed_agent(item)
        if listed is not None:
            agents[listed.agent_id] = listed  # a duplicate id: the last one wins
    return list(agents.values())


def run(agent_id: str, message: dict[str, Any]) -> RunAccepted:
    """``POST /v1/agents/{agent_id}/run`` with ``message`` (see :func:`build_task_message`).

    A 2xx only means AgentKit accepted the task for background delivery (contract 3). Raises
    AgentUnknownToAgentKit on 404, AgentKitRejected on other 4xx (400 no contact endpoint, 422 bad body),
    AgentKitRateLimited on 429, AgentKitServerError on 5xx, AgentKitUnreachable / AgentKitTimeout, and
    AgentKitMalformedResponse for a 2xx whose body is not a JSON object.
    """
    what = f"POST /v1/agents/{agent_id}/run"
    response = _request("POST", f"/v1/agents/{quote(agent_id, safe='')}/run", json=message)
    if response.status_code == 404:
        text = _error_text(response)
        raise AgentUnknownToAgentKit(
            f"AgentKit does not know agent {agent_id!r} (404" + (f": {text})" if text else ")"),
            status_code=404,
        )
    _raise_for_status(response, what)
    body = _json_object(response, what)
    data = body.get("data")
    dispatch_status = _text(data.get("dispatch_status")) if isinstance(data, dict) else ""
    return RunAccepted(
        status_code=response.status_code,
        dispatch_status=dispatch_status,
        message=_text(body.get("message")),
        body=body,
    )


def build_task_message(
    *, task_name: str, parameters: dict[str, Any], session_id: str, task_run_id: str
) -> dict[str, Any]:
    """The body of ``POST /v1/agents/{id}/run`` exactly as contract section 3 describes it.

    ``task_name`` goes inside ``payload`` (the example agent reads it there) and at the top level, with the
    Ops-Core ids, which AgentKit forwards to the agent.
    """
    return {
        "senderId": SENDER_ID,
        "messageType": MESSAGE_TYPE,
        "payload": {"task_name": task_name, "task_parameters": parameters},
        "sessionContext": {"sessionId": session_id},
        "task_name": task_name,
        "opscore_session_id": session_id,
        "opscore_task_id": task_run_id,
    }


__all__ = [
    "AgentKitError",
    "ListedAgent",
    "RunAccepted",
    "build_task_message",
    "get_session",
    "list_agents",
    "run",
]
