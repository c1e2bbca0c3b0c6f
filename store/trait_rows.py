"""One contact's `contact_traits` rows, read and written in hand-written SQL on the event path.

Keeping traits current adds a read of the contact's trait rows and a write of the ones that
changed to every event stored. Through SQLAlchemy's Core each of those statements costs more in
Python (cache keys, bind and result processors) than the database takes to run it, and on
PostgreSQL each is also a round trip. So here the SQL is written out once per dialect, run with
`exec_driver_sql`, and the values are encoded as SQLAlchemy would store them (JSON text, SQLite's
naive UTC timestamps), so every other reader of the table sees the same rows.

On PostgreSQL an event with traits takes as many round trips as one without:
`claim` creates the contact, inserts the event and locks the contact's row in one statement,
then reads the contact's trait rows in a second sent with it, and `write` upserts the rows with
the `trait_changed` events in one more (where the plain path inserts the contact, then the
event). The contact's row lock is what serialises its events, first ones included (`FOR
UPDATE` on trait rows cannot lock the rows a first event is about to create); the read is a
statement of its own because a statement sees the rows as they were when it began, even after
waiting for that lock. SQLite runs in the process, where
statements cost no round trip: there they stay separate, and only lighter.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from store.traits import TraitRow, value_text
from store.types import as_utc

_COLUMNS = "contact_id, name, value, value_text, state, updated_at"
_UPSERT = (
    "ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value, "
    "value_text = excluded.value_text, state = excluded.state, updated_at = excluded.updated_at"
)
_EVENT_COLUMNS = (
    "contact_id, name, properties, timestamp, source, message_id, received_at, routed_at"
)
_EVENT_CONFLICT = "ON CONFLICT (contact_id, source, message_id) DO NOTHING"
# Text json.dumps writes as it is between quotes (no escapes: printable ASCII but " and \).
_PLAIN = re.compile(r"[ !#-\[\]-~]*")


def _json(value: Any) -> str | None:
    """A JSON column's value as SQLAlchemy's JSON type writes it (`json.dumps`; None: SQL
    NULL), without the encoder for the values traits mostly hold: `{}`, plain text, numbers."""
    kind = type(value)
    if value is None:
        return None
    if kind is str and _PLAIN.fullmatch(value):
        return f'"{value}"'
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)  # what json.dumps writes for them
    if kind is dict and not value:
        return "{}"
    return json.dumps(value)


def _encoded(value: Any) -> tuple[str | None, str | None]:
    """(the JSON column's text, `value_text`)."""
    encoded = _json(value)
    if isinstance(value, str):
        return encoded, value
    if type(value) in (int, float, bool) or value is None:
        return encoded, encoded  # value_text is the JSON of a non-text scalar
    return encoded, value_text(value)


def _sqlite_json(value: Any) -> Any:
    """A JSON column read from SQLite: text, or a number (the column's numeric affinity turns
    the text of a number into one). Plain JSON strings and `{}` without the decoder."""
    if not isinstance(value, str):
        return value
    if value == "{}":
        return {}
    end = len(value) - 1
    if end > 0 and value[0] == '"' == value[end] and _PLAIN.fullmatch(value, 1, end):
        return value[1:end]
    return json.loads(value)


def _sqlite_time(moment: datetime) -> str:
    """As `store.types.UTCDateTime` and SQLAlchemy's SQLite DATETIME store it."""
    return as_utc(moment).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite(conn: Connection, sql: str, params: Any, *, many: bool = False) -> Any:
    """Run `sql` on the connection's sqlite3 cursor, in its transaction: SQLAlchemy's own
    execution costs more than SQLite takes for these statements. Errors are SQLAlchemy's, as
    from `conn.execute`."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        return cursor.executemany(sql, params) if many else cursor.execute(sql, params)
    except sqlite3.Error as error:
        raise DBAPIError.instance(sql, params, error, sqlite3.Error) from error


@dataclass(frozen=True)
class Claimed:
    """What `claim` did: the event's row id (None: a duplicate, nothing stored) and the
    contact's trait rows (None: read them again, see `TraitRowsSql.claim`)."""

    event_id: int | None
    rows: dict[str, TraitRow] | None


class TraitRowsSql:
    """The statements for one dialect (`sqlite` or `postgresql`)."""

    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"

    def read(self, conn: Connection, contact_id: str) -> dict[str, TraitRow]:
        """The contact's rows by trait name (locked for the transaction on PostgreSQL)."""
        if self.postgresql:
            _, found = _postgresql_then_rows(
                conn,
                "SELECT 1 FROM contacts WHERE id = %(contact_id)s FOR UPDATE",
                {"contact_id": contact_id},
            )
            return found
        found = _sqlite(
            conn,
            "SELECT name, value, state FROM contact_traits WHERE contact_id = ?",
            (contact_id,),
        )
        return {
            name: TraitRow(_sqlite_json(value), _sqlite_json(state) or {})
            for name, value, state in found
        }

    def write(
        self,
        conn: Connection,
        contact_id: str,
        rows: Mapping[str, TraitRow],
        now: datetime,
        events: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, int]:
        """Upsert `rows` and insert `events` (the `trait_changed` rows, `_event_row`'s
        columns); returns the new events' row ids by message id (one seen before is not
        inserted again)."""
        names = sorted(rows)
        if self.postgresql:
            return self._write_postgresql(conn, contact_id, rows, names, now, events)
        if names:
            updated_at = _sqlite_time(now)
            _sqlite(
                conn,
                f"INSERT INTO contact_traits ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) {_UPSERT}",
                [
                    (
                        contact_id,
                        name,
                        *_encoded(rows[name].value),
                        _json(dict(rows[name].state)),
                        updated_at,
                    )
                    for name in names
                ],
                many=True,
            )
        ids: dict[str, int] = {}
        for event in events:  # RETURNING takes one row at a time on SQLite
            found = _sqlite(
                conn,
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                f"{_EVENT_CONFLICT} RETURNING id",
                (
                    event["contact_id"],
                    event["name"],
                    _json(event["properties"]),
                    _sqlite_time(event["timestamp"]),
                    event["source"],
                    event["message_id"],
                    _sqlite_time(event["received_at"]),
                    None if event["routed_at"] is None else _sqlite_time(event["routed_at"]),
                ),
            ).fetchone()
            if found is not None:
                ids[event["message_id"]] = found[0]
        return ids

    def _write_postgresql(
        self,
        conn: Connection,
        contact_id: str,
        rows: Mapping[str, TraitRow],
        names: list[str],
        now: datetime,
        events: Sequence[Mapping[str, Any]],
    ) -> dict[str, int]:
        if not names and not events:
            return {}
        params: dict[str, Any] = {"contact_id": contact_id, "now": now}
        for n, name in enumerate(names):
            row = rows[name]
            params[f"n{n}"] = name
            params[f"v{n}"], params[f"t{n}"] = _encoded(row.value)
            params[f"s{n}"] = _json(dict(row.state))
        for n, event in enumerate(events):
            params.update({f"e{n}_{key}": value for key, value in event.items()})
            params[f"e{n}_properties"] = _json(event["properties"])
        found = conn.exec_driver_sql(_postgresql_write(len(names), len(events)), params)
        return {message_id: event_id for event_id, message_id in found} if events else {}

    def claim(self, conn: Connection, event: Mapping[str, Any], *, create_contact: bool) -> Claimed:
        """PostgreSQL: in one statement, create the contact if asked (as `_ensure_contacts`),
        insert the event (`_event_row`'s columns; nothing for a duplicate) and lock and read
        the contact's trait rows. All parts of a statement see the database as it was when
        the statement began: when the contact insert had to wait for another transaction
        creating the same contact, the rows read may miss that one's, and `rows` is None —
        read them with `read`, in a statement of its own (a new contact's first events are
        serialised by that insert, as on the plain path)."""
        params = dict(event, properties=_json(event["properties"]))
        (event_id, current), rows = _postgresql_then_rows(
            conn, _postgresql_claim(create_contact), params
        )
        if event_id is None or not current:
            return Claimed(event_id, None)
        return Claimed(event_id, rows)


# The contact's rows, read once its row is locked (the contact lock is what serialises its
# events: `FOR UPDATE` on the trait rows cannot lock the rows a first event creates).
_LOCKED_ROWS = (
    "SELECT name, value, state FROM contact_traits WHERE contact_id = %(contact_id)s FOR UPDATE"
)


def _postgresql_then_rows(
    conn: Connection, sql: str, params: Mapping[str, Any]
) -> tuple[Any, dict[str, TraitRow]]:
    """Run `sql` (it locks the contact's row) and then read the contact's trait rows, as two
    statements sent in one round trip (psycopg's pipeline mode): the read is a statement of
    its own so that it sees what a transaction the lock waited for committed (a statement sees
    the database as it was when it began, and a lock wait does not change that). Returns
    `sql`'s one row and the rows by trait name; errors are SQLAlchemy's, as from
    `conn.execute`."""
    import psycopg  # only on PostgreSQL

    dbapi = conn.connection.dbapi_connection
    assert isinstance(dbapi, psycopg.Connection)
    try:
        with dbapi.cursor() as first, dbapi.cursor() as read:
            with dbapi.pipeline():  # both sent, and their results fetched, on leaving it
                first.execute(sql, params)
                read.execute(_LOCKED_ROWS, params)
            row = first.fetchone()
            rows = {name: TraitRow(value, state or {}) for name, value, state in read.fetchall()}
    except psycopg.Error as error:
        raise DBAPIError.instance(sql, params, error, psycopg.Error) from error
    return row, rows


@lru_cache(maxsize=256)
def _postgresql_write(rows: int, events: int) -> str:
    values = ", ".join(
        f"(%(contact_id)s, %(n{n})s, CAST(%(v{n})s AS JSON), %(t{n})s, "
        f"CAST(%(s{n})s AS JSON), %(now)s)"
        for n in range(rows)
    )
    upsert = f"INSERT INTO contact_traits ({_COLUMNS}) VALUES {values} {_UPSERT}"
    if not events:
        return upsert
    inserts = ", ".join(
        f"(%(e{n}_contact_id)s, %(e{n}_name)s, CAST(%(e{n}_properties)s AS JSON), "
        f"%(e{n}_timestamp)s, %(e{n}_source)s, %(e{n}_message_id)s, %(e{n}_received_at)s, "
        f"%(e{n}_routed_at)s)"
        for n in range(events)
    )
    changes = (
        f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES {inserts} {_EVENT_CONFLICT} "
        "RETURNING id, message_id"
    )
    return f"WITH upserted AS ({upsert}) {changes}" if rows else changes


@lru_cache(maxsize=2)
def _postgresql_claim(create_contact: bool) -> str:
    contact = (
        "new_contact AS (INSERT INTO contacts (id, attributes, created_at, updated_at) "
        "VALUES (%(contact_id)s, CAST('{}' AS JSON), %(received_at)s, %(received_at)s) "
        "ON CONFLICT (id) DO NOTHING RETURNING id), "
        if create_contact
        else ""
    )
    # `current`: the contact's row is locked — it existed when the statement began (`locked`,
    # waiting for any transaction holding it), or this statement created it. Otherwise
    # (another transaction created it meanwhile, or there is no such contact) nothing is
    # locked and the rows read after are not to be trusted.
    current = (
        "EXISTS (SELECT 1 FROM new_contact) OR EXISTS (SELECT 1 FROM locked)"
        if create_contact
        else "EXISTS (SELECT 1 FROM locked)"
    )
    return (
        f"WITH {contact}"
        f"new_event AS (INSERT INTO events ({_EVENT_COLUMNS}) VALUES (%(contact_id)s, "
        "%(name)s, CAST(%(properties)s AS JSON), %(timestamp)s, %(source)s, %(message_id)s, "
        f"%(received_at)s, %(routed_at)s) {_EVENT_CONFLICT} RETURNING id), "
        "locked AS MATERIALIZED (SELECT 1 FROM contacts WHERE id = %(contact_id)s FOR UPDATE) "
        f"SELECT (SELECT id FROM new_event), {current}"
    )


@lru_cache(maxsize=4)
def trait_rows_sql(dialect: str) -> TraitRowsSql:
    return TraitRowsSql(dialect)
