"""The `Store`'s trait and event-history methods (SPEC §5b), kept apart from the rest of the
repository: storing events with their trait updates (one at a time, or a batch of history in one
transaction), reading and writing trait values, counting contacts per value, and the
`trait_changed` events a change leaves behind.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import JsonValue
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store.models import Contact, ContactTrait, Event
from store.records import ContactRecord, EventRecord
from store.rfm import rfm_scored, rfm_selects
from store.sql import Sessions, columns, execute, insert
from store.trait_rebuild import AggregateQuery, aggregate_select, rebuild_in_session
from store.traits import TRAITS_SOURCE, TraitChange, TraitRow, TraitUpdater, value_text
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
    row: Contact | None, contact_id: str, traits: Mapping[str, Any]
) -> ContactRecord:
    if row is None:
        return ContactRecord(id=contact_id, traits=dict(traits))
    return ContactRecord.model_validate({**columns(row), "traits": dict(traits)})


def _ensure_contacts(session: Session, contact_ids: Iterable[str]) -> None:
    ids = sorted(set(contact_ids))
    if not ids:
        return
    now = utcnow()
    execute(
        session,
        insert(session, Contact)
        .values([{"id": i, "attributes": {}, "created_at": now, "updated_at": now} for i in ids])
        .on_conflict_do_nothing(index_elements=["id"]),
    )


class TraitMethods:
    """Mixed into `Store`; every method is one short transaction."""

    _sessions: Sessions
    trait_updater: TraitUpdater | None = None

    def use_traits(self, updater: TraitUpdater | None) -> None:
        """Keep traits current from now on: every event stored is handed to `updater`."""
        self.trait_updater = updater

    # -- applying traits inside a write transaction ----------------------------------------

    def _apply_traits(
        self,
        session: Session,
        contact_id: str,
        events: Sequence[tuple[EventRecord, str]],
        routed_at: datetime | None,
    ) -> list[TraitChange]:
        """Feed the contact's new events (with their causes) to the updater, write the rows
        that changed and a `trait_changed` event per change; one read of the contact's rows,
        however many events."""
        updater = self.trait_updater
        if updater is None:
            return []
        relevant = [(e, c) for e, c in events if updater.concerns(e.name)]
        if not relevant:
            return []
        stored = {
            row.name: row
            for row in session.scalars(
                select(ContactTrait).where(ContactTrait.contact_id == contact_id).with_for_update()
            )
        }
        rows = {name: TraitRow(row.value, dict(row.state or {})) for name, row in stored.items()}
        contact_row = session.get(Contact, contact_id)
        changes: list[tuple[TraitChange, str]] = []
        written: set[str] = set()
        for event, cause in relevant:
            contact = contact_record(contact_row, contact_id, {n: r.value for n, r in rows.items()})
            for name, row in updater.apply(event, contact, rows).items():
                old = rows.get(name, TraitRow()).value
                rows[name] = row
                written.add(name)
                if old != row.value:
                    change = TraitChange(contact_id, name, old, row.value, event.timestamp)
                    changes.append((change, cause))
        now = utcnow()
        for name in sorted(written):
            row = rows[name]
            existing = stored.get(name)
            if existing is None:
                session.add(
                    ContactTrait(
                        contact_id=contact_id,
                        name=name,
                        value=row.value,
                        value_text=value_text(row.value),
                        state=dict(row.state),
                        updated_at=now,
                    )
                )
            else:
                existing.value = row.value
                existing.value_text = value_text(row.value)
                existing.state = dict(row.state)
                existing.updated_at = now
        self._store_changes(session, [(c, cause) for c, cause in changes], routed_at)
        return [change for change, _ in changes]

    def _store_changes(
        self,
        session: Session,
        changes: Sequence[tuple[TraitChange, str]],
        routed_at: datetime | None,
    ) -> None:
        if not changes:
            return
        session.connection().execute(
            insert(session, Event).on_conflict_do_nothing(
                index_elements=["contact_id", "source", "message_id"]
            ),
            [_event_row(change.event(cause), routed_at) for change, cause in changes],
        )

    # -- storing events ----------------------------------------------------------------------

    def record_event(self, event: EventRecord) -> bool:
        """Store an event and update the traits it concerns; False (and nothing stored) when
        its (contact, source, message_id) was seen before."""
        with self._sessions.write() as session:
            stmt = insert(session, Event).values(**_event_row(event, None))
            if event.message_id is not None:
                stmt = stmt.on_conflict_do_nothing(
                    index_elements=["contact_id", "source", "message_id"]
                )
            event_id = execute(session, stmt.returning(Event.id)).scalar()
            if event_id is None:
                return False
            self._apply_traits(
                session, event.contact_id, [(event, cause_of(event, event_id))], None
            )
            return True

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
        prefix = cause_of(cause, None) + ":"
        with self._sessions.read() as session:
            rows = session.scalars(
                select(Event)
                .where(
                    Event.contact_id == cause.contact_id,
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
        with self._sessions.read() as session:
            for chunk in range(0, len(ids), 500):
                rows = session.execute(
                    select(ContactTrait.contact_id, ContactTrait.name, ContactTrait.value)
                    .where(
                        ContactTrait.contact_id.in_(ids[chunk : chunk + 500]),
                        ContactTrait.value.is_not(None),
                    )
                    .order_by(ContactTrait.contact_id, ContactTrait.name)
                )
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
        with self._sessions.write() as session:
            dialect = session.get_bind().dialect.name
            fills = [(aggregate_select(dialect, q), q.name, q.empty) for q in queries]
            return rebuild_in_session(session, fills, cause, now)

    def rebuild_rfm(
        self, order_event: str, revenue_property: str, *, cause: str, now: datetime
    ) -> int:
        """Score every customer by RFM quintile in SQL (store/rfm.py); returns the changes."""
        with self._sessions.write() as session:
            dialect = session.get_bind().dialect.name
            scored = rfm_scored(dialect, order_event, revenue_property).compile(
                dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
            )
            drop = "ON COMMIT DROP " if dialect == "postgresql" else ""
            conn = session.connection()
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE rfm_scored {drop}AS {scored}")
            try:
                fills = [(select_, name, None) for select_, name in rfm_selects(dialect)]
                return rebuild_in_session(session, fills, cause, now)
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
        ids = [event.id for event in events if event.id is not None]
        if not ids:
            return
        with self._sessions.write() as session:
            execute(session, update(Event).where(Event.id.in_(ids)).values(routed_at=utcnow()))
