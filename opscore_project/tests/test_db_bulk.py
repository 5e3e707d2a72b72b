"""The set-based statements of opscore_project.lib.db against real Postgres."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agentkit_bridge.models import DispatchAttempt
from opscore_project.lib.db import bulk_insert_rows, bulk_update_rows
from opscore_project.observability.models import OperationEvent

pytestmark = pytest.mark.django_db


def _attempt(ref: str, attempt: int, **fields) -> DispatchAttempt:
    return DispatchAttempt(dispatch_ref=ref, agent_id="a1", attempt=attempt, outcome="accepted", **fields)


def test_insert_stores_every_column_including_json_and_nulls():
    now = timezone.now()
    bulk_insert_rows(
        OperationEvent,
        [
            OperationEvent(event_type="x.one", context={"k": [1, "two"], "n": None}, created_at=now),
            OperationEvent(event_type="x.two", context={}, message='it\'s "quoted"', created_at=now),
        ],
    )
    rows = {e.event_type: e for e in OperationEvent.objects.all()}
    assert rows["x.one"].context == {"k": [1, "two"], "n": None}
    assert rows["x.two"].message == 'it\'s "quoted"'
    assert rows["x.one"].created_at == now


def test_insert_with_ignore_conflicts_skips_rows_that_exist():
    bulk_insert_rows(DispatchAttempt, [_attempt("r1:1", 1)])
    bulk_insert_rows(DispatchAttempt, [_attempt("r1:1", 1), _attempt("r1:1", 2)], ignore_conflicts=True)
    assert sorted(DispatchAttempt.objects.values_list("attempt", flat=True)) == [1, 2]


def test_update_sets_the_given_fields_per_row():
    bulk_insert_rows(DispatchAttempt, [_attempt("r2:1", 1), _attempt("r3:1", 1)])
    rows = list(DispatchAttempt.objects.order_by("dispatch_ref"))
    later = timezone.now() + timedelta(seconds=5)
    rows[0].status_code, rows[0].error = 202, ""
    rows[1].status_code, rows[1].error, rows[1].created_at = None, "boom", later
    bulk_update_rows(DispatchAttempt, rows, ["status_code", "error", "created_at"])
    first, second = DispatchAttempt.objects.order_by("dispatch_ref")
    assert (first.status_code, first.error) == (202, "")
    assert (second.status_code, second.error, second.created_at) == (None, "boom", later)


def test_long_statements_are_parsed_once_per_process():
    from django.db import connection
    from psycopg import _queries

    from opscore_project.lib.db import fetchone_idempotent

    sql = "SELECT %(a)s::int + %(b)s::int" + " " * 5000  # longer than psycopg's own 4,096-character limit
    fetchone_idempotent(sql, {"a": 1, "b": 2})
    before = _queries._query2pg.cache_info().hits
    assert fetchone_idempotent(sql, {"a": 2, "b": 3}) == (5,)
    assert _queries._query2pg.cache_info().hits == before + 1
    assert connection.vendor == "postgresql"
