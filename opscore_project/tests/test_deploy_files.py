"""The shipped deployment files default to safe: no secret literals, a non-root container, placeholders that a
production start refuses."""

import re
from pathlib import Path

import yaml

from opscore_project.lib.env import weak_secrets

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("SECRET_KEY", "OPSCORE_API_KEY", "OPSCORE_WEBHOOK_SECRET", "POSTGRES_PASSWORD")


def test_compose_requires_every_secret_from_the_env_file_without_fallbacks():
    text = (ROOT / "docker-compose.yml").read_text()
    yaml.safe_load(text)  # still valid YAML
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"(:?[-?][^}]*)?\}", text)
        assert uses, f"{name} is not read from the environment"
        assert all(use.startswith(":?") for use in uses), f"{name} must be required (:?), not defaulted: {uses}"
    assert ":-" not in text
    assert "postgres:postgres@" not in text


def test_the_env_example_values_are_refused_in_production():
    values = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if re.match(r"^[A-Z_]+=", line)
    )
    examples = {name: values[name] for name in ("SECRET_KEY", "OPSCORE_API_KEY", "OPSCORE_WEBHOOK_SECRET")}
    assert len(weak_secrets(examples)) == len(examples)


def test_the_container_runs_as_a_non_root_user():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    users = [line.split(None, 1)[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert lines.index(f"USER {users[-1]}") > max(i for i, line in enumerate(lines) if line.startswith("RUN "))
