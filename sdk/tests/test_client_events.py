"""The operation log through the client, against a live Ops-Core."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from opscore_sdk import Event, ValidationError

from sdk.tests.conftest import needs_events_api

pytestmark = [pytest.mark.django_db(transaction=True), needs_events_api]


@pytest.fixture
def log():
    from opscore_project.observability.oplog import log_operation

    def _log(event_type: str = "test.event", **kwargs):
        return log_operation(event_type, kwargs.pop("context", {"k": "v"}), **kwargs)

    return _log


def test_list_events_newest_first_with_typed_fields(client, log):
    log("test.first", agent_id="agent-1", message="first")
    log("test.second", agent_id="agent-1", session_id="s-1", task_id="t-1", level="warning", message="second")
    page = client.list_events(agent="agent-1")
    assert [e.event_type for e in page][:2] == ["test.second", "test.first"]
    event = page[0]
    assert isinstance(event, Event)
    assert (event.level, event.session_id, event.task_id, event.message) == ("warning", "s-1", "t-1", "second")
    assert event.created_at.tzinfo is not None
    assert isinstance(event.id, int)


def test_list_events_filters(client, log):
    log("test.a", agent_id="x", level="error", message="boom")
    log("test.b", agent_id="y", session_id="s-9")
    assert [e.event_type for e in client.list_events(level="error", agent="x")] == ["test.a"]
    assert [e.event_type for e in client.list_events(session="s-9")] == ["test.b"]
    assert [e.event_type for e in client.list_events(type="test.b")] == ["test.b"]
    since = datetime.now(UTC) + timedelta(hours=1)
    assert list(client.list_events(since=since)) == []


def test_after_returns_newer_events_oldest_first(client, log):
    first = log("test.one")
    log("test.two")
    log("test.three")
    newer = client.list_events(after=first.id, type="test.two,test.three")
    assert [e.event_type for e in newer] == ["test.two", "test.three"]


def test_iter_events_walks_pages(client, log):
    for i in range(5):
        log("test.many", message=str(i))
    assert [e.message for e in client.iter_events(type="test.many", page_size=2)] == ["4", "3", "2", "1", "0"]


def test_a_bad_filter_raises_validation_error(client):
    with pytest.raises(ValidationError) as info:
        client.list_events(level="loud")
    assert "level" in info.value.errors


def test_follow_events_yields_new_events_as_they_arrive(client, log):
    log("test.old")

    def produce():
        for i in range(3):
            time.sleep(0.2)
            log("test.live", message=str(i))

    producer = threading.Thread(target=produce)
    producer.start()
    seen = []
    for event in client.follow_events(type="test.live", poll_interval=0.05, max_wait=5):
        seen.append(event.message)
        if len(seen) == 3:
            break
    producer.join()
    assert seen == ["0", "1", "2"]


def test_follow_events_stops_after_max_wait(client, log):
    old = log("test.old")
    started = time.monotonic()
    assert list(client.follow_events(after=old.id, type="test.nothing", poll_interval=0.05, max_wait=0.3)) == []
    assert time.monotonic() - started < 3
