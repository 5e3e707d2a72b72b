"""The mock AgentKit HTTP API: registration, listing, task dispatch, deregistration, signed webhooks.

State lives in memory, as in the real AgentKit (contract 3: after a restart every agent answers 404).
All outbound calls (webhooks, forwarded tasks) run as background tasks on one shared ``aiohttp.ClientSession``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from mock_agentkit.config import MockConfig

logger = logging.getLogger("mock_agentkit.server")

CONFIG_KEY = web.AppKey("config", MockConfig)

# Top-level fields of a /run body that the real AgentKit keeps when it forwards the message (contract 3).
FORWARDED_FIELDS = (
    "senderId",
    "messageType",
    "payload",
    "sessionContext",
    "task_name",
    "opscore_session_id",
    "opscore_task_id",
)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``timestamp + "." + body`` (same as ``opscore_project.lib.signing.sign``)."""
    return hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + b"." + body, hashlib.sha256).hexdigest()


def compact_json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def utc_now_z() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class RegisteredAgent:
    agent_id: str
    name: str
    version: str
    capabilities: list[str]
    contact_endpoint: str | None
    metadata: dict[str, Any]
    registration_time: str = field(default_factory=utc_now_z)

    def listing(self) -> dict[str, Any]:
        return {
            "agentId": self.agent_id,
            "agentName": self.name,
            "version": self.version,
            "capabilities": list(self.capabilities),
            "contactEndpoint": self.contact_endpoint,
            "registrationTime": self.registration_time,
            "metadata": self.metadata,
        }

    def webhook_details(self) -> dict[str, Any]:
        # The real webhook has no registrationTime (contract 1b).
        return {
            "agentId": self.agent_id,
            "agentName": self.name,
            "version": self.version,
            "capabilities": list(self.capabilities),
            "contactEndpoint": self.contact_endpoint,
            "metadata": self.metadata,
        }


@dataclass
class OutboundResult:
    """One webhook or forwarded task, for logs and test introspection."""

    kind: str  # "webhook:REGISTER", "webhook:DEREGISTER" or "forward"
    agent_id: str
    url: str
    status: int | None  # None when the request failed before an answer
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class MockState:
    """In-memory registry plus the shared HTTP client and the set of running background tasks."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.agents: dict[str, RegisteredAgent] = {}
        self.ids_by_name: dict[str, str] = {}
        self.session: aiohttp.ClientSession | None = None
        self.background: set[asyncio.Task[Any]] = set()
        self.outbound: list[OutboundResult] = []
        self.counters = {"registered": 0, "runs_accepted": 0, "tool_calls": 0, "deregistered": 0}
        # Accepted /run calls per Ops-Core task run (``opscore_task_id``): fault tests count duplicates with it.
        self.runs_by_task: Counter[str] = Counter()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        # Keep a strong reference: the event loop only holds weak ones, so an unreferenced task can vanish.
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task crashed", exc_info=task.exception())

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until no background task is running (new ones spawned meanwhile included)."""
        deadline = time.monotonic() + timeout
        while self.background:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self.background), timeout=remaining)
        return True


STATE_KEY = web.AppKey("state", MockState)


def envelope(status: str, message: str, data: Any = None, error_code: str | None = None) -> dict[str, Any]:
    return {"status": status, "message": message, "data": data, "error_code": error_code}


def error_response(http_status: int, message: str, error_code: str, data: Any = None) -> web.Response:
    return web.json_response(envelope("error", message, data, error_code), status=http_status)


async def read_json_object(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, error_response(422, "Request body is not valid JSON.", "VALIDATION_ERROR")
    if not isinstance(body, dict):
        return None, error_response(422, "Request body must be a JSON object.", "VALIDATION_ERROR")
    return body, None


def validation_error(errors: list[dict[str, str]]) -> web.Response:
    return error_response(422, "Request validation failed.", "VALIDATION_ERROR", {"errors": errors})


def validate_registration(body: dict[str, Any]) -> list[dict[str, str]]:
    errors = []
    name = body.get("agentName")
    if not isinstance(name, str) or not name.strip():
        errors.append({"field": "agentName", "message": "a non-empty string is required"})
    if not isinstance(body.get("version"), str) or not body["version"]:
        errors.append({"field": "version", "message": "a non-empty string is required"})
    caps = body.get("capabilities", [])
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        errors.append({"field": "capabilities", "message": "a list of strings is required"})
    endpoint = body.get("contactEndpoint")
    # The mock allows a missing endpoint so that /run's "no contact endpoint" 400 can be exercised.
    if endpoint is not None and (not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))):
        errors.append({"field": "contactEndpoint", "message": "an http(s) URL is required"})
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        errors.append({"field": "metadata", "message": "an object is required"})
    return errors


def validate_run(body: dict[str, Any]) -> list[dict[str, str]]:
    errors = []
    for key in ("senderId", "messageType"):
        if not isinstance(body.get(key), str) or not body[key]:
            errors.append({"field": key, "message": "a non-empty string is required"})
    if not isinstance(body.get("payload"), dict):
        errors.append({"field": "payload", "message": "an object is required"})
    if body.get("sessionContext") is not None and not isinstance(body["sessionContext"], dict):
        errors.append({"field": "sessionContext", "message": "an object is required"})
    for key in ("task_name", "opscore_session_id", "opscore_task_id"):
        if body.get(key) is not None and not isinstance(body[key], str):
            errors.append({"field": key, "message": "a string is required"})
    return errors


# Demo tools for messageType "tool_invocation", executed synchronously by AgentKit (contract 3).
def _tool_echo(arguments: dict[str, Any]) -> Any:
    return arguments


def _tool_add(arguments: dict[str, Any]) -> Any:
    numbers = arguments.get("numbers")
    if not isinstance(numbers, list) or not all(isinstance(n, int | float) for n in numbers):
        raise ValueError("'numbers' must be a list of numbers")
    return {"sum": sum(numbers)}


def _tool_uppercase(arguments: dict[str, Any]) -> Any:
    text = arguments.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    return {"text": text.upper()}


TOOLS: dict[str, Callable[[dict[str, Any]], Any]] = {"echo": _tool_echo, "add": _tool_add, "uppercase": _tool_uppercase}


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.json_response({"status": "ok", "agents": len(state.agents)})


async def register(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body, problem = await read_json_object(request)
    if problem:
        return problem
    assert body is not None
    errors = validate_registration(body)
    if errors:
        return validation_error(errors)
    name = body["agentName"]
    if name in state.ids_by_name:
        return error_response(
            409, f"Agent with name '{name}' already registered.", "AGENT_ALREADY_EXISTS", {"agentName": name}
        )
    agent = RegisteredAgent(
        agent_id=str(uuid.uuid4()),
        name=name,
        version=body["version"],
        capabilities=list(body.get("capabilities") or []),
        contact_endpoint=body.get("contactEndpoint"),
        metadata=dict(body.get("metadata") or {}),
    )
    state.agents[agent.agent_id] = agent
    state.ids_by_name[name] = agent.agent_id
    state.counters["registered"] += 1
    logger.info("registered %s as %s (%s)", name, agent.agent_id, ",".join(agent.capabilities))
    schedule_webhook(state, "REGISTER", agent)
    return web.json_response(
        envelope("success", "Agent registered successfully.", {"agentId": agent.agent_id}), status=201
    )


async def list_agents(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if not state.config.listing:
        # What the real AgentKit answers today (contract 1a): FastAPI's plain 404.
        return web.json_response({"detail": "Not Found"}, status=404)
    data = [agent.listing() for agent in state.agents.values()]
    return web.json_response(envelope("success", "Agents retrieved successfully.", data))


async def deregister(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    agent_id = request.match_info["agent_id"]
    agent = state.agents.pop(agent_id, None)
    if agent is None:
        return error_response(404, f"Agent {agent_id} not found.", "AGENT_NOT_FOUND")
    state.ids_by_name.pop(agent.name, None)
    state.counters["deregistered"] += 1
    logger.info("deregistered %s (%s)", agent.name, agent_id)
    schedule_webhook(state, "DEREGISTER", agent)
    return web.json_response(envelope("success", "Agent deregistered successfully.", {"agentId": agent_id}))


async def run_counts(request: web.Request) -> web.Response:
    """Test aid (not part of AgentKit): accepted ``/run`` calls per task run, and the totals."""
    state = request.app[STATE_KEY]
    return web.json_response({"counters": state.counters, "runsByTask": dict(state.runs_by_task)})


async def run(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    agent_id = request.match_info["agent_id"]
    body, problem = await read_json_object(request)
    if problem:
        return problem
    assert body is not None
    errors = validate_run(body)
    if errors:
        return validation_error(errors)
    agent = state.agents.get(agent_id)
    if agent is None:
        return error_response(404, f"Agent {agent_id} not found.", "AGENT_NOT_FOUND")
    if body["messageType"] == "tool_invocation":
        return invoke_tool(state, agent, body["payload"])
    if not agent.contact_endpoint:
        return error_response(400, f"Agent {agent_id} has no contact endpoint.", "AGENT_NO_ENDPOINT")
    message = {key: body.get(key) for key in FORWARDED_FIELDS}
    message["timestamp"] = datetime.now(UTC).isoformat()
    state.counters["runs_accepted"] += 1
    if body.get("opscore_task_id"):
        state.runs_by_task[str(body["opscore_task_id"])] += 1
    state.spawn(forward_task(state, agent, message))
    return web.json_response(
        envelope(
            "success",
            f"Task accepted for agent {agent_id}.",
            {"agentId": agent_id, "dispatch_status": "scheduled"},
        ),
        status=202,
    )


def invoke_tool(state: MockState, agent: RegisteredAgent, payload: dict[str, Any]) -> web.Response:
    tool_name = payload.get("tool_name")
    arguments = payload.get("arguments", {})
    if not isinstance(tool_name, str) or not isinstance(arguments, dict):
        return error_response(
            400, "payload needs 'tool_name' (string) and 'arguments' (object).", "INVALID_TOOL_INVOCATION"
        )
    tool = TOOLS.get(tool_name)
    if tool is None:
        return error_response(404, f"Tool '{tool_name}' not found.", "TOOL_NOT_FOUND", {"available": sorted(TOOLS)})
    try:
        result = tool(arguments)
    except ValueError as exc:
        return error_response(400, f"Tool '{tool_name}' failed: {exc}", "TOOL_EXECUTION_ERROR")
    state.counters["tool_calls"] += 1
    return web.json_response(
        envelope(
            "success",
            f"Tool '{tool_name}' executed successfully.",
            {"agentId": agent.agent_id, "tool_name": tool_name, "result": result},
        )
    )


def schedule_webhook(state: MockState, event_type: str, agent: RegisteredAgent) -> None:
    if not state.config.webhook_secret:
        return
    state.spawn(send_webhook(state, event_type, agent))


async def send_webhook(state: MockState, event_type: str, agent: RegisteredAgent) -> None:
    config = state.config
    secret = config.webhook_secret
    assert secret and state.session is not None
    if config.webhook_delay > 0:
        await asyncio.sleep(config.webhook_delay)
    body = compact_json({"event_type": event_type, "agent_details": agent.webhook_details()})
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-AgentKit-Timestamp": timestamp,
        "X-AgentKit-Signature": sign(secret, timestamp, body),
    }
    await post_once(state, f"webhook:{event_type}", agent.agent_id, config.effective_webhook_url, body, headers)


async def forward_task(state: MockState, agent: RegisteredAgent, message: dict[str, Any]) -> None:
    assert agent.contact_endpoint and state.session is not None
    await post_once(
        state,
        "forward",
        agent.agent_id,
        agent.contact_endpoint,
        compact_json(message),
        {"Content-Type": "application/json"},
    )


async def post_once(
    state: MockState, kind: str, agent_id: str, url: str, body: bytes, headers: dict[str, str]
) -> OutboundResult:
    """POST once, no retry, redirects count as failure; log anything but a 2xx (contract 1b, 3)."""
    assert state.session is not None
    result = OutboundResult(kind=kind, agent_id=agent_id, url=url, status=None)
    try:
        async with state.session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            result.status = response.status
            if not result.ok:
                text = (await response.text(errors="replace"))[:200]
                result.error = text
                logger.warning("%s for %s to %s answered %s: %s", kind, agent_id, url, response.status, text)
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        logger.warning("%s for %s to %s failed: %s", kind, agent_id, url, result.error)
    state.outbound.append(result)
    if len(state.outbound) > 10_000:
        del state.outbound[:5_000]
    return result


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE_KEY]
    config = state.config
    connector = aiohttp.TCPConnector(limit=config.connection_limit, limit_per_host=64)
    state.session = aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=config.outbound_timeout)
    )
    yield
    # Give in-flight webhooks/forwards a moment, then cancel the rest before closing the session.
    await state.drain(timeout=2.0)
    for task in list(state.background):
        task.cancel()
    if state.background:
        await asyncio.gather(*state.background, return_exceptions=True)
    await state.session.close()


def create_app(config: MockConfig | None = None) -> web.Application:
    """The mock AgentKit aiohttp application; ``app[STATE_KEY]`` exposes its in-memory state."""
    config = config or MockConfig.from_env()
    app = web.Application(client_max_size=1024**2)
    app[CONFIG_KEY] = config
    app[STATE_KEY] = MockState(config)
    app.cleanup_ctx.append(_client_session)
    app.router.add_get("/health", health)
    app.router.add_post("/v1/agents/register", register)
    app.router.add_get("/v1/agents", list_agents)
    app.router.add_post("/v1/agents/{agent_id}/run", run)
    app.router.add_delete("/v1/agents/{agent_id}", deregister)
    app.router.add_get("/mock/runs", run_counts)
    return app
