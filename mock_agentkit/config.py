"""Configuration objects shared by the mock server, the simulated agents, the CLI and the test helper."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CAPABILITIES = ("summarise", "translate", "classify")
DEFAULT_OPSCORE_API_URL = "http://127.0.0.1:8080"
WEBHOOK_PATH = "/v1/opscore/internal/agent/notify"


@dataclass
class AgentSpec:
    """One simulated agent.

    ``work_time`` / ``failure_rate`` left as ``None`` take the fleet-wide defaults. ``silent`` agents accept
    forwarded tasks and never report back. ``metadata`` is sent with the registration (and, unlike the real
    AgentKit, the mock still sends the webhook for it).
    """

    name: str
    capabilities: list[str] = field(default_factory=list)
    version: str = "1.0"
    work_time: float | None = None
    failure_rate: float | None = None
    silent: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("AgentSpec.name must be a non-empty string")
        if isinstance(self.capabilities, str):
            self.capabilities = [c.strip() for c in self.capabilities.split(",") if c.strip()]
        self.capabilities = list(self.capabilities)
        if self.work_time is not None and self.work_time < 0:
            raise ValueError(f"AgentSpec {self.name}: work_time must be >= 0")
        if self.failure_rate is not None and not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"AgentSpec {self.name}: failure_rate must be within 0..1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentSpec:
        """Build a spec from a JSON/YAML mapping; accepts ``work_time``/``workTime`` style keys."""
        if not isinstance(data, dict):
            raise ValueError(f"agent spec must be a mapping, got {type(data).__name__}")
        aliases = {"workTime": "work_time", "failureRate": "failure_rate", "agentName": "name"}
        known = {"name", "capabilities", "version", "work_time", "failure_rate", "silent", "metadata"}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            key = aliases.get(key, key)
            if key not in known:
                raise ValueError(f"unknown agent spec field {key!r}")
            kwargs[key] = value
        return cls(**kwargs)


@dataclass
class MockConfig:
    """Settings of the mock AgentKit server (docs/mock-agentkit.md lists the matching CLI options / env vars)."""

    host: str = "127.0.0.1"
    port: int = 8000
    opscore_api_url: str = DEFAULT_OPSCORE_API_URL
    opscore_api_key: str = ""
    webhook_secret: str | None = None
    webhook_url: str | None = None
    listing: bool = True
    # The real AgentKit's webhook reaches Ops-Core 12–24 ms after the agent's first state report (contract 1b).
    webhook_delay: float = 0.02
    outbound_timeout: float = 10.0
    connection_limit: int = 256

    @property
    def effective_webhook_url(self) -> str:
        return self.webhook_url or f"{self.opscore_api_url.rstrip('/')}{WEBHOOK_PATH}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> MockConfig:
        """Read ``OPSCORE_API_URL``, ``OPSCORE_API_KEY``, ``OPSCORE_WEBHOOK_SECRET``, ``OPSCORE_WEBHOOK_URL`` and
        ``MOCK_AGENTKIT_LISTING`` (``off``/``0``/``false`` disables ``GET /v1/agents``)."""
        env = dict(os.environ) if env is None else env
        config = cls(
            opscore_api_url=(env.get("OPSCORE_API_URL") or DEFAULT_OPSCORE_API_URL).rstrip("/"),
            opscore_api_key=env.get("OPSCORE_API_KEY", ""),
            webhook_secret=env.get("OPSCORE_WEBHOOK_SECRET") or None,
            webhook_url=env.get("OPSCORE_WEBHOOK_URL") or None,
            listing=env_flag(env.get("MOCK_AGENTKIT_LISTING"), default=True),
        )
        for key, value in overrides.items():
            setattr(config, key, value)
        return config


def env_flag(value: str | None, *, default: bool) -> bool:
    """``on/off``, ``true/false``, ``1/0``, ``yes/no``; raise on anything else so typos fail loudly."""
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean flag: {value!r}")


def default_agent_specs(
    count: int,
    *,
    capabilities: list[str] | tuple[str, ...] = DEFAULT_CAPABILITIES,
    silent_fraction: float = 0.0,
    name_prefix: str = "mock-agent",
) -> list[AgentSpec]:
    """``count`` agents with capabilities spread so each capability has at least one agent and some have two.

    Agent ``i`` gets ``capabilities[i % k]``; from the second round on it also gets the next capability, so with
    the default set and 5 agents: summarise / translate / classify / summarise+translate / translate+classify.
    The last ``round(count * silent_fraction)`` agents are silent.
    """
    if not 0.0 <= silent_fraction <= 1.0:
        raise ValueError("silent_fraction must be within 0..1")
    caps = list(capabilities)
    silent_count = round(count * silent_fraction)
    specs = []
    for i in range(count):
        own: list[str] = []
        if caps:
            own.append(caps[i % len(caps)])
            if i >= len(caps) and len(caps) > 1:
                own.append(caps[(i + 1) % len(caps)])
        specs.append(
            AgentSpec(
                name=f"{name_prefix}-{i + 1:02d}",
                capabilities=own,
                silent=i >= count - silent_count,
                metadata={"description": f"Simulated agent {i + 1} ({', '.join(own) or 'no capabilities'})"},
            )
        )
    return specs


def load_agent_specs(path: str | Path) -> list[AgentSpec]:
    """Read a JSON or YAML file holding a list of agent specs (or ``{"agents": [...]}``)."""
    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() in {".yaml", ".yml"}:
        import yaml  # PyYAML is already a runtime dependency of Ops-Core; only needed for YAML files.

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if isinstance(data, dict) and "agents" in data:
        data = data["agents"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of agent specs")
    specs = [AgentSpec.from_dict(item) for item in data]
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise ValueError(f"{path}: agent names must be unique")
    return specs
