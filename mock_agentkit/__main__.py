"""``python -m mock_agentkit``: the mock AgentKit server plus N simulated agents in one process.

The server starts at once; the simulated agents start once Ops-Core answers ``GET {OPSCORE_API_URL}/health`` (so
``make run`` can start everything together), on consecutive ports after the server's. See docs/mock-agentkit.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from urllib.parse import urlsplit

from aiohttp import web

from mock_agentkit.agents import AgentFleet, wait_for_opscore
from mock_agentkit.config import DEFAULT_CAPABILITIES, MockConfig, default_agent_specs, load_agent_specs
from mock_agentkit.server import create_app

logger = logging.getLogger("mock_agentkit")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m mock_agentkit", description=__doc__)
    parser.add_argument("--host", default=env.get("MOCK_AGENTKIT_HOST", "127.0.0.1"), help="bind address")
    parser.add_argument("--port", type=int, default=int(env.get("MOCK_AGENTKIT_PORT", "8000")), help="server port")
    parser.add_argument("--agents", type=int, default=5, help="number of simulated agents (0: none)")
    parser.add_argument("--agent-config", metavar="FILE", help="JSON/YAML list of agent specs (replaces --agents)")
    parser.add_argument(
        "--agent-port-start", type=int, default=None, help="first agent port (default: --port + 1; 0: any free port)"
    )
    parser.add_argument("--work-time", type=float, default=2.0, help="seconds an agent works on a task (default 2)")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="chance 0..1 that a task fails")
    parser.add_argument("--silent-fraction", type=float, default=0.0, help="fraction 0..1 of agents that never report")
    parser.add_argument(
        "--capabilities",
        default=",".join(DEFAULT_CAPABILITIES),
        help="comma-separated capabilities spread over the default agents",
    )
    parser.add_argument("--no-listing", action="store_true", help="GET /v1/agents answers 404, like the real AgentKit")
    parser.add_argument("--echo-task-id", action="store_true", help="agents put opscore_task_id in report details")
    parser.add_argument("--webhook-delay", type=float, default=0.02, help="seconds between the 201 and the webhook")
    parser.add_argument("--opscore-wait", type=float, default=60.0, help="seconds to wait for Ops-Core's /health")
    parser.add_argument("--seed", type=int, default=None, help="seed for failure draws")
    parser.add_argument("--log-level", default=env.get("MOCK_AGENTKIT_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    if args.agents < 0:
        parser.error("--agents must be >= 0")
    for name in ("failure_rate", "silent_fraction"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be within 0..1")
    if args.work_time < 0:
        parser.error("--work-time must be >= 0")
    return args


def loopback_port(url: str) -> int | None:
    parts = urlsplit(url)
    if parts.hostname in {"127.0.0.1", "localhost", "::1", "0.0.0.0"}:
        return parts.port or (443 if parts.scheme == "https" else 80)
    return None


async def serve(args: argparse.Namespace) -> int:
    config = MockConfig.from_env(host=args.host, port=args.port, webhook_delay=args.webhook_delay)
    if args.no_listing:
        config.listing = False
    specs = (
        load_agent_specs(args.agent_config)
        if args.agent_config
        else default_agent_specs(
            args.agents,
            capabilities=[c.strip() for c in args.capabilities.split(",") if c.strip()],
            silent_fraction=args.silent_fraction,
        )
    )

    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port, backlog=1024).start()
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        await runner.cleanup()
        return 1
    advertised = "127.0.0.1" if config.host in {"0.0.0.0", "::"} else config.host
    print(f"Mock AgentKit:  http://{advertised}:{config.port}   (AGENTKIT_API_URL)", flush=True)
    print(f"Ops-Core:       {config.opscore_api_url}", flush=True)
    if config.webhook_secret:
        print(f"Webhooks to:    {config.effective_webhook_url}", flush=True)
    else:
        print("Webhooks:       off (OPSCORE_WEBHOOK_SECRET not set)", flush=True)
    print(f"Listing:        {'on' if config.listing else 'off (GET /v1/agents answers 404)'}", flush=True)

    opscore_port = loopback_port(config.opscore_api_url)
    fleet = AgentFleet(
        agentkit_url=f"http://{advertised}:{config.port}",
        opscore_api_url=config.opscore_api_url,
        opscore_api_key=config.opscore_api_key,
        host=config.host,
        first_port=config.port + 1 if args.agent_port_start is None else args.agent_port_start,
        avoid_ports={config.port} | ({opscore_port} if opscore_port else set()),
        default_work_time=args.work_time,
        default_failure_rate=args.failure_rate,
        echo_task_id=args.echo_task_id,
        seed=args.seed,
    )
    if not config.opscore_api_key and specs:
        logger.warning("OPSCORE_API_KEY is not set: Ops-Core will reject the agents' state reports")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async def start_agents() -> None:
        if not specs:
            return
        print(f"Waiting for Ops-Core at {config.opscore_api_url}/health …", flush=True)
        if not await wait_for_opscore(config.opscore_api_url, timeout=args.opscore_wait):
            logger.warning("Ops-Core did not answer within %ss; starting the agents anyway", args.opscore_wait)
        agents = await fleet.start(specs)
        print(f"{len(agents)} simulated agent(s):", flush=True)
        for agent in agents:
            flags = " silent" if agent.silent else ""
            print(
                f"  {agent.agent_id}  {agent.name:<16} {agent.contact_endpoint:<24} "
                f"[{','.join(agent.capabilities)}]{flags}",
                flush=True,
            )

    exit_code = 0
    starter = asyncio.create_task(start_agents())
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if starter.done() and starter.exception() is not None:
            logger.error("starting the simulated agents failed: %s", starter.exception())
            exit_code = 1
        else:
            await stopper
    finally:
        print("Mock AgentKit stopping…", flush=True)
        for task in (starter, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await fleet.stop()
        await runner.cleanup()
    return exit_code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
