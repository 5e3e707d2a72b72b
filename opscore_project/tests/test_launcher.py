"""`make run`'s secrets: a generated key is shown, a supplied one masked; an operator token on first run."""

import os

import pytest
from rest_framework.test import APIClient

from opscore_project import launcher
from opscore_project.authn.models import ApiToken
from opscore_project.authn.services import api_token_revoke
from opscore_project.testing import current_database_url


def test_a_generated_key_is_shown_and_a_supplied_one_is_masked():
    key = "Zp4Lm8Qx2Wv6Tn0Rb3Yc7Hd1Gf5Ks9Je"
    assert launcher.shown_secret(key, supplied=False) == key
    masked = launcher.shown_secret(key, supplied=True)
    assert key not in masked and masked.startswith("Zp4L") and "not shown" in masked


def test_generated_secrets_are_long_enough_for_production(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "VAR_DIR", tmp_path)
    monkeypatch.setattr(launcher, "LOCAL_ENV", tmp_path / "local.env")
    values = launcher.load_local_env()
    assert all(len(values[name]) >= 32 for name in ("SECRET_KEY", "OPSCORE_API_KEY", "OPSCORE_WEBHOOK_SECRET"))
    assert (tmp_path / "local.env").stat().st_mode & 0o077 == 0  # readable by its owner only


@pytest.mark.django_db(transaction=True)
def test_an_operator_token_is_created_on_first_run_and_reused_after(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "OPERATOR_TOKEN_FILE", tmp_path / "operator-token.txt")
    env = dict(os.environ, DEBUG="true", DATABASE_URL=current_database_url())
    token, created = launcher.ensure_operator_token(env)
    assert created and token.startswith("ock_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/v1/opscore/workflows").status_code == 200
    assert launcher.ensure_operator_token(env) == (token, False)
    api_token_revoke(token_ids=list(ApiToken.objects.values_list("id", flat=True)))
    replacement, created = launcher.ensure_operator_token(env)
    assert created and replacement != token
