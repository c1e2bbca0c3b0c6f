"""The `Store`'s trait and event-history methods (SPEC §5b), kept apart from the rest of the
repository: storing events with their trait updates (one at a time, or a batch of history in one
transaction), reading and writing trait values, counting contacts per value, and the
`trait_changed` events a change leaves behind.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from pydantic import JsonValue
from sqlalchemy import (
    Connection,
    Executable,
    Select,
    Table,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import Contact, ContactTrait, Event
from store.records import ContactRecord, EventRecord
from store.rfm import rfm_scored, rfm_selects
from store.sql import Sessions, columns, execute, insert
from store.trait_rebuild import (
    AggregateQuery,
    DerivedRead,
    analyze,
    rebuild_aggregates_in_session,
    rebuild_derived_in_session,
    rebuild_in_session,
    tuned_for_rebuild,
)
from store.trait_rows import trait_rows_sql
from store.traits import (
    ATTRIBUTES_CAUSE,
    TRAITS_SOURCE,
    AttributeTraits,
    TraitChange,
    TraitRow,
    TraitUpdater,
    value_text,
)
from store.types import utcnow


def cause_of(event: EventRecord, event_id: int | None) -> str:
    """What identifies the event a trait change came from (its message id, else its row id)."""
    cause = (
        f"{event.source}:{event.message_id}" if event.message_id else f"{event.source}#{event_id}"
    )
    if len(cause) > 200:
        cause = "sha1:" + hashlib.sha1(cause.encode()).hexdigest()
    return cause


def _event_row(event: EventRecord, routed_at: datetime | None) -> dict[str, Any]:
    return {
        "contact_id": event.contact_id,
        "name": event.name,
        "properties": event.properties,
        "timestamp": event.timestamp,
        "source": event.source,
        "message_id": event.message_id,
        "received_at": event.received_at or utcnow(),
        "routed_at": routed_at,
    }


def contact_record(
    row: Mapping[str, Any] | None, contact_id: str, traits: Mapping[str, Any]
) -> ContactRecord:
    """The contact as the updater sees it, from its profile row's columns (None: no row)."""
    if row is None:
        return ContactRecord(id=contact_id, traits=dict(traits))
    return ContactRecord.model_validate({**row, "traits": dict(traits)})


def _connection(session: Session | Connection) -> Connection:
    """The connection of a transaction given as a session or as a bare connection."""
    return session if isinstance(session, Connection) else session.connection()


def _ensure_contacts(session: Session | Connection, contact_ids: Iterable[str]) -> None:
    ids = sorted(set(contact_ids))
    if not ids:
        return
    now = utcnow()
    conn = _connection(session)
    conn.execute(
        _statements(conn.dialect.name).contact,
        [{"id": i, "attributes": {}, "created_at": now, "updated_at": now} for i in ids],
    )


_EVENTS = cast(Table, Event.__table__)
_TRAITS = cast(Table, ContactTrait.__table__)
_MARK_ROUTED = (
    update(_EVENTS)
    .where(_EVENTS.c.id.in_(bindparam("ids", expanding=True)))
    .values(routed_at=bindparam("at"))
)
_TRAITS_OF_MANY = (
    select(_TRAITS.c.contact_id, _TRAITS.c.name, _TRAITS.c.value)
    .where(_TRAITS.c.contact_id.in_(bindparam("ids", expanding=True)), _TRAITS.c.value.is_not(None))
    .order_by(_TRAITS.c.contact_id, _TRAITS.c.name)
)


@dataclass(frozen=True)
class _Statements:
    """Statements of the per-event path, built once per dialect: building them costs as much
    as running them (about 0.1 ms each), on every event. The trait rows' own statements are
    written out in store/trait_rows.py."""

    profile: Select[Any]
    changes: Executable
    contact: Executable
    event: Executable  # an event with a message id: nothing stored for a duplicate
    event_without_id: Executable


@lru_cache(maxsize=4)
def _statements(dialect: str) -> _Statements:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return _Statements(
        profile=select(Contact.__table__).where(Contact.id == bindparam("contact_id")),
        changes=insert_(Event.__table__)  # type: ignore[arg-type]
        .on_conflict_do_nothing(index_elements=["contact_id", "source", "message_id"])
        .returning(Event.id, Event.message_id),
        contact=insert_(Contact.__table__).on_conflict_do_nothing(index_elements=["id"]),  # type: ignore[arg-type]
        event=insert_(_EVENTS)
        .on_conflict_do_nothing(index_elements=["contact_id", "source", "message_id"])
        .returning(_EVENTS.c.id),
        event_without_id=insert_(_EVENTS).returning(_EVENTS.c.id),
    )


@dataclass(frozen=True)
class StoredEvent:
    """What `store_event` wrote: the event's row id and the `trait_changed` events it caused."""

    id: int
    trait_changes: list[EventRecord]


class TraitMethods:
    """Mixed into `Store`; every method is one short transaction."""

    _sessions: Sessions
    trait_updater: TraitUpdater | None = None
    announced_traits: frozenset[str] | None = None

    def use_traits(
        self, updater: TraitUpdater | None, *, announced: frozenset[str] | None = None
    ) -> None:
        """Keep traits current from now on: every event stored is handed to `updater`.
        `announced`: the traits whose changes are stored as `trait_changed` events (those a
        journey or trait listens to); None: every trait's."""
        self.trait_updater = updater
        self.announced_traits = announced

    # -- applying traits inside a write transaction ----------------------------------------

    def _apply_traits(
        self,
        session: Session | Connection,
        contact_id: str,
        events: Sequence[tuple[EventRecord, str]],
        routed_at: datetime | None,
        *,
        rows: dict[str, TraitRow] | None = None,
    ) -> list[EventRecord]:
        """Feed the contact's new events (with their causes) to the updater, write the rows
        that changed and a `trait_changed` event per change; returns those events (with their
        row ids). A fixed number of statements however many events and traits
        (store/trait_rows.py): one read of the contact's rows (unless given: `rows`, read by
        `TraitRowsSql.claim`) and of its profile, one write of the rows and the changes."""
        updater = self.trait_updater
        if updater is None:
            return []
        relevant = [(e, c) for e, c in events if updater.concerns(e.name)]
        if not relevant:
            return []
        conn = _connection(session)
        if rows is None:
            rows = trait_rows_sql(conn.dialect.name).read(conn, contact_id)
        # The profile only when a derived trait reads more than traits (an attribute).
        found = (
            conn.execute(_statements(conn.dialect.name).profile, {"contact_id": contact_id})
            .mappings()
            .first()
            if getattr(updater, "reads_profile", True)
            else None
        )
        profile = dict(found) if found is not None else None
        changes: list[tuple[TraitChange, str]] = []
        written: dict[str, TraitRow] = {}

        def contact() -> ContactRecord:  # built only if a derived trait needs all of contact.*
            return contact_record(profile, contact_id, {n: r.value for n, r in rows.items()})

        announced = self.announced_traits  # only their changes are stored (`_write_traits`)
        for event, cause in relevant:
            for name, row in updater.apply(event, contact, rows).items():
                before = rows.get(name)
                old = None if before is None else before.value
                rows[name] = written[name] = row
                if old != row.value and (announced is None or name in announced):
                    change = TraitChange(contact_id, name, old, row.value, event.timestamp)
                    changes.append((change, cause))
        return self._write_traits(session, contact_id, written, changes, routed_at)

    def _write_traits(
        self,
        session: Session | Connection,
        contact_id: str,
        rows: Mapping[str, TraitRow],
        changes: Sequence[tuple[TraitChange, str]],
        routed_at: datetime | None,
    ) -> list[EventRecord]:
        """Write one contact's changed rows and the `trait_changed` events of the announced
        traits (`_store_changes`), in one statement on PostgreSQL; returns those events stored
        (a replayed cause stores none again), with their row ids."""
        announced = self.announced_traits
        if announced is not None:
            changes = [(c, cause) for c, cause in changes if c.trait in announced]
        records = [change.event(cause) for change, cause in changes]
        if not rows and not records:
            return []
        conn = _connection(session)
        ids = trait_rows_sql(conn.dialect.name).write(
            conn, contact_id, rows, utcnow(), [_event_row(r, routed_at) for r in records]
        )
        return [
            record.model_copy(update={"id": ids[record.message_id], "routed_at": routed_at})
            for record in records
            if record.message_id in ids
        ]

    def _store_changes(
        self,
        session: Session | Connection,
        changes: Sequence[tuple[TraitChange, str]],
        routed_at: datetime | None,
    ) -> list[EventRecord]:
        """Insert the `trait_changed` events; those stored (a replayed cause stores none
        again), with their row ids, in the order of `changes`."""
        announced = self.announced_traits
        if announced is not None:
            changes = [(c, cause) for c, cause in changes if c.trait in announced]
        if not changes:
            return []
        records = [change.event(cause) for change, cause in changes]
        conn = _connection(session)
        ids = {
            message_id: event_id
            for event_id, message_id in conn.execute(
                _statements(conn.dialect.name).changes,
                [_event_row(record, routed_at) for record in records],
            )
        }
        return [
            record.model_copy(update={"id": ids[record.message_id], "routed_at": routed_at})
            for record in records
            if record.message_id in ids
        ]

    def _rederive(
        self,
        session: Session | Connection,
        contact_ids: Sequence[str],
        *,
        routed_at: datetime | None,
    ) -> list[EventRecord]:
        """In the transaction that changed these contacts' attributes or profile: their
        derived traits that read them, recomputed, with a `trait_changed` per change (stored
        with `routed_at`)."""
        updater = self.trait_updater
        if updater is None or not getattr(updater, "reads_profile", False):
            return []
        assert isinstance(updater, AttributeTraits)
        conn = _connection(session)
        statements = _statements(conn.dialect.name)
        now = utcnow()
        cause = f"{ATTRIBUTES_CAUSE}:{now.isoformat()}"
        stored: list[EventRecord] = []
        for contact_id in contact_ids:
            rows = trait_rows_sql(conn.dialect.name).read(conn, contact_id)
            found = conn.execute(statements.profile, {"contact_id": contact_id}).mappings().first()
            profile = dict(found) if found is not None else None
            contact = contact_record(profile, contact_id, {n: r.value for n, r in rows.items()})
            changed = updater.rederive(contact, rows)
            changes = [
                (
                    TraitChange(contact_id, name, rows.get(name, TraitRow()).value, row.value, now),
                    cause,
                )
                for name, row in sorted(changed.items())
            ]
            stored.extend(self._write_traits(session, contact_id, changed, changes, routed_at))
        return stored

    # -- storing events ----------------------------------------------------------------------

    def record_event(self, event: EventRecord) -> bool:
        """Store an event and update the traits it concerns; False (and nothing stored) when
        its (contact, source, message_id) was seen before."""
        return self.store_event(event) is not None

    def store_event(
        self, event: EventRecord, *, create_contact: bool = False
    ) -> StoredEvent | None:
        """`record_event`, telling what it stored: the event's row id and the `trait_changed`
        events it caused (unrouted, with their ids); None for a duplicate. `create_contact`:
        an unknown contact is created in the same transaction (SPEC §7: an event for an
        unknown contact creates it)."""
        with self._sessions.writing() as conn:
            updater = self.trait_updater
            if (
                updater is not None
                and event.message_id is not None
                and updater.concerns(event.name)
                and conn.dialect.name == "postgresql"
            ):
                # One round trip for the contact, the event and its trait rows.
                claimed = trait_rows_sql("postgresql").claim(
                    conn, _event_row(event, None), create_contact=create_contact
                )
                if claimed.event_id is None:
                    return None
                causes = [(event, cause_of(event, claimed.event_id))]
                return StoredEvent(
                    claimed.event_id,
                    self._apply_traits(conn, event.contact_id, causes, None, rows=claimed.rows),
                )
            if create_contact:
                _ensure_contacts(conn, [event.contact_id])
            statements = _statements(conn.dialect.name)
            stmt = statements.event if event.message_id is not None else statements.event_without_id
            event_id = conn.execute(stmt, _event_row(event, None)).scalar()
            if event_id is None:
                return None
            changes = self._apply_traits(
                conn, event.contact_id, [(event, cause_of(event, event_id))], None
            )
            return StoredEvent(event_id, changes)

    def record_history(self, events: Sequence[EventRecord]) -> int:
        """Store a batch of past events in one transaction, as routed (they start and signal
        nothing), creating missing contacts and updating traits; the `trait_changed` events
        they cause are stored as routed too. Every event needs a `message_id`; ones seen
        before are skipped. Returns how many were new."""
        if not events:
            return 0
        if any(event.message_id is None for event in events):
            raise ValueError("record_history needs events with a message_id")
        now = utcnow()
        with self._sessions.write() as session:
            _ensure_contacts(session, (event.contact_id for event in events))
            unique = list({(e.contact_id, e.source, e.message_id): e for e in events}.values())
            # One executemany ("insertmanyvalues": batched multi-row INSERTs with RETURNING):
            # a single `.values([...])` of thousands of rows is compiled afresh each time, at
            # about a millisecond a row.
            new = {
                (row.contact_id, row.source, row.message_id)
                for row in session.connection().execute(
                    insert(session, Event)
                    .on_conflict_do_nothing(index_elements=["contact_id", "source", "message_id"])
                    .returning(Event.contact_id, Event.source, Event.message_id),
                    [_event_row(event, now) for event in unique],
                )
            }
            by_contact: dict[str, list[tuple[EventRecord, str]]] = defaultdict(list)
            for event in unique:
                if (event.contact_id, event.source, event.message_id) in new:
                    by_contact[event.contact_id].append((event, cause_of(event, None)))
            for contact_id, contact_events in by_contact.items():
                self._apply_traits(session, contact_id, contact_events, now)
            return len(new)

    def unrouted_changes(self, cause: EventRecord) -> list[EventRecord]:
        """The `trait_changed` events `cause` left that are not routed yet, oldest first."""
        if cause.message_id is None:
            return []
        return self._unrouted_changes(cause.contact_id, cause_of(cause, None) + ":")

    def unrouted_attribute_changes(self, contact_id: str) -> list[EventRecord]:
        """The contact's `trait_changed` events an identify left that are not routed yet
        (Temporal refused them), oldest first."""
        return self._unrouted_changes(contact_id, ATTRIBUTES_CAUSE + ":")

    def _unrouted_changes(self, contact_id: str, prefix: str) -> list[EventRecord]:
        with self._sessions.read() as session:
            rows = session.scalars(
                select(Event)
                .where(
                    Event.contact_id == contact_id,
                    Event.source == TRAITS_SOURCE,
                    Event.message_id.startswith(prefix, autoescape=True),
                    Event.routed_at.is_(None),
                )
                .order_by(Event.id)
            )
            return [EventRecord.model_validate(columns(row)) for row in rows]

    # -- reading and writing values ------------------------------------------------------------

    def traits_of(self, contact_id: str) -> dict[str, JsonValue]:
        """The contact's traits that have a value, by name."""
        return self.traits_for([contact_id]).get(contact_id, {})

    def traits_for(self, contact_ids: Iterable[str]) -> dict[str, dict[str, JsonValue]]:
        """Traits (with a value) of many contacts at once, by contact id then name."""
        ids = sorted(set(contact_ids))
        found: dict[str, dict[str, JsonValue]] = defaultdict(dict)
        if not ids:
            return found
        with self._sessions.reading() as conn:
            for chunk in range(0, len(ids), 500):
                rows = conn.execute(_TRAITS_OF_MANY, {"ids": ids[chunk : chunk + 500]})
                for contact_id, name, value in rows:
                    found[contact_id][name] = value
        return found

    def set_traits(
        self,
        contact_id: str,
        values: Mapping[str, JsonValue],
        *,
        cause: str,
        at: datetime | None = None,
    ) -> list[TraitChange]:
        """Set trait values outright (a value of None clears it); stores a `trait_changed`
        event (unrouted) per value that changed, its message id made from `cause`."""
        return self.set_traits_many({contact_id: values}, cause=cause, at=at)

    def set_traits_many(
        self,
        values: Mapping[str, Mapping[str, JsonValue]],
        *,
        cause: str,
        at: datetime | None = None,
    ) -> list[TraitChange]:
        """`set_traits` for many contacts (contact id -> name -> value) in one transaction: one
        read of the stored values, one upsert and one insert of the changes, whatever the size."""
        when = at or utcnow()
        if not values:
            return []
        names = sorted({name for named in values.values() for name in named})
        changes: list[tuple[TraitChange, str]] = []
        rows: list[dict[str, Any]] = []
        with self._sessions.write() as session:
            stored = {
                (contact_id, name): value
                for contact_id, name, value in session.execute(
                    select(ContactTrait.contact_id, ContactTrait.name, ContactTrait.value)
                    .where(ContactTrait.contact_id.in_(list(values)), ContactTrait.name.in_(names))
                    .with_for_update()
                )
            }
            for contact_id, named in values.items():
                for name, value in named.items():
                    old = stored.get((contact_id, name))
                    if old == value:
                        continue
                    rows.append(
                        {
                            "contact_id": contact_id,
                            "name": name,
                            "value": value,
                            "value_text": value_text(value),
                            "state": {},
                            "updated_at": when,
                        }
                    )
                    changes.append((TraitChange(contact_id, name, old, value, when), cause))
            if rows:
                stmt = insert(session, ContactTrait)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["contact_id", "name"],
                    set_={
                        "value": stmt.excluded.value,
                        "value_text": stmt.excluded.value_text,
                        "updated_at": stmt.excluded.updated_at,
                    },
                )
                session.connection().execute(stmt, rows)
            self._store_changes(session, changes, None)
        return [change for change, _ in changes]

    def rebuild_aggregates(
        self, queries: Sequence[AggregateQuery], *, cause: str, now: datetime
    ) -> int:
        """Recompute aggregate traits from every stored event, in SQL (store/trait_rebuild.py);
        a `trait_changed` event (unrouted, at `now`) for each value that changed. Returns how
        many changed."""
        if not queries:
            return 0
        with self._sessions.write() as session, tuned_for_rebuild(session):
            return rebuild_aggregates_in_session(
                session, queries, cause, now, self.announced_traits
            )

    def rebuild_derived(
        self,
        name: str,
        reads: Sequence[DerivedRead],
        evaluate: Callable[[tuple[str | None, ...]], str | None],
        *,
        cause: str,
        now: datetime,
    ) -> int:
        """Recompute one derived trait for every contact in SQL, `evaluate` called once per
        distinct combination of its inputs (store/trait_rebuild.py); returns the changes."""
        with self._sessions.write() as session, tuned_for_rebuild(session):
            return rebuild_derived_in_session(
                session, name, reads, evaluate, cause, now, self.announced_traits
            )

    def rebuild_rfm(
        self, order_event: str, revenue_property: str, *, cause: str, now: datetime
    ) -> int:
        """Score every customer by RFM quintile in SQL (store/rfm.py); returns the changes."""
        with self._sessions.write() as session, tuned_for_rebuild(session):
            dialect = session.get_bind().dialect.name
            scored = rfm_scored(dialect, order_event, revenue_property).compile(
                dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
            )
            drop = "ON COMMIT DROP " if dialect == "postgresql" else ""
            conn = session.connection()
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE rfm_scored {drop}AS {scored}")
            analyze(session, "rfm_scored")
            try:
                fills = [(select_, name, None) for select_, name in rfm_selects(dialect)]
                return rebuild_in_session(session, fills, cause, now, self.announced_traits)
            finally:
                if dialect == "sqlite":
                    conn.exec_driver_sql("DROP TABLE rfm_scored")

    def unrouted_trait_changes(self, limit: int = 500) -> list[EventRecord]:
        """`trait_changed` events not routed yet (a rebuild's), oldest first."""
        with self._sessions.read() as session:
            rows = session.scalars(
                select(Event)
                .where(Event.source == TRAITS_SOURCE, Event.routed_at.is_(None))
                .order_by(Event.id)
                .limit(limit)
            )
            return [EventRecord.model_validate(columns(row)) for row in rows]

    def trait_value_counts(self, name: str) -> dict[str, int]:
        """How many contacts have each value of the trait `name` (contacts without it are not
        counted), computed in SQL: e.g. `{"champions": 31, "lost": 22}` for `rfm_segment`.
        Values that are not text are given as JSON (`"42.5"`, `"true"`)."""
        with self._sessions.read() as session:
            rows = session.execute(
                select(ContactTrait.value_text, func.count())
                .where(ContactTrait.name == name, ContactTrait.value_text.is_not(None))
                .group_by(ContactTrait.value_text)
                .order_by(ContactTrait.value_text)
            )
            return {str(value): int(count) for value, count in rows}

    def delete_traits(self, session: Session, contact_id: str) -> int:
        """In the caller's transaction (erasure): the contact's trait rows."""
        return int(
            execute(
                session, delete(ContactTrait).where(ContactTrait.contact_id == contact_id)
            ).rowcount
        )

    def mark_routed(self, events: Iterable[EventRecord]) -> None:
        """Mark stored events routed (by their row id)."""
        self.mark_routed_ids([event.id for event in events if event.id is not None])

    def mark_routed_ids(self, ids: Sequence[int]) -> None:
        """Mark the events with these row ids routed, in one statement."""
        if not ids:
            return
        with self._sessions.writing() as conn:
            conn.execute(_MARK_ROUTED, {"ids": list(ids), "at": utcnow()})
