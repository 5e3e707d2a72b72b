"""Every route × every kind of credential, against the access each route declares below.

Credentials: none, a wrong key, a revoked token, an expired token, the agents' shared key, an operator token, a
metrics token, a non-staff and a staff session. The routes come from the URL resolver, so a new route without a
declaration here fails ``test_every_route_declares_its_access``. The Django admin (``admin/``) is declared as a
whole: its own staff check guards each of its generated routes, and a sample of its pages is tried with every
credential.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.utils import timezone

from lifecycle.models import Agent
from opscore_project.authn.services import api_token_create, api_token_revoke
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db

PUBLIC = "public"  # anyone
AGENT = "agent"  # scope agent: the shared key, any token with agent/operator/admin, staff sessions
OPERATOR = "operator"  # scope operator
METRICS = "metrics"  # scope metrics (or a staff session)
SIGNED = "signed"  # HMAC signature only (AgentKit webhook); no Bearer key or session opens it
STAFF_PAGE = "staff page"  # HTML for staff sessions; everyone else is sent to the admin login

ACCESS: dict[str, dict[str, str]] = {
    "health": {"GET": PUBLIC},
    "v1/opscore/agent/<str:agent_id>/state": {"GET": AGENT, "POST": AGENT},
    "v1/opscore/agent/<str:agent_id>/workflow": {"POST": AGENT},
    "v1/opscore/agents": {"GET": OPERATOR},
    "v1/opscore/agents/<str:agent_id>": {"GET": OPERATOR},
    "v1/opscore/agents/<str:agent_id>/history": {"GET": OPERATOR},
    "v1/opscore/agents/<str:agent_id>/drain": {"POST": OPERATOR},
    "v1/opscore/agents/<str:agent_id>/undrain": {"POST": OPERATOR},
    "v1/opscore/agents/<str:agent_id>/quarantine": {"POST": OPERATOR},
    "v1/opscore/agents/<str:agent_id>/release": {"POST": OPERATOR},
    "v1/opscore/agents/<str:agent_id>/capabilities": {"PUT": OPERATOR},
    "v1/opscore/internal/agent/notify": {"POST": SIGNED},
    "v1/opscore/workflows": {"GET": OPERATOR, "POST": OPERATOR},
    "v1/opscore/workflows/<str:workflow_id>": {"GET": OPERATOR},
    "v1/opscore/workflows/<str:workflow_id>/versions": {"GET": OPERATOR},
    "v1/opscore/workflows/<str:workflow_id>/run": {"POST": OPERATOR},
    "v1/opscore/workflows/<str:workflow_id>/controls": {"GET": OPERATOR},
    "v1/opscore/workflows/<str:workflow_id>/pause": {"POST": OPERATOR},
    "v1/opscore/workflows/<str:workflow_id>/resume": {"POST": OPERATOR},
    "v1/opscore/workflows/<str:workflow_id>/limits": {"PUT": OPERATOR},
    "v1/opscore/dispatch": {"GET": OPERATOR},
    "v1/opscore/dispatch/pause": {"POST": OPERATOR},
    "v1/opscore/dispatch/resume": {"POST": OPERATOR},
    "v1/opscore/dispatch/waiting": {"GET": OPERATOR},
    "v1/opscore/capability-limits": {"GET": OPERATOR},
    "v1/opscore/capability-limits/<str:capability>": {"PUT": OPERATOR, "DELETE": OPERATOR},
    "v1/opscore/sessions": {"GET": OPERATOR},
    "v1/opscore/sessions/<str:session_id>": {"GET": AGENT},
    "v1/opscore/sessions/<str:session_id>/cancel": {"POST": OPERATOR},
    "v1/opscore/sessions/<str:session_id>/retry": {"POST": OPERATOR},
    "v1/opscore/sessions/<str:session_id>/tasks/<str:task_id>/input": {"POST": OPERATOR},
    "v1/opscore/inbox": {"GET": OPERATOR},
    "v1/opscore/events": {"GET": OPERATOR},
    "v1/opscore/alerts": {"GET": OPERATOR},
    "v1/opscore/alerts/rules": {"GET": OPERATOR, "POST": OPERATOR},
    "v1/opscore/alerts/rules/<str:rule_id>": {"GET": OPERATOR, "PATCH": OPERATOR, "DELETE": OPERATOR},
    "metrics": {"GET": METRICS},
    "dashboard/": {"GET": STAFF_PAGE},
    "dashboard/overview.json": {"GET": STAFF_PAGE},
    "dashboard/events/": {"GET": STAFF_PAGE},
    "dashboard/dispatch/": {"GET": STAFF_PAGE},
    "dashboard/inbox/": {"GET": STAFF_PAGE},
    "dashboard/sessions/": {"GET": STAFF_PAGE},
    "dashboard/workflows/<str:workflow_id>/": {"GET": STAFF_PAGE},
    "dashboard/sessions/<str:session_id>/": {"GET": STAFF_PAGE},
    "dashboard/agents/<str:agent_id>/": {"GET": STAFF_PAGE},
    "dashboard/alerts/": {"GET": STAFF_PAGE},
    "api/schema/": {"GET": PUBLIC},
    "api/docs/": {"GET": PUBLIC},
    "api/redoc/": {"GET": PUBLIC},
}
GROUPS = {"admin/": STAFF_PAGE}
ADMIN_SAMPLES = [
    "/admin/",
    "/admin/lifecycle/agent/",
    "/admin/authn/apitoken/",
    "/admin/authn/apitoken/add/",
    "/admin/workflows/workflowsession/",
    "/admin/django_celery_beat/periodictask/",
    "/admin/alerts/alertrule/",
    "/admin/alerts/alert/",
]

CREDENTIALS = [
    "none",
    "wrong key",
    "revoked token",
    "expired token",
    "agent key",
    "operator token",
    "metrics token",
    "non-staff session",
    "staff session",
]
BEARER_FAILURES = {"none", "wrong key", "revoked token", "expired token"}


def _routes(resolver=None, prefix: str = ""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def test_every_route_declares_its_access():
    routes = list(_routes())
    undeclared = [r for r in routes if r not in ACCESS and not r.startswith(tuple(GROUPS))]
    assert not undeclared, f"Declare the access of these routes in {__name__}.ACCESS: {undeclared}"
    stale = [route for route in ACCESS if route not in routes]
    assert not stale, f"Declared but not routed: {stale}"


@pytest.fixture
def world(django_user_model, settings):
    settings.OPSCORE_WEBHOOK_SECRET = "matrix-webhook-secret-matrix-webhook-secret"
    from workflows.services import definition_create, session_start

    agent = Agent.objects.create(agent_id="a1", capabilities=["c"], capabilities_known=True, state="idle")
    definition, _ = definition_create(data=linear("c", wf_id="wf"))
    session, _ = session_start(definition=definition, agent=None, initial_payload={})
    revoked, revoked_raw = api_token_create(name="revoked", scopes=["admin"])
    api_token_revoke(token_ids=[revoked.id])
    _, expired_raw = api_token_create(name="expired", scopes=["admin"], expires_at=timezone.now() - timedelta(1))
    _, operator_raw = api_token_create(name="operator", scopes=["operator"])
    _, metrics_raw = api_token_create(name="metrics", scopes=["metrics"])
    plain = django_user_model.objects.create_user("plain")  # force_login: no password hashing needed
    staff = django_user_model.objects.create_user("staff", is_staff=True, is_superuser=True)
    from opscore_project.alerts.services import alert_rule_create

    rule = alert_rule_create(name="matrix", condition="agent_error", channel="email", target="ops@example.com")
    return {
        "rule_id": str(rule.pk),
        "agent_id": agent.agent_id,
        "workflow_id": "wf",
        "capability": "c",
        "session_id": str(session.id),
        "task_id": "s1",
        "bearer": {
            "wrong key": "not-a-key",
            "revoked token": revoked_raw,
            "expired token": expired_raw,
            "agent key": settings.OPSCORE_API_KEY,
            "operator token": operator_raw,
            "metrics token": metrics_raw,
        },
        "users": {"non-staff session": plain, "staff session": staff},
    }


def _client(world, credential: str) -> Client:
    client = Client()
    if credential in world["users"]:
        client.force_login(world["users"][credential])
    elif credential in world["bearer"]:
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {world['bearer'][credential]}"
    return client


def _url(route: str, world) -> str:
    return "/" + re.sub(r"<str:(\w+)>", lambda m: world[m.group(1)], route)


def _body(route: str, world) -> dict | None:
    if route.endswith("/state"):
        return {"agentId": "a1", "timestamp": timezone.now().isoformat(), "state": "idle", "details": {}}
    if route.endswith("/workflow"):
        return {"workflowDefinitionId": "wf"}
    if route == "v1/opscore/workflows":
        return linear("c", wf_id="wf2")
    if route.endswith("/limits"):
        return {"maxRunningSessions": 2}
    if route.startswith("v1/opscore/capability-limits/"):
        return {"maxInFlight": 2}
    if route.endswith("/run") or route.endswith("/notify"):
        return {}
    return None


def _request(client: Client, method: str, url: str, body):
    if method == "GET":
        return client.get(url)
    send = getattr(client, method.lower())
    if method == "PATCH" and body is None:
        body = {}
    if body is None:
        return send(url)
    return send(url, body, content_type="application/json")


def _expected(access: str, credential: str):
    """A predicate over the response, and a description for the failure message."""
    allowed = (lambda r: r.status_code not in (401, 403) and r.status_code < 500, "allowed")
    unauthenticated = (lambda r: r.status_code == 401 and r.has_header("WWW-Authenticate"), "401")
    forbidden = (lambda r: r.status_code == 403, "403 naming the scope")
    to_login = (lambda r: r.status_code == 302 and "/admin/login/" in r["Location"], "redirect to login")
    if access == PUBLIC:
        return allowed
    if access == SIGNED:
        return (lambda r: r.status_code == 401, "401")
    if access == STAFF_PAGE:
        if credential == "staff session":
            return (lambda r: r.status_code < 400 and "/admin/login/" not in r.get("Location", ""), "staff page")
        return to_login
    if credential in BEARER_FAILURES:
        return unauthenticated
    if credential == "non-staff session":
        return forbidden
    if credential == "staff session":
        return allowed
    granted = {"agent key": {AGENT}, "operator token": {AGENT, OPERATOR}, "metrics token": {METRICS}}[credential]
    return allowed if access in granted else forbidden


@pytest.mark.parametrize(
    ("route", "method"), [(route, method) for route, methods in ACCESS.items() for method in methods]
)
def test_each_route_answers_each_credential_as_declared(world, route, method):
    access = ACCESS[route][method]
    failures = []
    for credential in CREDENTIALS:
        response = _request(_client(world, credential), method, _url(route, world), _body(route, world))
        check, description = _expected(access, credential)
        if not check(response):
            failures.append(f"{credential}: expected {description}, got {response.status_code}")
        elif response.status_code == 403 and access in (AGENT, OPERATOR, METRICS):
            assert f"'{access}' scope" in response.json()["message"], (credential, response.content)
    assert not failures, f"{method} /{route} ({access}): " + "; ".join(failures)


@pytest.mark.parametrize("url", ADMIN_SAMPLES)
def test_admin_pages_answer_each_credential_as_declared(world, url):
    failures = []
    for credential in CREDENTIALS:
        response = _client(world, credential).get(url)
        check, description = _expected(GROUPS["admin/"], credential)
        if not check(response):
            failures.append(f"{credential}: expected {description}, got {response.status_code}")
    assert not failures, f"GET {url}: " + "; ".join(failures)
