import os
import subprocess
import sys

from django.conf import settings


def run_check(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "OPSCORE_API_KEY", "DEBUG"}}
    env.update({"DJANGO_SETTINGS_MODULE": "opscore_project.settings", "OPSCORE_TESTING": "false"})
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    )


def test_production_mode_without_secrets_fails_with_a_clear_message():
    result = run_check({"DEBUG": "false"})
    assert result.returncode != 0
    assert "Missing required setting(s)" in result.stderr
    assert "SECRET_KEY" in result.stderr and "OPSCORE_API_KEY" in result.stderr


def test_production_mode_with_secrets_starts():
    result = run_check({"DEBUG": "false", "SECRET_KEY": "x" * 50, "OPSCORE_API_KEY": "k" * 24})
    assert result.returncode == 0, result.stderr


def test_a_malformed_boolean_fails_loudly():
    result = run_check({"DEBUG": "perhaps"})
    assert result.returncode != 0
    assert "DEBUG='perhaps' is not a boolean" in result.stderr
