"""One-round-trip execution of idempotent hot-path statements (the state report write).

Two costs Django would otherwise add to every state report, each as large as the write itself:

* ``CONN_HEALTH_CHECKS`` sends ``SELECT 1`` before the first query of every request: a second round trip.
  Here the write itself is the health check: if it fails because the persistent connection died (Postgres
  restarted, idle connection cut), the connection is closed and the statement retried once on a fresh one —
  what the health check would have done, without paying for it when nothing is wrong. That is only safe for
  statements that are idempotent (the state write is: an exact duplicate report is stored once and the
  current state is decided by the newest timestamp).
* Django's psycopg 3 cursors bind parameters client-side, so Postgres parses and plans the statement on every
  call. This runs it on a server-side-binding cursor, which psycopg prepares on the server once the connection
  has run it ``prepare_threshold`` times (the ``DB_PREPARE_THRESHOLD`` setting); every later call only executes.

The cursor is still Django's wrapper (query logging, ``assertNumQueries``, error translation all apply).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg._queries as psycopg_queries
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, connection
from django.db.models.sql.query import RawQuery

# psycopg remembers how it parsed a statement's placeholders only for statements up to 4,096 characters. The state
# write (with the probes' CTEs) and the engine's set-based statements are longer, and parsing them again costs
# about 0.2 ms of CPU per call. Its cache stays bounded (128 statements); test_db_bulk checks this still applies.
psycopg_queries.MAX_CACHED_STATEMENT_LENGTH = max(psycopg_queries.MAX_CACHED_STATEMENT_LENGTH, 65536)


def _server_binding_cursor():
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))


def fetchone_idempotent(sql: str, params: Mapping[str, Any] | Sequence[Any]) -> tuple | None:
    """Execute one idempotent statement on the default (Postgres) connection and return its first row.

    Raises django.db errors as usual; a connection found dead by this statement is replaced and the
    statement retried once (never inside a transaction, where the retry could not be atomic with the rest).
    """
    for attempt in (1, 2):
        try:
            with _server_binding_cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone()
        except (OperationalError, InterfaceError):
            if attempt == 2 or connection.in_atomic_block or connection.is_usable():
                raise
            connection.close()
            continue
        # The statement went through on this connection: that is this request's health check.
        connection.health_check_done = True
        return row
    raise AssertionError("unreachable")


def bulk_update_rows(model, rows: Sequence[Any], fields: Sequence[str], *, batch: WriteBatch | None = None) -> None:
    """``Model.objects.bulk_update(rows, fields)`` in one statement, without the per-row CASE expressions Django
    builds (measured: ~14 ms of Python per 100 rows × 10 fields). On Postgres every column travels as one array
    parameter (``UPDATE … FROM unnest(…)``), run now or added to ``batch``; elsewhere Django's own bulk_update is
    used (now)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, fields, batch_size=500)
    elif batch is not None:
        batch.add(*bulk_update_sql(model, rows, fields))
    else:
        execute_server_bound(*bulk_update_sql(model, rows, fields))


def bulk_update_sql(model, rows: Sequence[Any], fields: Sequence[str]) -> tuple[str, list[Any]]:
    """The Postgres statement ``bulk_update_rows`` runs and its parameters (positional ``%s``)."""
    meta = model._meta
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    arrays = [[pk.get_db_prep_value(row.pk, connection) for row in rows]]
    casts = [f"%s::{_db_type(pk)}[]"]
    for field in columns:
        values = [getattr(row, field.attname) for row in rows]
        db_type = _db_type(field)
        if db_type == "jsonb":
            # One text array, cast per element: a jsonb[] parameter would need an adapter per value.
            arrays.append([None if v is None else json.dumps(v, separators=(",", ":")) for v in values])
            casts.append("%s::text[]")
        else:
            arrays.append([field.get_db_prep_value(v, connection) for v in values])
            casts.append(f"%s::{_array_type(db_type)}[]")
    names = ["pk"] + [f"c{i}" for i in range(len(columns))]
    assignments = ", ".join(
        f'"{field.column}" = v.c{i}' + ("::jsonb" if _db_type(field) == "jsonb" else "")
        for i, field in enumerate(columns)
    )
    sql = (
        f'UPDATE "{meta.db_table}" AS t SET {assignments} '
        f"FROM unnest({', '.join(casts)}) AS v ({', '.join(names)}) "
        f'WHERE t."{pk.column}" = v.pk'
    )
    return sql, arrays


class WriteBatch:
    """Independent writes sent to Postgres as one statement, each a data-modifying ``WITH`` clause of it: one round
    trip for the several bulk writes of an engine step instead of one each.

    The statements run on one snapshot, so they must not touch the same rows nor read each other's writes; the
    last one may return rows (``execute`` returns them) and may start with a ``WITH`` of its own (its clauses are
    appended). Statements take positional ``%s`` parameters, the last one named ones too. Postgres only.
    """

    def __init__(self) -> None:
        self._statements: list[tuple[str, dict[str, Any]]] = []
        self._named_count = 0

    def __bool__(self) -> bool:
        return bool(self._statements)

    def add(self, sql: str, params: Sequence[Any]) -> None:
        self._statements.append(self._named(sql.strip(), params))

    def execute(self, returning: tuple[str, Mapping[str, Any] | Sequence[Any]] | None = None) -> list[tuple]:
        """Run everything added (plus ``returning``, last) and return the rows of the last statement."""
        statements, self._statements = self._statements, []
        if returning is not None:
            sql, params = returning
            statements.append(
                (sql.strip(), dict(params)) if isinstance(params, Mapping) else self._named(sql.strip(), params)
            )
        if not statements:
            return []
        *head, (last, _) = statements
        clauses = [f"w{i} AS ({sql})" for i, (sql, _) in enumerate(head)]
        if clauses and last[:5].upper() == "WITH ":
            sql = f"WITH {', '.join(clauses)}, {last[5:]}"
        elif clauses:
            sql = f"WITH {', '.join(clauses)} {last}"
        else:
            sql = last
        params = {name: value for _, statement_params in statements for name, value in statement_params.items()}
        with _server_binding_cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def _named(self, sql: str, params: Sequence[Any]) -> tuple[str, dict[str, Any]]:
        """Positional placeholders renamed after the statement's place in the batch (``%(b1_0)s``…)."""
        prefix, parts = f"b{self._named_count}_", sql.split("%s")
        self._named_count += 1
        if len(parts) != len(params) + 1:
            raise ValueError(f"{len(parts) - 1} placeholders for {len(params)} parameters")
        named = parts[0] + "".join(f"%({prefix}{i})s{part}" for i, part in enumerate(parts[1:]))
        return named, {f"{prefix}{i}": value for i, value in enumerate(params)}


@functools.lru_cache(maxsize=512)
def _db_type(field) -> str:
    """A field's column type (Django recomputes it on every call; the engine asks thousands of times a second)."""
    return field.db_type(connection)


def _array_type(db_type: str) -> str:
    """The element type to cast an array parameter to: varchar(n) and similar keep their base type."""
    base = db_type.split("(")[0].strip()
    return {"serial": "integer", "bigserial": "bigint"}.get(base, base)


def bulk_insert_rows(
    model, rows: Sequence[Any], *, ignore_conflicts: bool = False, batch: WriteBatch | None = None
) -> None:
    """``Model.objects.bulk_create(rows)`` as one ``INSERT … SELECT FROM unnest(…)`` on Postgres: one array
    parameter per column instead of one parameter per value, several times cheaper in Python for engine batches.
    Run now or added to ``batch``. Rows must carry their primary key, or have an auto-increment one (not read
    back). Elsewhere: bulk_create (now)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(rows, batch_size=500, ignore_conflicts=ignore_conflicts)
    elif batch is not None:
        batch.add(*bulk_insert_sql(model, rows, ignore_conflicts=ignore_conflicts))
    else:
        execute_server_bound(*bulk_insert_sql(model, rows, ignore_conflicts=ignore_conflicts))


def bulk_insert_sql(model, rows: Sequence[Any], *, ignore_conflicts: bool = False) -> tuple[str, list[Any]]:
    """The Postgres statement ``bulk_insert_rows`` runs and its parameters (positional ``%s``), for callers that
    combine it with other statements in one round trip (a ``WITH`` query)."""
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not (f.primary_key and f.get_internal_type().endswith("AutoField"))]
    arrays, casts = [], []
    for field in fields:
        values = [getattr(row, field.attname) for row in rows]
        db_type = _db_type(field)
        if db_type == "jsonb":
            arrays.append([None if v is None else json.dumps(v, cls=DjangoJSONEncoder) for v in values])
            casts.append("%s::text[]")
        else:
            arrays.append([field.get_db_prep_value(v, connection) for v in values])
            casts.append(f"%s::{_array_type(db_type)}[]")
    columns = ", ".join(f'"{field.column}"' for field in fields)
    selects = ", ".join(f"c{i}::jsonb" if _db_type(field) == "jsonb" else f"c{i}" for i, field in enumerate(fields))
    names = ", ".join(f"c{i}" for i in range(len(fields)))
    sql = f'INSERT INTO "{meta.db_table}" ({columns}) SELECT {selects} FROM unnest({", ".join(casts)}) AS v ({names})'
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    return sql, arrays


def execute_server_bound(sql: str, params: Sequence[Any]) -> None:
    """Run a bulk statement with its arrays bound on the server: psycopg sends each array as one parameter instead
    of quoting every element into the SQL text, and the statement (the same text for every batch of a model) is
    prepared once per connection."""
    with _server_binding_cursor() as cursor:
        cursor.execute(sql, params)


def fetchall_server_bound(sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> list[tuple]:
    """Run a statement with a fixed text and return its rows, prepared on the server once the connection has run
    it ``prepare_threshold`` times (Django's client-side binding parses and plans it on every call: for the
    engine's statements planning costs several times their execution). Elsewhere (SQLite) a plain cursor."""
    cursor = _server_binding_cursor() if connection.vendor == "postgresql" else connection.cursor()
    with cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


class _PreparedRawQuery(RawQuery):
    """A raw query run like ``fetchall_server_bound``: on a server-binding cursor, all rows read at once."""

    def _execute_query(self) -> None:
        if connection.vendor != "postgresql":
            super()._execute_query()
            return
        self.cursor = _FetchedRows(_server_binding_cursor(), self.sql, self.params)


class _FetchedRows(list):
    def __init__(self, cursor, sql: str, params: Any) -> None:
        with cursor:
            cursor.execute(sql, params)
            super().__init__(cursor.fetchall())
            self.description = cursor.description

    def close(self) -> None:
        pass


def raw_models(model, sql: str, params: Mapping[str, Any] | Sequence[Any]) -> list:
    """``list(model.objects.raw(sql, params))`` with the statement prepared on the server (see
    ``fetchall_server_bound``): for the engine's fixed-text reads. Array parameters need explicit casts."""
    queryset = model.objects.raw(sql, params)
    queryset.query = _PreparedRawQuery(sql, using=queryset.db, params=params)
    return list(queryset)
