"""Generate ``docs/cli.md`` from the ``opscore`` argument parser, so the CLI reference cannot drift.

``python docs/hooks/cli_reference.py`` rewrites the page (``make docs`` does it); ``docs/tests/test_site.py`` fails
when the committed page differs from what the parser says.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cli.md"
WIDTH = "100"

INTRO = """\
# CLI reference

<!-- Generated from sdk/opscore_sdk/cli.py by `python docs/hooks/cli_reference.py` (run by `make docs`).
     Do not edit by hand: docs/tests/test_site.py fails when this page and the parser disagree. -->

`opscore` is installed with the SDK (`pip install ./sdk`; `make run` and `make test` install it into `.venv`). It
reads `OPSCORE_API_URL` (default `http://127.0.0.1:8080`) and `OPSCORE_API_KEY` from the environment; options
win over the environment. Output is coloured only on a terminal and never when `NO_COLOR` is set or `TERM=dumb`;
`--json` prints the API's JSON. Usage, exit codes and examples: [Python SDK](sdk.md#the-opscore-cli).
"""


def _subcommands(
    parser: argparse.ArgumentParser, prefix: list[str]
) -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    yield prefix, parser
    for action in parser._actions:  # argparse exposes subparsers only through its actions
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subcommands(sub, [*prefix, name])


def render() -> str:
    sys.path.insert(0, str(ROOT / "sdk"))
    from opscore_sdk.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps help to the terminal width; fix it for a stable page
    try:
        parts = [INTRO]
        for path, parser in _subcommands(build_parser(), ["opscore"]):
            title = " ".join(path)
            parts.append(f"## `{title}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
        return "\n".join(parts)
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE.relative_to(ROOT)}")
