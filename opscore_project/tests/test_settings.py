import os
import subprocess
import sys

import pytest
from django.conf import settings


def run_check(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "OPSCORE_API_KEY", "DEBUG"}}
    env.pop("OPSCORE_WEBHOOK_SECRET", None)
    env.update({"DJANGO_SETTINGS_MODULE": "opscore_project.settings"})
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
    result = run_check({"DEBUG": "false", "SECRET_KEY": STRONG_SECRET, "OPSCORE_API_KEY": STRONG_KEY})
    assert result.returncode == 0, result.stderr


STRONG_SECRET = "q7Vd2-mX9pLw0zR4tY8uB1nC6eH3jK5sA0fG2hJ4kL6_rT8wQ1eZ5cV9bN3mU7iO"
STRONG_KEY = "Zp4Lm8Qx2Wv6Tn0Rb3Yc7Hd1Gf5Ks9Je"


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("SECRET_KEY", "compose-dev-secret-key-change-me", "published example value"),
        ("OPSCORE_API_KEY", "dev-api-key", "published example value"),
        ("OPSCORE_API_KEY", "change-me-agents-use-this-key", "published example value"),
        ("OPSCORE_API_KEY", "k" * 24, "shorter than 32 characters"),
        ("OPSCORE_WEBHOOK_SECRET", "compose-dev-webhook-secret", "published example value"),
        ("OPSCORE_WEBHOOK_SECRET", "s3cr3t-but-tiny", "shorter than 32 characters"),
    ],
)
def test_production_mode_refuses_weak_or_example_secrets(name, value, reason):
    env = {"DEBUG": "false", "SECRET_KEY": STRONG_SECRET, "OPSCORE_API_KEY": STRONG_KEY, name: value}
    result = run_check(env)
    assert result.returncode != 0
    assert f"{name} is a {reason}" in result.stderr or f"{name} is {reason}" in result.stderr
    assert value not in result.stderr  # the refusal names the setting, never echoes the secret


def test_the_opscore_testing_switch_no_longer_enables_the_development_key():
    result = run_check({"DEBUG": "false", "OPSCORE_TESTING": "true"})
    assert result.returncode != 0
    assert "Missing required setting(s)" in result.stderr


def test_a_malformed_boolean_fails_loudly():
    result = run_check({"DEBUG": "perhaps"})
    assert result.returncode != 0
    assert "DEBUG='perhaps' is not a boolean" in result.stderr


# The production settings docs/security.md lists (its checklist), with real-looking secrets.
DOCUMENTED_PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": STRONG_SECRET,
    "OPSCORE_API_KEY": STRONG_KEY,
    "OPSCORE_WEBHOOK_SECRET": "Wb7Rt2Yq9Lm4Xc8Vn1Bz6Kd3Hs0Pf5Ga",
    "ALLOWED_HOSTS": "opscore.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://opscore.example.org",
    "OPSCORE_BEHIND_TLS": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}


def test_check_deploy_is_clean_with_the_documented_production_settings():
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "OPSCORE_API_KEY", "DEBUG"}}
    env.update(DOCUMENTED_PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="opscore_project.settings")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_malformed_proxy_header_setting_fails_loudly():
    result = run_check({**DOCUMENTED_PRODUCTION_ENV, "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"})
    assert result.returncode != 0 and "SECURE_PROXY_SSL_HEADER" in result.stderr
