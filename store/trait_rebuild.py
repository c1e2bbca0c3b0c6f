"""Recomputing traits in SQL (`rapport traits rebuild`, the traits and RFM schedules).

Each trait's new values are computed by one INSERT … SELECT into a temporary staging table
(`contact_id, name, value, state`, values as JSON text); then, in the same transaction, one
statement stores a `trait_changed` event for every value that differs from the stored one, and
one upserts the staged rows into `contact_traits`. Contacts that had the trait and have no
events for it any more get its empty value (0 for a count or sum, nothing otherwise). Nothing is
read into Python, so memory stays flat however many contacts and events there are.

The SQL spelling of JSON differs between the backends; the functions here hide it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Index,
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


# --- one aggregate as a SELECT (contact_id, name, value, state) --------------------------------


def aggregate_select(dialect: str, query: AggregateQuery) -> Any:
    props = Event.properties
    where: list[ColumnElement[bool]] = [Event.name == query.event]
    if query.since is not None:
        where.append(Event.timestamp >= bindparam(None, query.since, type_=UTCDateTime()))
    if query.condition is not None:
        where.append(query.condition(dialect, props))
    prop = query.prop
    if prop not in (None, "timestamp"):
        assert prop is not None
        where.append(json_present(dialect, props, prop))
    name = literal(query.name)
    empty_state = literal("{}")
    kind = query.kind
    if kind in ("first", "last"):
        order = (Event.timestamp.asc(), Event.id.asc())
        if kind == "last":
            order = (Event.timestamp.desc(), Event.id.desc())
        rank = func.row_number().over(partition_by=Event.contact_id, order_by=order)
        ranked = (
            select(
                Event.contact_id.label("contact_id"),
                Event.properties.label("properties"),
                Event.timestamp.label("timestamp"),
                rank.label("rank"),
            )
            .where(*where)
            .subquery()
        )
        if prop is None or prop == "timestamp":
            value = as_json_text(dialect, _iso_second(dialect, ranked.c.timestamp))
        else:
            value = _property_json(dialect, ranked.c.properties, prop)
        state = _json_object(dialect, literal("at"), _iso_full(dialect, ranked.c.timestamp))
        return select(ranked.c.contact_id, name, value, state).where(ranked.c.rank == 1)
    if kind == "count":
        value = _number_text(func.count())
        state = empty_state
    elif prop == "timestamp":  # min / max of when it happened
        reduce = func.min if kind == "min" else func.max
        value = as_json_text(dialect, _iso_second(dialect, reduce(Event.timestamp)))
        state = empty_state
    else:
        assert prop is not None
        if kind == "sum":
            value = _number_text(func.sum(json_number(dialect, props, prop, exact=True)))
            state = empty_state
        elif kind == "avg":
            value = _number_text(func.avg(json_number(dialect, props, prop)))
            number = json_number(dialect, props, prop, exact=True)
            state = _json_object(
                dialect,
                literal("sum"),
                func.sum(number),
                literal("count"),
                func.count(number),
            )
        else:
            reduce = func.min if kind == "min" else func.max
            value = _number_text(reduce(json_number(dialect, props, prop, exact=True)))
            state = empty_state
    return select(Event.contact_id, name, value, state).where(*where).group_by(Event.contact_id)


# --- staging, changes, upsert -----------------------------------------------------------------


def _create_stage(session: Session) -> None:
    _STAGE.create(session.connection())


def _drop_stage(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        _STAGE.drop(session.connection())


def stage(session: Session, select_: Any) -> None:
    """Add rows (contact_id, name, value, state) to the staging table."""
    session.connection().execute(_STAGE.insert().from_select(list(_STAGE.c), select_))


def stage_missing(session: Session, name: str, empty: str | None) -> None:
    """Contacts that have the trait stored but no staged row get its empty value."""
    staged = exists().where(
        and_(_STAGE.c.contact_id == ContactTrait.contact_id, _STAGE.c.name == ContactTrait.name)
    )
    stage(
        session,
        select(
            ContactTrait.contact_id, ContactTrait.name, literal(empty, Text), literal("{}")
        ).where(ContactTrait.name == name, ~staged),
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
    session: Session, cause: str, now: datetime, announced: frozenset[str] | None = None
) -> int:
    """Store a `trait_changed` event per staged value that differs (only for the `announced`
    traits, when given), then the staged values. Returns how many values changed."""
    dialect = session.get_bind().dialect.name
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
        if announced:
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
            return apply_stage(session, cause, now, announced)
        finally:
            _drop_stage(session)
    finally:
        if dialect == "sqlite":
            mapping.drop(conn)


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
        for select_, name, empty in fills:
            stage(session, select_)
            stage_missing(session, name, empty)
        return apply_stage(session, cause, now, announced)
    finally:
        _drop_stage(session)


__all__ = [
    "AggregateQuery",
    "DerivedRead",
    "aggregate_select",
    "as_json_text",
    "rebuild_derived_in_session",
    "rebuild_in_session",
]
