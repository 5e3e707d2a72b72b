import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from lifecycle.models import AgentStateRecord
from lifecycle.tests.conftest import report_body
from opscore_project.authn.authentication import token_cache
from opscore_project.authn.services import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db

URL = "/v1/opscore/agent/agent-1/state"


def post_with_header(header: str | None):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client.post(URL, report_body(), format="json")


def test_the_shared_api_key_is_accepted(api_key):
    assert post_with_header(f"Bearer {api_key}").status_code == 202


def test_a_user_token_is_accepted(operator):
    _, raw = api_token_create(user=operator, name="ci", scopes=["agent"])
    assert post_with_header(f"Bearer {raw}").status_code == 202


def test_a_revoked_token_is_refused(operator):
    token, raw = api_token_create(user=operator, name="ci", scopes=["agent"])
    assert post_with_header(f"Bearer {raw}").status_code == 202
    api_token_revoke(token_ids=[token.id])
    token_cache.clear()  # what the admin action does in the revoking process
    response = post_with_header(f"Bearer {raw}")
    assert response.status_code == 401
    assert AgentStateRecord.objects.count() == 1


def test_a_token_of_a_deactivated_user_is_refused(operator):
    _, raw = api_token_create(user=operator, name="ci", scopes=["agent"])
    operator.is_active = False
    operator.save()
    assert post_with_header(f"Bearer {raw}").status_code == 401


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Bearer wrong-key", "Token dev-api-key", "Basic ZGV2OmtleQ=="]
)
def test_missing_or_invalid_credentials_are_401_and_store_nothing(header):
    response = post_with_header(header)
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "error"
    assert body["code"] in {"not_authenticated", "authentication_failed"}
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not AgentStateRecord.objects.exists()


def test_reading_state_needs_a_key_too(anon_client):
    assert anon_client.get(URL).status_code == 401


def test_a_logged_in_operator_can_use_the_browsable_api(staff_client):
    response = staff_client.get("/v1/opscore/agents", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Agent List" in response.content or b"agents" in response.content.lower()


def test_token_revocation_is_idempotent(operator):
    token, _ = api_token_create(user=operator, name="ci", scopes=["agent"])
    assert api_token_revoke(token_ids=[token.id]) == 1
    assert api_token_revoke(token_ids=[token.id]) == 0
    token.refresh_from_db()
    assert token.revoked_at <= timezone.now()
