"""Recomputing traits in SQL (`rapport traits rebuild`, the traits and RFM schedules).

The aggregate traits over one event name are computed together, by one grouped scan of that
event's rows into a temporary table (each trait's filter, window and property applied inside its
own aggregate), and go from there to a temporary staging table (`contact_id, name, value,
state`, values as JSON text); RFM and the derived traits are staged the same way. Then, in the
same transaction, one statement stores a `trait_changed` event for every value that differs from
the stored one, and one upserts the staged rows that differ into `contact_traits`. Contacts that
had a trait and have no events for it any more get its empty value (0 for a count or sum,
nothing otherwise). Nothing is read into Python, so memory stays flat however many contacts and
events there are; the rebuild's transaction gets a larger, bounded page cache on SQLite and more
sort memory on PostgreSQL (`tuned_for_rebuild`), and PostgreSQL statistics for its temporary
tables (`analyze`).

The SQL spelling of JSON differs between the backends; the functions here hide it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session

from store.json_sql import json_number, json_path_key, json_present
from store.models import Contact, ContactTrait, Event
from store.types import UTCDateTime

Condition = Callable[[str, Any], ColumnElement[bool]]  # (dialect, properties column) -> filter


@dataclass(frozen=True)
class AggregateQuery:
    """One aggregate trait as SQL sees it (built from the compiled trait)."""

    name: str
    kind: str  # count | sum | avg | min | max | first | last
    event: str
    prop: str | None  # the property; None: the event itself; "timestamp": when it happened
    since: datetime | None = None
    condition: Condition | None = None

    @property
    def empty(self) -> str | None:
        return "0" if self.kind in ("count", "sum") else None


_STAGE = Table(
    "trait_stage",
    MetaData(),
    Column("contact_id", String(255)),
    Column("name", String(255)),
    Column("value", Text),
    Column("state", Text),
    # Looked up by (contact, trait) when finding who lost a trait: without it that is O(n^2).
    Index("ix_trait_stage_contact_name", "contact_id", "name", unique=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


# --- JSON text in SQL -------------------------------------------------------------------------


def as_json_text(dialect: str, value: Any) -> ColumnElement[Any]:
    """A SQL text or number as JSON text (`"gold"`, `42.5`)."""
    if dialect == "postgresql":
        return cast(func.to_json(value), Text)
    return func.json_quote(value)


def _number_text(value: Any) -> ColumnElement[Any]:
    return cast(value, Text)


def _iso_second(dialect: str, timestamp: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(
            func.timezone("UTC", timestamp), literal('YYYY-MM-DD"T"HH24:MI:SS"+00:00"')
        )
    return func.strftime("%Y-%m-%dT%H:%M:%S+00:00", timestamp)


def _iso_full(dialect: str, timestamp: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(
            func.timezone("UTC", timestamp), literal('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        )
    return cast(timestamp, Text)  # stored as UTC text already


def _json_object(dialect: str, *pairs: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return cast(func.json_build_object(*pairs), Text)
    return func.json_object(*pairs)


def _property_json(dialect: str, column: Any, key: str) -> ColumnElement[Any]:
    """A property's value as JSON text, whatever its type."""
    if dialect == "postgresql":
        return cast(column.op("->")(key), Text)
    path = literal("$." + json_path_key(key))
    kind = func.json_type(column, path)
    extracted = func.json_extract(column, path)
    return case(
        (kind == "text", func.json_quote(extracted)),
        (kind == "true", literal("true")),
        (kind == "false", literal("false")),
        (kind.in_(["integer", "real"]), cast(extracted, Text)),
        (kind == "null", None),
        else_=extracted,
    )


# --- the aggregates of one event name, in one grouped scan ------------------------------------

# Separates a first/last key's timestamp from the row id; below every character of a timestamp,
# so the keys order as (timestamp, id) do.
_KEY_SEPARATOR = "\x01"
_KEY_ID_DIGITS = 20


def _first_last_key(dialect: str) -> ColumnElement[Any]:
    """Text that orders the events as `ORDER BY timestamp, id` does, ending in the row id."""
    if dialect == "postgresql":
        moment = func.to_char(
            func.timezone("UTC", Event.timestamp), literal("YYYY-MM-DD HH24:MI:SS.US")
        )
        return moment.concat(func.lpad(cast(Event.id, Text), _KEY_ID_DIGITS, literal("0")))
    number = func.printf(literal(f"%0{_KEY_ID_DIGITS}d"), Event.id)
    return cast(Event.timestamp, Text).concat(literal(_KEY_SEPARATOR)).concat(number)


def _key_id(dialect: str, key: Any) -> ColumnElement[Any]:
    """The row id at the end of a `_first_last_key`."""
    if dialect == "postgresql":
        return cast(func.right(key, _KEY_ID_DIGITS), BigInteger)
    return cast(func.substr(key, -_KEY_ID_DIGITS), Integer)


def _needs_row(query: AggregateQuery) -> bool:
    """A first/last of a property: its value is read from the chosen event's row."""
    return query.kind in ("first", "last") and query.prop not in (None, "timestamp")


def _when(query: AggregateQuery, dialect: str) -> ColumnElement[bool]:
    """Which of the event's rows count for `query` (its window, filter, property present)."""
    parts: list[ColumnElement[bool]] = []
    if query.since is not None:
        parts.append(Event.timestamp >= bindparam(None, query.since, type_=UTCDateTime()))
    if query.condition is not None:
        parts.append(query.condition(dialect, Event.properties))
    if query.prop not in (None, "timestamp"):
        assert query.prop is not None
        parts.append(json_present(dialect, Event.properties, query.prop))
    return and_(true(), *parts)


def _aggregate_columns(
    dialect: str, query: AggregateQuery
) -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
    """(rows counted, value, state) of one aggregate trait over the grouped rows of its event:
    each aggregate reads only the rows its `_when` lets through. A first/last of a property
    gives its key (`_first_last_key`) as the value, resolved to the row afterwards."""
    when = _when(query, dialect)

    def only(value: Any) -> Any:
        return case((when, value), else_=None)

    counted = func.count(only(literal(1)))
    empty_state: ColumnElement[Any] = literal("{}")
    kind, prop = query.kind, query.prop
    if kind in ("first", "last"):
        reduce = func.min if kind == "first" else func.max
        if _needs_row(query):
            return counted, reduce(only(_first_last_key(dialect))), empty_state
        moment = reduce(only(Event.timestamp))
        value = as_json_text(dialect, _iso_second(dialect, moment))
        return counted, value, _json_object(dialect, literal("at"), _iso_full(dialect, moment))
    if kind == "count":
        return counted, _number_text(counted), empty_state
    if prop == "timestamp":  # min / max of when it happened
        reduce = func.min if kind == "min" else func.max
        moment = reduce(only(Event.timestamp))
        return counted, as_json_text(dialect, _iso_second(dialect, moment)), empty_state
    assert prop is not None
    number = only(json_number(dialect, Event.properties, prop, exact=True))
    if kind == "sum":
        return counted, _number_text(func.sum(number)), empty_state
    if kind == "avg":
        value = _number_text(func.avg(only(json_number(dialect, Event.properties, prop))))
        state = _json_object(
            dialect, literal("sum"), func.sum(number), literal("count"), func.count(number)
        )
        return counted, value, state
    reduce = func.min if kind == "min" else func.max
    return counted, _number_text(reduce(number)), empty_state


def stage_event_aggregates(
    session: Session, queries: Sequence[AggregateQuery], scan_name: str = "trait_scan"
) -> None:
    """Stage the aggregate traits `queries` (all over one event name): one grouped scan of the
    event's rows computes every trait's value per contact into a temporary table, then each
    trait's rows go to the staging table from there (a first/last of a property reads its
    chosen row by id), and contacts that had a trait and have no rows for it any more get its
    empty value. A contact gets no row for a trait none of its events count for."""
    dialect = session.get_bind().dialect.name
    conn = session.connection()
    event = queries[0].event
    assert all(q.event == event for q in queries)
    scan = Table(
        scan_name,
        MetaData(),
        Column("contact_id", String(255)),
        *[
            column
            for n in range(len(queries))
            for column in (
                Column(f"n{n}", BigInteger),
                Column(f"v{n}", Text),
                Column(f"s{n}", Text),
            )
        ],
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    scan.create(conn)
    try:
        selected: list[Any] = [Event.contact_id]
        for query in queries:
            selected.extend(_aggregate_columns(dialect, query))
        conn.execute(
            scan.insert().from_select(
                list(scan.c),
                select(*selected).where(Event.name == event).group_by(Event.contact_id),
            )
        )
        analyze(session, scan.name)
        for n, query in enumerate(queries):
            counted, value, state = scan.c[f"n{n}"], scan.c[f"v{n}"], scan.c[f"s{n}"]
            name = literal(query.name)
            if _needs_row(query):
                assert query.prop is not None
                row = Event.__table__.alias("chosen")
                stage(
                    session,
                    select(
                        scan.c.contact_id,
                        name,
                        _property_json(dialect, row.c.properties, query.prop),
                        _json_object(dialect, literal("at"), _iso_full(dialect, row.c.timestamp)),
                    )
                    .select_from(scan.join(row, row.c.id == _key_id(dialect, value)))
                    .where(counted > 0),
                )
            else:
                stage(session, select(scan.c.contact_id, name, value, state).where(counted > 0))
    finally:
        if dialect == "sqlite":
            scan.drop(conn)


def analyze(session: Session, table_name: str) -> None:
    """PostgreSQL: statistics for a temporary table just filled (autovacuum never sees one), so
    the joins over it are planned for its real size."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(f"ANALYZE {table_name}")


# --- staging, changes, upsert -----------------------------------------------------------------


# Page cache of the rebuild's SQLite connection while it rebuilds, in KiB (the default is 2 MiB):
# the upsert and the joins over contact_traits and the staging table then stay in memory
# instead of re-reading pages from the file. Bounded, so memory stays flat whatever the data.
SQLITE_REBUILD_CACHE_KIB = 64 * 1024
# PostgreSQL's memory per sort or hash of the rebuild's statements (the default 4 MB spills the
# grouping of a million events to disk).
POSTGRES_REBUILD_WORK_MEM = "64MB"


@contextmanager
def tuned_for_rebuild(session: Session) -> Iterator[None]:
    """The rebuild's transaction with a larger page cache (SQLite, restored after: the pooled
    connection serves other work next) or sort memory (PostgreSQL, `SET LOCAL`: this
    transaction only)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{POSTGRES_REBUILD_WORK_MEM}'")
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or 0)
    conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_REBUILD_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {before}")


def _create_stage(session: Session) -> None:
    _STAGE.create(session.connection())


def _drop_stage(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        _STAGE.drop(session.connection())


def stage(session: Session, select_: Any) -> None:
    """Add rows (contact_id, name, value, state) to the staging table."""
    session.connection().execute(_STAGE.insert().from_select(list(_STAGE.c), select_))


def stage_missing(session: Session, empties: Mapping[str, str | None]) -> None:
    """Contacts that have one of these traits stored but no staged row for it get its empty
    value (trait name -> JSON text or None), in one pass over the stored rows."""
    if not empties:
        return
    staged = exists().where(
        and_(_STAGE.c.contact_id == ContactTrait.contact_id, _STAGE.c.name == ContactTrait.name)
    )
    whens = [
        (ContactTrait.name == name, literal(empty, Text))
        for name, empty in sorted(empties.items())
        if empty is not None
    ]
    value = case(*whens, else_=literal(None, Text)) if whens else literal(None, Text)
    stage(
        session,
        select(ContactTrait.contact_id, ContactTrait.name, value, literal("{}")).where(
            ContactTrait.name.in_(sorted(empties)), ~staged
        ),
    )


# The staged values that differ from the stored ones (numbers within 1e-9 are equal).
_DIFFERS = {
    "sqlite": """
FROM trait_stage s
LEFT JOIN contact_traits t ON t.contact_id = s.contact_id AND t.name = s.name
WHERE NOT (t.value IS s.value
           OR COALESCE(json_type(t.value) IN ('integer', 'real')
                       AND json_type(s.value) IN ('integer', 'real')
                       AND abs(json_extract(t.value, '$') - json_extract(s.value, '$')) < 1e-9,
                       0))
""",
    "postgresql": """
FROM trait_stage s
LEFT JOIN contact_traits t ON t.contact_id = s.contact_id AND t.name = s.name
WHERE NOT (t.value::text IS NOT DISTINCT FROM s.value
           OR COALESCE(json_typeof(t.value) = 'number' AND json_typeof(s.value::json) = 'number'
                       AND abs((t.value #>> '{}')::float8 - (s.value::json #>> '{}')::float8)
                           < 1e-9,
                       false))
""",
}

_CHANGE_EVENT = {
    "sqlite": """
INSERT INTO events (contact_id, name, properties, timestamp, source, message_id, received_at,
                    routed_at)
SELECT s.contact_id, 'trait_changed',
       json_object('trait', s.name, 'old', json(t.value), 'new', json(s.value)),
       :now, 'traits', :cause || ':' || s.name, :now, NULL
""",
    "postgresql": """
INSERT INTO events (contact_id, name, properties, timestamp, source, message_id, received_at,
                    routed_at)
SELECT s.contact_id, 'trait_changed',
       json_build_object('trait', s.name, 'old', t.value, 'new', s.value::json),
       :now, 'traits', :cause || ':' || s.name, :now, NULL
""",
}

# Only the rows that differ are written: a rebuild that changes nothing writes nothing (the
# nightly schedule over 100k contacts), and a contact without a value and without a row gets
# none.
_UPSERT = {
    "sqlite": """
INSERT INTO contact_traits (contact_id, name, value, value_text, state, updated_at)
SELECT s.contact_id, s.name, s.value,
       CASE WHEN json_type(s.value) = 'text' THEN json_extract(s.value, '$') ELSE s.value END,
       s.state, :now
FROM trait_stage s
LEFT JOIN contact_traits t ON t.contact_id = s.contact_id AND t.name = s.name
WHERE CASE WHEN t.contact_id IS NULL THEN s.value IS NOT NULL
           ELSE t.value IS NOT s.value OR t.state IS NOT s.state END
ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value,
    value_text = excluded.value_text, state = excluded.state, updated_at = excluded.updated_at
""",
    "postgresql": """
INSERT INTO contact_traits (contact_id, name, value, value_text, state, updated_at)
SELECT s.contact_id, s.name, s.value::json,
       CASE WHEN json_typeof(s.value::json) = 'string' THEN s.value::json #>> '{}'
            ELSE s.value END,
       s.state::json, :now
FROM trait_stage s
LEFT JOIN contact_traits t ON t.contact_id = s.contact_id AND t.name = s.name
WHERE CASE WHEN t.contact_id IS NULL THEN s.value IS NOT NULL
           ELSE t.value::text IS DISTINCT FROM s.value
                OR t.state::text IS DISTINCT FROM s.state END
ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value,
    value_text = excluded.value_text, state = excluded.state, updated_at = excluded.updated_at
""",
}


def apply_stage(
    session: Session,
    cause: str,
    now: datetime,
    announced: frozenset[str] | None = None,
    staged: Collection[str] | None = None,
) -> int:
    """Store a `trait_changed` event per staged value that differs (only for the `announced`
    traits, when given), then the staged values. Returns how many values changed. `staged`:
    the names of the traits staged, when known (no change event to look for when none of
    them is announced)."""
    dialect = session.get_bind().dialect.name
    analyze(session, _STAGE.name)
    now_param = bindparam("now", now, type_=UTCDateTime())
    conn = session.connection()
    insert_changes = _CHANGE_EVENT[dialect] + _DIFFERS[dialect]
    conflict = "ON CONFLICT (contact_id, source, message_id) DO NOTHING"
    if announced is None:
        changes = conn.execute(
            text(f"{insert_changes}{conflict}").bindparams(now_param, bindparam("cause", cause))
        ).rowcount
    else:
        changes = int(conn.execute(text(f"SELECT count(*) {_DIFFERS[dialect]}")).scalar() or 0)
        if announced and (staged is None or announced.intersection(staged)):
            conn.execute(
                text(f"{insert_changes} AND s.name IN :names {conflict}").bindparams(
                    now_param,
                    bindparam("cause", cause),
                    bindparam("names", sorted(announced), expanding=True),
                )
            )
    conn.execute(text(_UPSERT[dialect]).bindparams(now_param))
    return int(changes or 0)


# --- derived traits: evaluated once per distinct input, joined back in SQL -------------------

NULL_KEY = "\x01"  # stands for a missing input in the mapping's keys (JSON text never is this)
DERIVE_BATCH = 5000


@dataclass(frozen=True)
class DerivedRead:
    """One `contact.NAME` a derived trait reads, as SQL finds it on every contact."""

    name: str
    trait: bool  # a trait's stored value, else the attribute of that name
    profile: bool = False  # a profile column (id, email, phone, timezone, locale)
    empty: str | None = None  # JSON text a missing count or sum reads as


def _derived_inputs(dialect: str, reads: Sequence[DerivedRead]) -> tuple[Any, list[Any]]:
    """(contacts joined with the traits read, one JSON-text column per read)."""
    contacts = Contact.__table__
    joined: Any = contacts
    columns: list[Any] = []
    for position, read in enumerate(reads):
        if read.profile:
            columns.append(as_json_text(dialect, contacts.c[read.name]))
            continue
        attribute = _property_json(dialect, contacts.c.attributes, read.name)
        if not read.trait:
            columns.append(attribute)
            continue
        row = ContactTrait.__table__.alias(f"read{position}")
        joined = joined.outerjoin(
            row, and_(row.c.contact_id == contacts.c.id, row.c.name == read.name)
        )
        # A trait wins over an attribute of the same name (ContactRecord.flattened).
        fallback = literal(read.empty, Text) if read.empty is not None else attribute
        columns.append(func.coalesce(cast(row.c.value, Text), fallback))
    return joined, columns


def rebuild_derived_in_session(
    session: Session,
    name: str,
    reads: Sequence[DerivedRead],
    evaluate: Callable[[tuple[str | None, ...]], str | None],
    cause: str,
    now: datetime,
    announced: frozenset[str] | None = None,
) -> int:
    """One derived trait for every contact: its inputs' distinct combinations are read and
    `evaluate`d once each (inputs and result as JSON text, None for none), kept in a temporary
    mapping table, and joined back to every contact in one INSERT … SELECT into the staging
    table. Python sees as many rows as there are distinct inputs (a few thousand spends, not
    100k contacts). Returns the changes."""
    dialect = session.get_bind().dialect.name
    conn = session.connection()
    joined, columns = _derived_inputs(dialect, reads)
    keys = [f"k{n}" for n in range(len(reads))]
    index = [Index("ix_derive_map_keys", *keys)] if keys else []
    mapping = Table(
        "derive_map",
        MetaData(),
        *[Column(key, Text) for key in keys],
        Column("value", Text),
        *index,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    mapping.create(conn)
    try:
        distinct = conn.execute(
            select(*columns)
            .select_from(joined)
            .distinct()
            .execution_options(stream_results=True, yield_per=DERIVE_BATCH)
        )
        batch: list[dict[str, str | None]] = []
        for inputs in distinct:
            row: dict[str, str | None] = {
                key: NULL_KEY if value is None else value
                for key, value in zip(keys, inputs, strict=True)
            }
            row["value"] = evaluate(tuple(inputs))
            batch.append(row)
            if len(batch) >= DERIVE_BATCH:
                conn.execute(mapping.insert(), batch)
                batch.clear()
        if batch:
            conn.execute(mapping.insert(), batch)
        analyze(session, mapping.name)
        matches = [
            mapping.c[key] == func.coalesce(column, literal(NULL_KEY, Text))
            for key, column in zip(keys, columns, strict=True)
        ]
        contacts = Contact.__table__
        _create_stage(session)
        try:
            stage(
                session,
                select(contacts.c.id, literal(name), mapping.c.value, literal("{}")).select_from(
                    joined.join(mapping, and_(true(), *matches))
                ),
            )
            return apply_stage(session, cause, now, announced, [name])
        finally:
            _drop_stage(session)
    finally:
        if dialect == "sqlite":
            mapping.drop(conn)


def rebuild_aggregates_in_session(
    session: Session,
    queries: Sequence[AggregateQuery],
    cause: str,
    now: datetime,
    announced: frozenset[str] | None = None,
) -> int:
    """Stage every aggregate trait, one grouped scan per event name, and the empty values of
    those a contact lost, then apply; returns the changes."""
    by_event: dict[str, list[AggregateQuery]] = {}
    for query in queries:
        by_event.setdefault(query.event, []).append(query)
    _create_stage(session)
    try:
        for n, same_event in enumerate(by_event.values()):
            stage_event_aggregates(session, same_event, f"trait_scan{n}")
        empties = {query.name: query.empty for query in queries}
        stage_missing(session, empties)
        return apply_stage(session, cause, now, announced, list(empties))
    finally:
        _drop_stage(session)


def rebuild_in_session(
    session: Session,
    fills: Sequence[tuple[Any, str, str | None]],
    cause: str,
    now: datetime,
    announced: frozenset[str] | None = None,
) -> int:
    """Stage each (select, trait name, empty value), then apply; returns the changes."""
    _create_stage(session)
    try:
        for select_, _name, _empty in fills:
            stage(session, select_)
        empties = {name: empty for _select, name, empty in fills}
        stage_missing(session, empties)
        return apply_stage(session, cause, now, announced, list(empties))
    finally:
        _drop_stage(session)


__all__ = [
    "AggregateQuery",
    "DerivedRead",
    "analyze",
    "as_json_text",
    "rebuild_aggregates_in_session",
    "rebuild_derived_in_session",
    "rebuild_in_session",
    "tuned_for_rebuild",
]
