"""The ``opscore`` CLI through its runner (``main(argv)``) against a live Ops-Core: agents, errors, exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from opscore_sdk import __version__
from opscore_sdk.cli import main, parse_since

from sdk.tests.faults import FaultServer, Reply, refused_url

pytestmark = pytest.mark.django_db(transaction=True)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert __version__ in out


def test_a_usage_error_exits_2(capsys):
    code, _, err = run(capsys, "agents", "frobnicate")
    assert code == 2
    assert "invalid choice" in err


def test_agents_list_prints_an_aligned_table(capsys, cli_env, report):
    report("alpha", "idle")
    report("beta-long-name", "active")
    code, out, _ = run(capsys, "agents", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["AGENT", "NAME", "STATE"]
    state_column = lines[0].index("STATE")
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["alpha"][state_column:].startswith("idle")
    assert rows["beta-long-name"][state_column:].startswith("active")
    assert "\x1b[" not in out  # NO_COLOR and not a TTY


def test_agents_list_filters_and_prints_json(capsys, cli_env, report):
    report("alpha", "idle")
    report("beta", "active")
    code, out, _ = run(capsys, "--json", "agents", "list", "--state", "active")
    assert code == 0
    data = json.loads(out)
    assert [a["agentId"] for a in data] == ["beta"]
    assert data[0]["state"] == "active"


def test_agents_list_by_capability(capsys, cli_env):
    from lifecycle.models import Agent

    Agent.objects.create(agent_id="s1", name="Summariser", capabilities=["summarise"], capabilities_known=True)
    Agent.objects.create(agent_id="t1", name="Translator", capabilities=["translate"], capabilities_known=True)
    code, out, _ = run(capsys, "--json", "agents", "list", "--capability", "summarise")
    assert code == 0
    assert [a["agentId"] for a in json.loads(out)] == ["s1"]


def test_agents_list_with_no_agents(capsys, cli_env):
    code, out, _ = run(capsys, "agents", "list")
    assert (code, out.strip()) == (0, "No agents.")


def test_agents_show_includes_recent_history(capsys, cli_env, report):
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    report("gamma", "idle", at=start)
    report("gamma", "active", {"task": "t-1"}, at=start + timedelta(seconds=5))
    code, out, _ = run(capsys, "agents", "show", "gamma")
    assert code == 0
    assert "gamma" in out
    assert "Recent history" in out
    assert "2026-11-24 09:00:05Z" in out and "2026-11-24 09:00:00Z" in out
    assert '{"task": "t-1"}' in out

    code, out, _ = run(capsys, "--json", "agents", "show", "gamma")
    data = json.loads(out)
    assert [r["state"] for r in data["recentHistory"]] == ["active", "idle"]


def test_agents_show_unknown_exits_4_with_one_line(capsys, cli_env):
    code, out, err = run(capsys, "agents", "show", "ghost")
    assert code == 4
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("opscore: error:") and "ghost" in err
    assert "Traceback" not in err


def test_errors_are_json_on_stderr_with_json(capsys, cli_env):
    code, _, err = run(capsys, "--json", "agents", "show", "ghost")
    assert code == 4
    body = json.loads(err)
    assert body["error"]["code"] == "not_found"
    assert body["error"]["exitCode"] == 4


def test_agents_set_state_reports_it(capsys, cli_env):
    code, out, _ = run(capsys, "agents", "set-state", "delta", "active", "--details", '{"progress": 50}')
    assert code == 0
    assert "delta" in out and "active" in out
    from lifecycle.models import Agent

    agent = Agent.objects.get(agent_id="delta")
    assert agent.state == "active"
    assert agent.state_details == {"progress": 50}

    code, out, _ = run(capsys, "--json", "agents", "set-state", "delta", "idle")
    assert code == 0
    assert json.loads(out)["agentId"] == "delta"


def test_set_state_with_bad_details_is_a_usage_error(capsys, cli_env):
    code, _, err = run(capsys, "agents", "set-state", "delta", "idle", "--details", "{not json")
    assert code == 2
    assert "--details" in err


def test_set_state_with_an_unknown_state_is_a_usage_error(capsys, cli_env):
    code, _, _ = run(capsys, "agents", "set-state", "delta", "sleeping")
    assert code == 2


def test_a_wrong_key_exits_3(capsys, cli_env):
    code, _, err = run(capsys, "--api-key", "nope", "agents", "list")
    assert code == 3
    assert "OPSCORE_API_KEY" in err
    assert "nope" not in err


def test_api_url_and_key_flags_override_the_environment(capsys, cli_env, operator_token, monkeypatch, report):
    report("flagged")
    monkeypatch.setenv("OPSCORE_API_URL", refused_url())
    monkeypatch.setenv("OPSCORE_API_KEY", "wrong")
    code, out, _ = run(capsys, "--api-url", cli_env, "--api-key", operator_token, "--json", "agents", "list")
    assert code == 0
    assert [a["agentId"] for a in json.loads(out)] == ["flagged"]


def test_connection_refused_exits_6(capsys, monkeypatch):
    monkeypatch.setenv("OPSCORE_API_KEY", "k")
    code, _, err = run(capsys, "--api-url", refused_url(), "--retries", "0", "agents", "list")
    assert code == 6
    assert "Cannot connect" in err


def test_validation_error_exits_7_with_field_errors(capsys):
    body = {"status": "error", "code": "validation_error", "message": "Invalid request.", "errors": {"x": ["bad"]}}
    with FaultServer(Reply(400, body)) as server:
        code, _, err = run(capsys, "--api-url", server.url, "--api-key", "k", "agents", "list")
    assert code == 7
    assert "x: bad" in err


@pytest.mark.parametrize(("status", "exit_code"), [(409, 8), (429, 9), (500, 5), (403, 3)])
def test_each_error_class_has_its_exit_code(capsys, status, exit_code):
    with FaultServer(Reply(status, {"status": "error", "code": "x", "message": "no"})) as server:
        code, _, _ = run(capsys, "--api-url", server.url, "--api-key", "k", "--retries", "0", "agents", "list")
    assert code == exit_code


def test_parse_since_accepts_durations_and_timestamps():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1d", now) == now - timedelta(days=1)
    assert parse_since("2026-11-24T09:00:00Z") == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert parse_since("2026-11-24T09:00:00") == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_a_bad_since_is_a_usage_error(capsys, cli_env):
    code, _, err = run(capsys, "sessions", "list", "--since", "yesterday")
    assert code == 2
    assert "--since" in err
