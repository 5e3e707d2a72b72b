"""A bounded load test: many agents, many concurrent /run calls, everything forwarded and reported."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from mock_agentkit.testing import running_mock_agentkit

from .conftest import API_KEY, WEBHOOK_SECRET

AGENTS = 50
RUNS = 200


async def dispatch_all(url: str, agent_ids: list[str]) -> list[int]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=RUNS)) as session:

        async def one(i: int) -> int:
            body = {
                "senderId": "opscore",
                "messageType": "workflow_task",
                "payload": {"task_name": "summarise", "task_parameters": {"i": i}},
                "task_name": "summarise",
                "opscore_task_id": f"task-{i}",
            }
            async with session.post(f"{url}/v1/agents/{agent_ids[i % len(agent_ids)]}/run", json=body) as response:
                return response.status

        return await asyncio.gather(*(one(i) for i in range(RUNS)))


def test_200_concurrent_runs_to_50_agents_all_complete(opscore):
    started = time.monotonic()
    with running_mock_agentkit(
        opscore_url=opscore.url, api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, agents=AGENTS, work_time=0.01
    ) as mock:
        ids = [a.agent_id for a in mock.agents]
        statuses = asyncio.run(dispatch_all(mock.url, ids))
        opscore.wait_until(
            lambda: len(opscore.reports()) == AGENTS + 2 * RUNS, timeout=30, what="every task's active + idle"
        )
        assert mock.drain(10)
        received = sum(len(mock.received_tasks(agent_id)) for agent_id in ids)
        failed_outbound = [o for o in mock.outbound() if not o.ok]

    assert statuses == [202] * RUNS
    assert received == RUNS
    assert failed_outbound == []
    assert len(opscore.webhooks("REGISTER")) == AGENTS
    echoed = sorted(
        r.body["details"]["result"]["echo"]["i"] for r in opscore.reports() if "result" in r.body["details"]
    )
    assert echoed == list(range(RUNS))
    assert time.monotonic() - started < 30
