import pytest
from django.utils import timezone

from lifecycle import services
from opscore_project.authn.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_with_history():
    services.agent_state_report(agent_id="a1", state="idle", details={}, reported_at=timezone.now())
    return "a1"


def test_the_admin_index_shows_agent_counts_per_state(staff_client, agent_with_history):
    response = staff_client.get("/admin/")
    assert response.status_code == 200
    assert b"Agents by state" in response.content
    assert response.context["agent_state_counts"] == {"idle": 1}


@pytest.mark.parametrize(
    "url",
    [
        "/admin/lifecycle/agent/",
        "/admin/lifecycle/agent/?state__exact=idle",
        "/admin/lifecycle/agent/?capability=summarise",
        "/admin/lifecycle/agent/?q=a1",
        "/admin/lifecycle/agentstaterecord/",
        "/admin/authn/apitoken/",
        "/admin/authn/apitoken/add/",
        "/admin/django_celery_beat/periodictask/",
    ],
)
def test_admin_pages_load_for_staff(staff_client, agent_with_history, url):
    assert staff_client.get(url).status_code == 200


def test_the_agent_page_shows_its_history_inline(staff_client, agent_with_history):
    from lifecycle.models import Agent

    agent = Agent.objects.get(agent_id="a1")
    response = staff_client.get(f"/admin/lifecycle/agent/{agent.pk}/change/")
    assert response.status_code == 200
    assert b"State history" in response.content


def test_the_admin_creates_a_scoped_token_and_shows_the_key_once(staff_client, operator):
    form = {"user": operator.pk, "name": "ci", "scopes": ["operator", "metrics"]}
    response = staff_client.post("/admin/authn/apitoken/add/", form, follow=True)
    assert response.status_code == 200
    token = ApiToken.objects.get()
    assert token.scope_list == ["operator", "metrics"]
    shown = [str(m) for m in response.context["messages"]]
    (message,) = [m for m in shown if "copy it now" in m]
    raw = message.split(": ", 1)[1].split(" ", 1)[0]
    assert staff_client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_anonymous_users_are_sent_to_the_login(client):
    response = client.get("/admin/lifecycle/agent/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("password", ["12345678901234", "password1234", "short-9"])
def test_admin_passwords_follow_djangos_validators(staff_client, password):
    from django.contrib.auth import get_user_model

    form = {"username": "newbie", "password1": password, "password2": password, "usable_password": "true"}
    response = staff_client.post("/admin/auth/user/add/", form)
    assert response.status_code == 200  # the form again, with the validator's message
    assert response.context["adminform"].form.errors
    assert not get_user_model().objects.filter(username="newbie").exists()
