"""Completion callbacks cannot reach Ops-Core's own network (SSRF), follow redirects or leak remote bodies."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from workflows import callback_safety, services
from workflows.callback_safety import UnsafeCallbackUrl, check_callback_url, post_callback
from workflows.models import CallbackDelivery, WorkflowSession
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db


class Target:
    """A local HTTP server answering every POST with ``status``, ``headers`` and ``body``."""

    def __init__(self, status=200, headers=None, body=b"") -> None:
        self.hits = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                target.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def target_factory():
    made = []

    def make(**kwargs) -> Target:
        made.append(Target(**kwargs))
        return made[-1]

    yield make
    for target in made:
        target.close()


@pytest.fixture
def public_dns(monkeypatch):
    """Resolve every name to a public documentation-free address (no network in tests)."""
    monkeypatch.setattr(callback_safety, "resolve_host", lambda host, port: ["93.184.215.14"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "only https"),
        ("ftp://hooks.example.com/x", "only https"),
        ("https://127.0.0.1/x", "non-public address"),
        ("https://[::1]/x", "non-public address"),
        ("https://[::ffff:127.0.0.1]/x", "non-public address"),
        ("https://169.254.169.254/latest/meta-data/", "non-public address"),
        ("https://10.1.2.3/x", "non-public address"),
        ("https://192.168.0.10/x", "non-public address"),
        ("https://172.16.5.4/x", "non-public address"),
        ("https://100.100.100.200/x", "non-public address"),
        ("https://0.0.0.0/x", "non-public address"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
    ],
)
def test_unsafe_callback_urls_are_refused(url, reason, public_dns):
    with pytest.raises(UnsafeCallbackUrl, match=reason):
        check_callback_url(url)


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    monkeypatch.setattr(callback_safety, "resolve_host", lambda host, port: ["93.184.215.14", "10.0.0.7"])
    with pytest.raises(UnsafeCallbackUrl, match=r"non-public address \(10\.0\.0\.7\)"):
        check_callback_url("https://rebind.example.com/x")


def test_localhost_by_name_is_refused():
    with pytest.raises(UnsafeCallbackUrl, match="non-public"):
        check_callback_url("https://localhost:8080/x")


def test_allow_listed_hosts_and_ranges_pass(settings, monkeypatch):
    settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = ["hooks.internal", "10.20.0.0/16"]
    monkeypatch.setattr(callback_safety, "resolve_host", lambda host, port: ["10.99.0.1"])
    assert check_callback_url("https://hooks.internal/x").address == "10.99.0.1"
    assert check_callback_url("https://10.20.3.4:8443/x").port == 8443
    with pytest.raises(UnsafeCallbackUrl):
        check_callback_url("https://other.internal/x")


def test_the_trigger_refuses_an_internal_callback_with_400_naming_it(operator_api_client, define):
    define(linear("c", wf_id="wf"))
    response = operator_api_client.post(
        "/v1/opscore/workflows/wf/run", {"callbackUrl": "https://169.254.169.254/latest"}, format="json"
    )
    assert response.status_code == 400
    assert "non-public address" in response.json()["errors"]["callbackUrl"][0]
    assert not WorkflowSession.objects.exists()


def test_delivery_checks_the_address_again(define, start, sent, monkeypatch, target_factory, settings):
    """A name that resolved to a public address at trigger time and to loopback later (DNS rebinding)."""
    target = target_factory()
    settings.OPSCORE_CALLBACK_ALLOW_HTTP = True
    monkeypatch.setattr(callback_safety, "resolve_host", lambda host, port: ["93.184.215.14"])
    session = start(define(linear("c")), callback_url=f"http://rebind.example.com:{target.port}/hook")
    services.session_cancel(session_id=session.id)
    monkeypatch.setattr(callback_safety, "resolve_host", lambda host, port: ["127.0.0.1"])
    delivery = services.callback_deliver(session_id=str(session.id), attempt=1)
    assert not delivery.success and delivery.status_code is None
    assert delivery.error.startswith("refused: host 'rebind.example.com' resolves to a non-public address")
    assert target.hits == 0


def test_redirects_are_not_followed(settings, target_factory):
    inner = target_factory()
    outer = target_factory(status=302, headers={"Location": inner.url})
    settings.OPSCORE_CALLBACK_ALLOW_HTTP, settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = True, ["127.0.0.1"]
    result = post_callback(outer.url, body=b"{}", headers={}, timeout=2)
    assert result.status_code == 302 and result.error == "HTTP 302 (redirects are not followed)"
    assert outer.hits == 1 and inner.hits == 0


def test_the_remote_body_is_never_recorded(define, start, sent, settings, target_factory):
    target = target_factory(status=500, body=b"Traceback: db password=hunter2 at 10.0.0.5")
    settings.OPSCORE_CALLBACK_ALLOW_HTTP, settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = True, ["127.0.0.1"]
    settings.OPSCORE_CALLBACK_MAX_ATTEMPTS = 1
    session = start(define(linear("c")), callback_url=target.url)
    services.session_cancel(session_id=session.id)
    delivery = services.callback_deliver(session_id=str(session.id), attempt=1)
    assert delivery.error == "HTTP 500"
    from opscore_project.observability.models import OperationEvent

    event = OperationEvent.objects.get(event_type="callback.failed")
    assert "hunter2" not in str(event.context) + event.message
    assert event.context["error"] == "HTTP 500"
    assert CallbackDelivery.objects.filter(error__contains="hunter2").count() == 0


def test_an_unreachable_callback_gives_a_short_reason(settings, free_tcp_port):
    settings.OPSCORE_CALLBACK_ALLOW_HTTP, settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = True, ["127.0.0.1"]
    result = post_callback(f"http://127.0.0.1:{free_tcp_port}/x", body=b"{}", headers={}, timeout=1)
    assert result == callback_safety.CallbackResult(None, "connection failed")


def test_a_large_answer_is_not_read_whole(settings, target_factory):
    target = target_factory(body=b"x" * 5_000_000)
    settings.OPSCORE_CALLBACK_ALLOW_HTTP, settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = True, ["127.0.0.1"]
    settings.OPSCORE_CALLBACK_MAX_RESPONSE_BYTES = 1024
    assert post_callback(target.url, body=b"{}", headers={}, timeout=5).error == ""
