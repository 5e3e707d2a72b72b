import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from opscore_project.lib.signing import signature_matches
from workflows import services
from workflows.models import CallbackDelivery
from workflows.tests.conftest import linear

pytestmark = pytest.mark.django_db


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.statuses = [status]  # answered in order; the last one repeats
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                statuses = receiver.statuses
                self.send_response(statuses.pop(0) if len(statuses) > 1 else statuses[0])
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver(settings):
    # The receiver listens on loopback, which callbacks refuse unless allow-listed (workflows/callback_safety.py).
    settings.OPSCORE_CALLBACK_ALLOW_HTTP, settings.OPSCORE_CALLBACK_ALLOWED_HOSTS = True, ["127.0.0.1"]
    r = Receiver()
    yield r
    r.close()


def test_the_callback_is_signed_and_recorded(define, start, make_agent, sent, report, receiver, settings):
    settings.OPSCORE_CALLBACK_SECRET = "cb-secret"
    make_agent("a1", ["c"])
    session = start(define(linear("c")), callback_url=receiver.url)
    report("a1", "active")
    report("a1", "idle", {"result": {"v": 1}})
    delivery = services.callback_deliver(session_id=str(session.id), attempt=1)
    assert delivery.success and delivery.status_code == 200
    headers, body = receiver.requests[0]
    assert signature_matches("cb-secret", headers["X-OpsCore-Timestamp"], body, headers["X-OpsCore-Signature"])
    payload = json.loads(body)
    assert payload["event"] == "session.ended"
    assert payload["session"]["status"] == "completed" and payload["session"]["tasks"][0]["result"] == {"v": 1}
    # a redelivered message does not POST twice
    assert services.callback_deliver(session_id=str(session.id), attempt=1) is None
    assert len(receiver.requests) == 1


def test_a_failed_callback_attempt_is_recorded(define, start, make_agent, sent, receiver):
    receiver.statuses = [500]
    session = start(define(linear("c")), callback_url=receiver.url)
    services.session_cancel(session_id=session.id)
    delivery = services.callback_deliver(session_id=str(session.id), attempt=1)
    assert not delivery.success and delivery.error == "HTTP 500"
    assert CallbackDelivery.objects.filter(session=session).count() == 1


def test_the_callback_is_enqueued_when_the_session_ends(
    define, start, sent, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr("workflows.engine.transitions._enqueue_callbacks", queued.extend)
    session = start(define(linear("c")), callback_url="http://example.invalid/hook")
    with django_capture_on_commit_callbacks(execute=True):
        services.session_cancel(session_id=session.id)
    assert queued == [str(session.id)]
