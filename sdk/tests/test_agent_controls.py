"""Operator controls on agents through the SDK and the ``opscore`` CLI, against a live Ops-Core."""

from __future__ import annotations

import json
import re

import pytest
from opscore_sdk import NotFoundError, ValidationError
from opscore_sdk.cli import main

pytestmark = pytest.mark.django_db(transaction=True)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_client_drains_and_undrains(client, report):
    report("a1", "idle")
    report("a2", "idle")
    agent = client.drain_agent("a1")
    assert agent.drained is True and agent.drained_at is not None
    assert client.get_agent("a1").drained is True
    assert [a.agent_id for a in client.list_agents(drained=True)] == ["a1"]
    assert [a.agent_id for a in client.iter_agents(drained=False)] == ["a2"]
    assert client.undrain_agent("a1").drained is False


def test_the_client_quarantines_and_releases(client, report):
    report("a1", "idle")
    agent = client.quarantine_agent("a1", seconds=120, reason="wrong answers")
    assert (agent.quarantined, agent.breaker_state, agent.quarantine_reason) == (True, "open", "wrong answers")
    assert agent.quarantined_until is not None
    assert client.quarantine_agent("a1").quarantined_until is None  # until released
    agent = client.release_agent("a1")
    assert (agent.quarantined, agent.breaker_state, agent.consecutive_failures) == (False, "closed", 0)


def test_the_client_sets_capabilities(client, report):
    report("a1", "idle")
    agent = client.set_agent_capabilities("a1", ["summarise", "translate"])
    assert agent.capabilities == ["summarise", "translate"]
    assert (agent.capabilities_known, agent.capabilities_source) == (True, "operator")
    with pytest.raises(ValidationError) as info:
        client.set_agent_capabilities("a1", [""])
    assert info.value.status_code == 400


def test_the_client_raises_not_found_for_an_unknown_agent(client):
    for call in (client.drain_agent, client.undrain_agent, client.quarantine_agent, client.release_agent):
        with pytest.raises(NotFoundError):
            call("nobody")


def test_the_cli_drains_quarantines_and_sets_capabilities(capsys, cli_env, report):
    report("alpha", "idle")
    code, out, _ = run(capsys, "agents", "drain", "alpha")
    assert code == 0 and "alpha drained" in out
    code, out, _ = run(capsys, "agents", "quarantine", "alpha", "--seconds", "300", "--reason", "flaky")
    assert code == 0 and "quarantined until" in out and "flaky" in out
    code, out, _ = run(capsys, "agents", "list")
    assert "drained" in out and "quarantined" in out
    report("beta", "idle")
    code, out, _ = run(capsys, "--json", "agents", "list", "--quarantined")
    assert [agent["agentId"] for agent in json.loads(out)] == ["alpha"]
    code, out, _ = run(capsys, "agents", "show", "alpha")
    assert "Drained" in out and "Quarantine" in out
    code, out, _ = run(capsys, "agents", "set-capabilities", "alpha", "summarise, translate")
    assert code == 0 and "summarise, translate (source: operator)" in out
    code, out, _ = run(capsys, "agents", "show", "alpha")
    assert re.search(r"Capabilities from\s+operator", out)
    code, out, _ = run(capsys, "--json", "agents", "release", "alpha")
    assert code == 0 and json.loads(out)["breakerState"] == "closed"
    code, out, _ = run(capsys, "agents", "undrain", "alpha")
    assert code == 0 and "back in rotation" in out
    code, out, _ = run(capsys, "agents", "list")
    assert "drained" not in out and "quarantined" not in out


def test_the_cli_reports_a_bad_quarantine_as_a_usage_error(capsys, cli_env, report):
    report("alpha", "idle")
    code, _, err = run(capsys, "agents", "quarantine", "alpha", "--seconds", "0")
    assert code != 0
    assert "seconds" in err
