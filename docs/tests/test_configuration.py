"""The configuration page lists every environment variable the code reads.

Scans the source (not the running settings) so a variable read only on one branch of the code, or only by the
launcher, the web server command, the mock, the SDK or the sample agent, is still found.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"
SCANNED = [
    "opscore_project",
    "lifecycle",
    "workflows",
    "agentkit_bridge",
    "mock_agentkit",
    "sdk/opscore_sdk",
    "examples/agent",
]
ENV_HELPERS = {"env_str", "env_int", "env_float", "env_bool", "env_list"}
# Read by the framework, not configuration a user sets.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a local mapping copied from it (the launcher and webserver pass ``env`` dicts around)."""
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return True
    return isinstance(node, ast.Name) and node.id in {"env", "environ"}


def variables_read_in(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.args[0].value
            func = node.func
            if isinstance(func, ast.Name) and func.id in ENV_HELPERS:
                names.add(name)
            elif isinstance(func, ast.Attribute) and func.attr in {"get", "pop"} and _is_environ(func.value):
                names.add(name)
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                names.add(name)
        elif isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.slice, ast.Constant):
            names.add(node.slice.value)
    return {n for n in names if isinstance(n, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", n)}


def variables_read_by_the_code() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "tests" in path.parts or path.name in {"testing.py", "conftest.py"}:
                continue
            for name in variables_read_in(path.read_text()):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return {name: files for name, files in found.items() if name not in NOT_SETTINGS}


def variables_on_the_page() -> set[str]:
    names = set()
    for line in PAGE.read_text().splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def test_every_variable_the_code_reads_is_on_the_configuration_page():
    read = variables_read_by_the_code()
    missing = {name: sorted(files) for name, files in read.items() if name not in variables_on_the_page()}
    assert not missing, f"add these to docs/configuration.md: {missing}"


def test_the_page_lists_no_variable_the_code_does_not_read():
    stale = variables_on_the_page() - set(variables_read_by_the_code())
    assert not stale, f"docs/configuration.md lists variables nothing reads: {sorted(stale)}"


def test_the_scanner_finds_each_way_of_reading_a_variable():
    source = (
        "import os\n"
        "A = env_int('OPSCORE_A', 1)\n"
        "B = os.environ.get('OPSCORE_B')\n"
        "C = os.environ['OPSCORE_C']\n"
        "def f(env): return env.get('OPSCORE_D', '')\n"
        "E = os.getenv('OPSCORE_E')\n"
        "x = 'not_a_variable'\n"
    )
    assert variables_read_in(source) == {"OPSCORE_A", "OPSCORE_B", "OPSCORE_C", "OPSCORE_D", "OPSCORE_E"}
