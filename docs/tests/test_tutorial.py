"""docs/getting-started.md, executed: every shell and Python block, in order, against a live stack, each output
checked against the page. A doc change that breaks a step fails here (conventions in docs/tests/tutorial.py).

The stack is what ``make run`` starts — live Ops-Core, a Celery worker, the mock AgentKit with its five default
simulated agents, the sample workflows loaded — on free ports against the test database. The page's addresses and
``var/local.env`` and ``var/operator-token.txt`` are swapped for the test's before each step; nothing else is changed.
"""

from __future__ import annotations

import doctest
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from tutorial import Step, parse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
RETRY_SECONDS = 30


def _same(expected: str, got: str) -> bool:
    """Doctest comparison with ``...`` and whitespace-insensitive; ``a ... b`` also matches ``a b`` (table
    columns next to each other), which plain doctest would not, having used the one space on both sides."""
    want = " ".join(expected.split())
    while " ... " in want:
        want = want.replace(" ... ", " ...")
    return CHECKER.check_output(want + "\n", " ".join(got.split()) + "\n", FLAGS)


def matches(expected: str, got: str, *, any_order: bool = False) -> bool:
    if not any_order:
        return _same(expected, got)
    # Each expected line matches a different output line; as many lines as expected.
    remaining = got.strip().splitlines()
    wanted = expected.strip().splitlines()
    for line in wanted:
        found = next((g for g in remaining if _same(line, g)), None)
        if found is None:
            return False
        remaining.remove(found)
    return not remaining


class Background:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self, since: int = 0) -> str:
        return "".join(self.lines[since:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class Tutorial:
    """Runs the steps in one shell-like session: exported variables carry over from one block to the next."""

    def __init__(self, stack, tmp: Path) -> None:
        local_env = tmp / "local.env"
        local_env.write_text(f"OPSCORE_API_KEY={stack.api_key}\n")
        operator_token = tmp / "operator-token.txt"
        operator_token.write_text(stack.operator_token + "\n")
        self.substitutions = {
            "http://127.0.0.1:8080": stack.url,
            "http://127.0.0.1:8000": stack.mock.url,
            "var/local.env": str(local_env),
            "var/operator-token.txt": str(operator_token),
        }
        self.state = tmp / "exports.sh"
        self.state.write_text("")
        self.tmp = tmp
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSCORE_", "AGENTKIT_"))}
        env.update(
            {
                "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
                "COLUMNS": "160",
                "NO_COLOR": "1",
                "PYTHONUNBUFFERED": "1",
                # The sample agent's default AgentKit address, swapped like the page's addresses.
                "AGENTKIT_API_URL": stack.mock.url,
            }
        )
        self.env = env
        self.background: Background | None = None

    def substitute(self, text: str) -> str:
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def run(self, step: Step, *, check: bool = True) -> str:
        code = self.substitute(step.code)
        if step.language == "python":
            script = self.tmp / f"step_{step.line}.py"
            script.write_text(code)
            code = f"python {script}\n"
        wrapped = f"set -eo pipefail\nsource {self.state}\n{code}\nexport -p > {self.state}\n"
        result = subprocess.run(
            ["bash", "-c", wrapped],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, f"{step.title()} exited {result.returncode}:\n{result.stdout}"
        return result.stdout

    def start_background(self, step: Step) -> None:
        assert self.background is None, "one background process at a time"
        code = self.substitute(step.code).strip()
        self.background = Background(["bash", "-c", f"source {self.state}\nexec {code}"], self.env)

    def wait_for_background(self, expected: str, since: int = 0, timeout: float = RETRY_SECONDS) -> str:
        assert self.background is not None, "no background process is running"
        deadline = time.monotonic() + timeout
        while True:
            got = self.background.output(since)
            if matches(self.substitute(expected), got) or _contains(self.substitute(expected), got):
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"background output does not match.\nexpected:\n{expected}\ngot:\n{got}")
            time.sleep(0.2)


def _contains(expected: str, got: str) -> bool:
    """The expected lines appear in ``got`` (a background process keeps printing: match any window of it)."""
    want = expected.strip().splitlines()
    lines = got.splitlines()
    return any(matches("\n".join(want) + "\n", "\n".join(lines[i : i + len(want)]) + "\n") for i in range(len(lines)))


@pytest.fixture
def tutorial_stack(live_stack):
    from django.core.management import call_command

    from mock_agentkit.config import default_agent_specs

    for spec in default_agent_specs(5):
        spec.work_time = 0.2
        live_stack.mock.add_agent(spec)
    live_stack.mock.drain()
    call_command("load_workflows", str(ROOT / "workflows" / "samples"), verbosity=0)
    return live_stack


def test_the_page_has_the_steps_the_issue_asks_for():
    steps = parse(PAGE)
    code = "\n".join(s.code for s in steps)
    kinds = [s.kind for s in steps]
    assert kinds[0] == "stack" and "make run" in steps[0].code
    assert "examples/agent/agent.py" in code and "background" in kinds and "interrupt" in kinds
    for fragment in ("curl -s -X POST", "from opscore_sdk import OpsCoreClient", "opscore run", "sessions retry",
                     "sessions show", "opscore logs"):  # fmt: skip
        assert fragment in code, fragment
    runnable = [s for s in steps if s.kind in {"run", "retry", "background"}]
    assert all(s.expected for s in runnable), [s.title() for s in runnable if not s.expected]


def test_every_step_of_the_getting_started_page_works_as_written(tutorial_stack):
    with tempfile.TemporaryDirectory(prefix="tutorial-") as tmp:
        tutorial = Tutorial(tutorial_stack, Path(tmp))
        try:
            for step in parse(PAGE):
                _run_step(tutorial, step)
        finally:
            if tutorial.background is not None:
                tutorial.background.stop()


def _run_step(tutorial: Tutorial, step: Step) -> None:
    if step.kind == "stack":
        return
    if step.kind == "background":
        tutorial.start_background(step)
        tutorial.wait_for_background(step.expected or "")
        return
    if step.kind == "background-output":
        tutorial.wait_for_background(step.expected or "")
        return
    if step.kind == "interrupt":
        assert tutorial.background is not None
        since = len(tutorial.background.lines)
        tutorial.background.process.send_signal(signal.SIGINT)
        assert tutorial.background.process.wait(timeout=30) == 0, tutorial.background.output()
        tutorial.wait_for_background(step.expected or "", since=since, timeout=5)
        tutorial.background = None
        return
    expected = tutorial.substitute(step.expected or "")
    deadline = time.monotonic() + (RETRY_SECONDS if step.kind == "retry" else 0)
    while True:
        # A read-only step may fail while what it reads is not there yet; the last try must succeed.
        last_try = time.monotonic() > deadline
        got = tutorial.run(step, check=step.kind != "retry" or last_try)
        if matches(expected, got, any_order=step.any_order):
            return
        if last_try:
            raise AssertionError(f"{step.title()}: output does not match the page.\nexpected:\n{expected}\ngot:\n{got}")
        time.sleep(0.5)
