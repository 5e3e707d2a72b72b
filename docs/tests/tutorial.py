"""Read the runnable steps of a Markdown tutorial (docs/getting-started.md), for docs/tests/test_tutorial.py.

Conventions of the page:

- every ```bash and ```python block is a step, run in page order;
- a ```text block right after a step (only blank lines between) is that step's expected output, compared like a
  doctest: ``...`` matches anything, runs of whitespace are equal;
- an HTML comment ``<!-- tutorial: KIND ... -->`` right before a block changes what the test does with it:
  ``stack`` (not run: the test starts the same processes itself); ``background`` (started and left running; its
  expected output must appear); ``retry`` (read-only: re-run until the output matches, as a reader would after a
  second; add ``, any-order`` when the output's lines may come in any order); ``background-output`` (a ```text
  block the background process must have printed by now); ``interrupt`` (Ctrl-C to the background process; the
  ```text block is what it prints then).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*tutorial:\s*([\w-]+)(,\s*any-order)?.*-->\s*$")
RUNNABLE = {"bash", "python"}


@dataclass
class Step:
    kind: str  # run | stack | background | retry | background-output | interrupt
    language: str  # bash | python | text
    code: str
    line: int
    expected: str | None = None
    any_order: bool = False

    def title(self) -> str:
        first = self.code.strip().splitlines()[0] if self.code.strip() else ""
        return f"line {self.line} ({self.kind}): {first[:80]}"


def parse(path: Path) -> list[Step]:
    lines = path.read_text().splitlines()
    steps: list[Step] = []
    directive: str | None = None
    any_order = False
    previous_was_step = False  # a step block ended and only blank lines followed
    i = 0
    while i < len(lines):
        line = lines[i]
        if (match := DIRECTIVE.match(line)) is not None:
            directive = match.group(1)
            any_order = bool(match.group(2))
            previous_was_step = False
            i += 1
            continue
        fence = FENCE.match(line)
        if fence is None:
            if line.strip():
                directive = None
                previous_was_step = False
            i += 1
            continue
        language = fence.group(1)
        start = i + 1
        i = start
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        body = "\n".join(lines[start:i]) + "\n"
        i += 1
        if language in RUNNABLE:
            steps.append(Step(directive or "run", language, body, start, any_order=any_order))
            previous_was_step = directive != "stack"
        elif language == "text" and directive in {"background-output", "interrupt"}:
            steps.append(Step(directive, "text", "", start, expected=body))
            previous_was_step = False
        elif language == "text" and previous_was_step:
            steps[-1].expected = body
            previous_was_step = False
        else:
            previous_was_step = False
        directive = None
        any_order = False
    return steps
