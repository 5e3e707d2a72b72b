"""A stand-in AgentKit server plus simulated agents, for development (`make run`) and integration tests.

- :mod:`mock_agentkit.server` — the mock AgentKit HTTP API (``create_app(config)``).
- :mod:`mock_agentkit.agents` — simulated agents that register, receive forwarded tasks and report state.
- :mod:`mock_agentkit.testing` — ``running_mock_agentkit(...)``, a context manager for integration tests.
- ``python -m mock_agentkit`` — the command line entry point.

The wire behaviour follows ``docs/agentkit-contract.md``; deliberate differences are listed in
``docs/mock-agentkit.md``.
"""

from mock_agentkit.config import AgentSpec, MockConfig

__all__ = ["AgentSpec", "MockConfig"]
