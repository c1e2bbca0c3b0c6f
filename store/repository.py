"""`Store`: contacts, events, consent, suppressions and runs (SPEC §5).

Every method is synchronous and one short transaction (Temporal activities call them from
threads), takes and returns the frozen records of `store.records`, and is safe to retry:
inserts that may race use the database's INSERT … ON CONFLICT.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    Select,
    bindparam,
    case,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from store.db import make_engine, migrate
from store.experiments import Experiments
from store.json_sql import json_string
from store.ledger import MessageLedger
from store.models import (
    Consent,
    Contact,
    ContactTrait,
    Event,
    JourneyState,
    Message,
    ProviderEvent,
    Run,
    RunStep,
    Suppression,
)
from store.plans import PlanStore
from store.records import (
    ConsentRecord,
    ContactRecord,
    ErasureResult,
    EventRecord,
    RunRecord,
    RunStepRecord,
)
from store.sql import (
    Sessions,
    address_hash,
    check_choice,
    columns,
    dialect_insert,
    execute,
    insert,
    inserted,
    table,
)
from store.trait_store import TraitMethods
from store.types import as_utc, utcnow
from store.vocab import (
    CHANNELS,
    CONSENT_STATUSES,
    RUN_STATUSES,
    SUPPRESSION_REASONS,
    Channel,
    ConsentStatus,
    RunStatus,
    SuppressionReason,
)


def _merge_contact(earlier: ContactRecord | None, later: ContactRecord) -> ContactRecord:
    """`later` applied over `earlier`: given fields win, attributes merge key by key."""
    if earlier is None:
        return later
    fields = ("email", "phone", "timezone", "locale", "created_at")
    return earlier.model_copy(
        update={
            **{f: getattr(later, f) for f in fields if getattr(later, f) is not None},
            "attributes": {**earlier.attributes, **later.attributes},
        }
    )


def _contact(row: Contact, traits: dict[str, Any] | None = None) -> ContactRecord:
    return ContactRecord.model_validate({**columns(row), "traits": traits or {}})


# Statements of the per-event paths (ingest, routing, a run's activities), built once with bound
# parameters and run on a bare connection: building a statement, generating its cache key and
# loading ORM objects cost more CPU than running a short indexed statement.
_CONTACTS = table(Contact)
_TRAITS = table(ContactTrait)
_EVENTS = table(Event)
_RUNS = table(Run)
_SUPPRESSIONS = table(Suppression)
_CONSENTS = table(Consent)
_CONTACT_BY_ID = select(_CONTACTS).where(_CONTACTS.c.id == bindparam("id"))
_CONTACT_EXISTS = select(_CONTACTS.c.id).where(_CONTACTS.c.id == bindparam("id"))
_TRAITS_OF = (
    select(_TRAITS.c.name, _TRAITS.c.value)
    .where(_TRAITS.c.contact_id == bindparam("id"), _TRAITS.c.value.is_not(None))
    .order_by(_TRAITS.c.name)
)
_PAUSED = select(table(JourneyState).c.journey).where(table(JourneyState).c.paused.is_(True))
_RUNS_NEWEST_FIRST = (_RUNS.c.entered_at.desc(), _RUNS.c.id.desc())
_RUNS_OF_CONTACT = (
    select(_RUNS).where(_RUNS.c.contact_id == bindparam("contact_id")).order_by(*_RUNS_NEWEST_FIRST)
)
_RUNS_OF_CONTACT_IN = _RUNS_OF_CONTACT.where(_RUNS.c.journey == bindparam("journey"))
_RUN_BY_IDS = select(_RUNS).where(
    _RUNS.c.workflow_id == bindparam("workflow_id"), _RUNS.c.run_id == bindparam("run_id")
)
_RUN_KEY = select(_RUNS.c.id).where(
    _RUNS.c.workflow_id == bindparam("workflow_id"), _RUNS.c.run_id == bindparam("run_id")
)
_LATEST_RUN = (
    select(_RUNS)
    .where(_RUNS.c.workflow_id == bindparam("workflow_id"))
    .order_by(_RUNS.c.id.desc())
    .limit(1)
)
_LATEST_RUN_WITH_ID = _LATEST_RUN.where(_RUNS.c.run_id == bindparam("run_id"))
_END_RUNS = (
    update(_RUNS)
    .where(_RUNS.c.workflow_id == bindparam("w_id"), _RUNS.c.ended_at.is_(None))
    .values(
        status=bindparam("new_status"), outcome=bindparam("new_outcome"), ended_at=bindparam("at")
    )
)
_END_RUN = _END_RUNS.where(_RUNS.c.run_id == bindparam("r_id"))
_UPDATE_RUN = update(_RUNS).where(_RUNS.c.id == bindparam("row_id"))
_SUPPRESSION_REASON = (
    select(_SUPPRESSIONS.c.reason)
    .where(
        _SUPPRESSIONS.c.channel == bindparam("channel"),
        _SUPPRESSIONS.c.address_hash == bindparam("hash"),
    )
    .order_by(_SUPPRESSIONS.c.created_at, _SUPPRESSIONS.c.id)
    .limit(1)
)
_CONSENTS_OF = select(_CONSENTS.c.topic, _CONSENTS.c.status).where(
    _CONSENTS.c.contact_id == bindparam("contact_id"), _CONSENTS.c.channel == bindparam("channel")
)


@cache
def _event_counts(many: bool, since: bool, until: bool) -> Select[Any]:
    """Per contact, how many events of a name (in a window): for one contact or for many."""
    contact = (
        _EVENTS.c.contact_id.in_(bindparam("ids", expanding=True))
        if many
        else _EVENTS.c.contact_id == bindparam("id")
    )
    stmt = (
        select(_EVENTS.c.contact_id, func.count())
        .where(contact, _EVENTS.c.name == bindparam("name"))
        .group_by(_EVENTS.c.contact_id)
    )
    if since:
        stmt = stmt.where(_EVENTS.c.timestamp >= bindparam("since"))
    if until:
        stmt = stmt.where(_EVENTS.c.timestamp <= bindparam("until"))
    return stmt


@cache
def _latest_events(until: bool) -> Select[Any]:
    """Per contact, the newest event of a name (at or before `until`): the first by
    (timestamp, id) descending of each contact's rows on the index."""
    rank = (
        func.row_number()
        .over(
            partition_by=_EVENTS.c.contact_id,
            order_by=(_EVENTS.c.timestamp.desc(), _EVENTS.c.id.desc()),
        )
        .label("rank")
    )
    inner = select(_EVENTS, rank).where(
        _EVENTS.c.contact_id.in_(bindparam("ids", expanding=True)),
        _EVENTS.c.name == bindparam("name"),
    )
    if until:
        inner = inner.where(_EVENTS.c.timestamp <= bindparam("until"))
    ranked = inner.subquery()
    return select(*(ranked.c[column.name] for column in _EVENTS.columns)).where(ranked.c.rank == 1)


@cache
def _record_run_statement(dialect: str) -> Executable:
    """`INSERT … ON CONFLICT (workflow_id, run_id) DO NOTHING`, its columns its parameters'."""
    return dialect_insert(dialect, Run).on_conflict_do_nothing(
        index_elements=["workflow_id", "run_id"]
    )


@cache
def _record_steps_statement(dialect: str) -> Executable:
    """The upsert of a run's steps: a step keeps its first reach and raises its `last_seq`."""
    stmt = dialect_insert(dialect, RunStep)
    steps = table(RunStep)
    later = stmt.excluded.last_seq > steps.c.last_seq
    return stmt.on_conflict_do_update(
        index_elements=["run_key", "step_id"],
        set_={
            "last_seq": case((later, stmt.excluded.last_seq), else_=steps.c.last_seq),
            "variant": func.coalesce(stmt.excluded.variant, steps.c.variant),
        },
    )


def _contact_of(row: Mapping[Any, Any], traits: dict[str, Any]) -> ContactRecord:
    return ContactRecord.model_validate({**row, "traits": traits})


def _run_of(row: Mapping[Any, Any]) -> RunRecord:
    return RunRecord.model_validate(dict(row))


def _event(row: Event) -> EventRecord:
    return EventRecord.model_validate(columns(row))


def _run(row: Run) -> RunRecord:
    return RunRecord.model_validate(columns(row))


def _consent(row: Consent) -> ConsentRecord:
    values = columns(row)
    values.pop("id")
    return ConsentRecord.model_validate(values)


class Store(TraitMethods):
    """The durable data layer. Open with `Store.open(url)` (migrates first) or wrap an engine
    of an already migrated database with `Store(engine)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = Sessions(engine)
        self.ledger = MessageLedger(engine)
        self.plans = PlanStore(engine)
        self.experiments = Experiments(engine)

    @classmethod
    def open(cls, url: str | URL | None = None, *, migrate_schema: bool = True) -> Store:
        """A store on `url` (default: the project settings' database), migrated to head."""
        if url is None:
            from settings import get_settings

            url = get_settings().database
        engine = make_engine(url)
        if migrate_schema:
            migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def one_connection(self) -> AbstractContextManager[None]:
        """In the block, this thread's store calls (the ledger's, plans' and experiments' too)
        share one connection, checked out once: reads share a transaction; each write is its
        own transaction, committed as the call returns, exactly as outside the block."""
        return self._sessions.shared()

    def one_transaction(self) -> AbstractContextManager[None]:
        """In the block, this thread's store calls are one write transaction on one connection
        (SQLite: the write lock taken at its start), committed when the block ends, rolled back
        if it fails: for writes that may as well land together (a run's progress)."""
        return self._sessions.one_write()

    def checkpoint(self, attempts: int = 20) -> bool:
        """SQLite: fold the write-ahead log into the database file and truncate it, so rows
        just erased leave no older copy there (with `secure_delete` the file keeps none either).
        Retried while a reader holds the log; False if it never got through. PostgreSQL: True,
        nothing to do here (VACUUM reclaims dead rows; see docs/compliance.md)."""
        if self.engine.dialect.name != "sqlite":
            return True
        for _attempt in range(attempts):
            connection = self.engine.raw_connection()  # outside any transaction, as it must be
            try:
                cursor = connection.cursor()
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy = cursor.fetchone()
                cursor.close()
            finally:
                connection.close()
            if busy is None or not busy[0]:
                return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- contacts ---------------------------------------------------------------------------

    def _upsert(
        self, session: Session, records: list[ContactRecord], now: datetime
    ) -> list[Contact]:
        """Upsert a batch in a fixed number of statements: one multi-row INSERT … ON CONFLICT
        DO NOTHING, one SELECT … FOR UPDATE of the rows, then the ORM's batched UPDATEs.
        Several records for one id are merged in order first, as one after the other would."""
        merged: dict[str, ContactRecord] = {}
        for record in records:
            merged[record.id] = _merge_contact(merged.get(record.id), record)
        ids = list(merged)
        execute(
            session,
            insert(session, Contact)
            .values(
                [
                    {
                        "id": contact_id,
                        "attributes": {},
                        "created_at": merged[contact_id].created_at or now,
                        "updated_at": now,
                    }
                    for contact_id in ids
                ]
            )
            .on_conflict_do_nothing(index_elements=["id"]),
        )
        rows = {
            row.id: row
            for row in session.scalars(
                select(Contact)
                .where(Contact.id.in_(ids))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        }
        for contact_id, record in merged.items():
            row = rows[contact_id]
            for field in ("email", "phone", "timezone", "locale"):
                value = getattr(record, field)
                if value is not None:
                    setattr(row, field, value)
            if record.attributes:
                row.attributes = {**(row.attributes or {}), **record.attributes}
            row.updated_at = now
        session.flush()
        return [rows[contact_id] for contact_id in ids]

    def upsert_contact(self, record: ContactRecord) -> ContactRecord:
        """Create or update a contact: fields given replace the stored ones, fields left `None`
        are kept, and `attributes` are merged into the stored attributes (given keys win).
        Derived traits that read them are recomputed in the same transaction; the
        `trait_changed` events that leaves are stored as routed (they start nothing: see
        `identify`)."""
        with self._sessions.write() as session:
            now = utcnow()
            row = self._upsert(session, [record], now)[0]
            self._rederive(session, [record.id], routed_at=now)
            return _contact(row)

    def identify(self, record: ContactRecord) -> tuple[ContactRecord, list[EventRecord]]:
        """`upsert_contact` for the API's identify: the `trait_changed` events the attribute
        change caused are returned unrouted, for the caller to route like an event's."""
        with self._sessions.write() as session:
            row = self._upsert(session, [record], utcnow())[0]
            return _contact(row), self._rederive(session, [record.id], routed_at=None)

    def upsert_contacts(self, records: Iterable[ContactRecord], batch_size: int = 500) -> int:
        """`upsert_contact` for many, `batch_size` per transaction; returns how many."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        count = 0
        batch: list[ContactRecord] = []

        def flush() -> None:
            with self._sessions.write() as session:
                now = utcnow()
                self._upsert(session, batch, now)
                self._rederive(session, sorted({r.id for r in batch}), routed_at=now)
            batch.clear()

        for record in records:
            batch.append(record)
            count += 1
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        return count

    def get_contact(self, contact_id: str) -> ContactRecord | None:
        """The contact with its traits, or None (two statements, one transaction)."""
        with self._sessions.reading() as conn:
            row = conn.execute(_CONTACT_BY_ID, {"id": contact_id}).mappings().first()
            if row is None:
                return None
            traits = {name: value for name, value in conn.execute(_TRAITS_OF, {"id": contact_id})}
        return _contact_of(row, traits)

    def contact_exists(self, contact_id: str) -> bool:
        """Whether the store has the contact (one indexed read, no traits)."""
        with self._sessions.reading() as conn:
            return conn.execute(_CONTACT_EXISTS, {"id": contact_id}).first() is not None

    def contacts_by_address(self, channel: Channel, address: str) -> list[ContactRecord]:
        """Contacts whose email (channel `email`) or phone (`sms`) is exactly `address`."""
        check_choice("channel", channel, CHANNELS)
        column = Contact.email if channel == "email" else Contact.phone
        with self._sessions.read() as session:
            rows = list(
                session.scalars(
                    select(Contact).where(column == address.strip()).order_by(Contact.id)
                )
            )
        traits = self.traits_for(row.id for row in rows)
        return [_contact(row, traits.get(row.id)) for row in rows]

    def iter_contact_pages(self, page_size: int = 500) -> Iterator[list[ContactRecord]]:
        """All contacts in id order, one page (a short read of at most `page_size` rows) at a
        time, by keyset pagination: memory stays bounded however many contacts there are."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        after: str | None = None
        while True:
            page = self.contacts_after(after, page_size)
            if not page:
                return
            yield page
            if len(page) < page_size:
                return
            after = page[-1].id

    def contacts_after(
        self,
        after: str | None,
        limit: int,
        *,
        month_day: tuple[str, Collection[str]] | None = None,
        timezones: Collection[str | None] | None = None,
    ) -> list[ContactRecord]:
        """At most `limit` contacts in id order, after the id `after` (keyset pagination).

        `month_day=(name, ["03-14", …])`: only contacts whose attribute or trait `name` is ISO
        text of a date or timestamp on one of those days (a date trigger's tick). `timezones`:
        only contacts with one of those zones (None in it: or no zone), a local-time tick's."""
        stmt = select(Contact).order_by(Contact.id).limit(limit)
        if after is not None:
            stmt = stmt.where(Contact.id > after)
        if month_day is not None:
            stmt = stmt.where(self._month_day_in(*month_day))
        if timezones is not None:
            named = [zone for zone in timezones if zone is not None]
            zone_matches: Any = Contact.timezone.in_(named)
            if None in timezones:
                zone_matches = zone_matches | Contact.timezone.is_(None)
            stmt = stmt.where(zone_matches)
        with self._sessions.read() as session:
            rows = list(session.scalars(stmt))
        traits = self.traits_for(row.id for row in rows)
        return [_contact(row, traits.get(row.id)) for row in rows]

    def _month_day_in(self, name: str, days: Collection[str]) -> Any:
        """SQL: the attribute or trait `name` falls on one of `days` (`MM-DD`): characters 6 to 10
        of ISO text. One filter on both backends; a trait wins over an attribute in
        `contact.*`, and the caller checks the exact date in Python anyway."""
        attribute = json_string(self.engine.dialect.name, Contact.attributes, name)
        trait = (
            select(ContactTrait.contact_id)
            .where(ContactTrait.name == name)
            .where(func.substr(ContactTrait.value_text, 6, 5).in_(list(days)))
        )
        return func.substr(attribute, 6, 5).in_(list(days)) | Contact.id.in_(trait)

    def contact_timezones(self) -> list[str | None]:
        """The distinct zones contacts have (None: some have none)."""
        with self._sessions.read() as session:
            return list(session.scalars(select(Contact.timezone).distinct()))

    def iter_contacts(self, page_size: int = 500) -> Iterator[ContactRecord]:
        """All contacts in id order, fetched `page_size` at a time (see `iter_contact_pages`)."""
        for page in self.iter_contact_pages(page_size):
            yield from page

    def delete_contact(self, contact_id: str) -> ErasureResult:
        """Erase a contact (GDPR): the profile, events and consent are deleted; the contact's
        ledger rows keep their status and counts but lose subject, body, recipient and error;
        runs keep their outcome but lose their data; and every address the contact had (profile
        and ledger recipients) is suppressed by hash alone, with reason `erased`, while existing
        suppressions of those addresses drop the address and keep the hash."""
        now = utcnow()
        with self._sessions.write() as session:
            row = session.get(Contact, contact_id, with_for_update=True)
            addresses: set[tuple[str, str]] = set()
            if row is not None:
                if row.email:
                    addresses.add(("email", row.email))
                if row.phone:
                    addresses.add(("sms", row.phone))
            recipients = session.execute(
                select(Message.channel, Message.recipient)
                .where(Message.contact_id == contact_id, Message.recipient.is_not(None))
                .distinct()
            )
            for channel, recipient in recipients:
                if recipient:
                    addresses.add((channel, recipient))

            events = execute(session, delete(Event).where(Event.contact_id == contact_id))
            self.delete_traits(session, contact_id)
            consents = execute(session, delete(Consent).where(Consent.contact_id == contact_id))
            execute(session, delete(ContactTrait).where(ContactTrait.contact_id == contact_id))
            messages = execute(
                session,
                update(Message)
                .where(Message.contact_id == contact_id)
                .values(subject=None, body=None, recipient=None, error=None, updated_at=now),
            )
            runs = execute(session, update(Run).where(Run.contact_id == contact_id).values(data={}))
            hashes = {(channel, address_hash(channel, address)) for channel, address in addresses}
            for channel, digest in sorted(hashes):
                execute(
                    session,
                    insert(session, Suppression)
                    .values(
                        channel=channel,
                        address=None,
                        address_hash=digest,
                        reason="erased",
                        created_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["channel", "address_hash", "reason"]),
                )
                execute(
                    session,
                    update(Suppression)
                    .where(Suppression.channel == channel, Suppression.address_hash == digest)
                    .values(address=None),
                )
            if row is not None:
                session.delete(row)
            return ErasureResult(
                contact_id=contact_id,
                profile_deleted=row is not None,
                events_deleted=events.rowcount,
                consents_deleted=consents.rowcount,
                messages_redacted=messages.rowcount,
                runs_redacted=runs.rowcount,
                addresses_suppressed=len(hashes),
            )

    # -- events -----------------------------------------------------------------------------

    def event_routed(self, contact_id: str, source: str, message_id: str) -> bool | None:
        """Whether the stored event was routed (None: no such event)."""
        with self._sessions.read() as session:
            row = session.scalars(
                select(Event).where(
                    Event.contact_id == contact_id,
                    Event.source == source,
                    Event.message_id == message_id,
                )
            ).first()
            return None if row is None else row.routed_at is not None

    def mark_event_routed(
        self,
        contact_id: str,
        source: str,
        message_id: str,
        *,
        with_events: Iterable[EventRecord] = (),
    ) -> None:
        """Mark the event routed, and `with_events` (the trait_changed events it caused, by
        row id) in the same transaction."""
        ids = [event.id for event in with_events if event.id is not None]
        with self._sessions.write() as session:
            if ids:
                session.execute(update(Event).where(Event.id.in_(ids)).values(routed_at=utcnow()))
            session.execute(
                update(Event)
                .where(
                    Event.contact_id == contact_id,
                    Event.source == source,
                    Event.message_id == message_id,
                )
                .values(routed_at=utcnow())
            )

    def provider_event_applied(self, source: str, event_id: str) -> bool:
        """Whether this provider callback (by the provider's id) was applied and routed."""
        with self._sessions.read() as session:
            return session.get(ProviderEvent, (source, event_id)) is not None

    def mark_provider_events_applied(self, source: str, event_ids: Iterable[str]) -> None:
        """Remember provider callbacks as applied: seen again, they change nothing."""
        ids = sorted(set(event_ids))
        if not ids:
            return
        now = utcnow()
        with self._sessions.write() as session:
            execute(
                session,
                insert(session, ProviderEvent)
                .values([{"source": source, "event_id": i, "applied_at": now} for i in ids])
                .on_conflict_do_nothing(index_elements=["source", "event_id"]),
            )

    # -- journeys ---------------------------------------------------------------------------

    def set_journey_paused(self, journey: str, paused: bool) -> None:
        with self._sessions.write() as session:
            row = session.get(JourneyState, journey)
            if row is None:
                session.add(JourneyState(journey=journey, paused=paused, updated_at=utcnow()))
            else:
                row.paused = paused
                row.updated_at = utcnow()

    def paused_journeys(self) -> set[str]:
        with self._sessions.reading() as conn:
            return set(conn.scalars(_PAUSED))

    def count_events(self, contact_id: str, name: str, since: datetime | None = None) -> int:
        """How many `name` events the contact has, with timestamp at or after `since`."""
        return self.event_counts([contact_id], name, since=since).get(contact_id, 0)

    def last_event(self, contact_id: str, name: str) -> EventRecord | None:
        """The contact's latest `name` event by timestamp."""
        return self.latest_events([contact_id], name).get(contact_id)

    def event_counts(
        self,
        contact_ids: Sequence[str],
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, int]:
        """Per contact, how many `name` events have a timestamp in [since, until]; contacts
        without any are left out. One grouped query on the (contact, name, timestamp) index."""
        if not contact_ids:
            return {}
        many = len(contact_ids) > 1
        stmt = _event_counts(many, since is not None, until is not None)
        params: dict[str, Any] = {"name": name, "since": since, "until": until}
        if many:
            params["ids"] = list(contact_ids)
        else:
            params["id"] = contact_ids[0]
        with self._sessions.reading() as conn:
            return {contact_id: int(count) for contact_id, count in conn.execute(stmt, params)}

    def latest_events(
        self, contact_ids: Sequence[str], name: str, *, until: datetime | None = None
    ) -> dict[str, EventRecord]:
        """Per contact, the latest `name` event with a timestamp at or before `until` (ties:
        the later arrival). One query: the newest row of each contact on the index."""
        if not contact_ids:
            return {}
        params = {"ids": list(contact_ids), "name": name, "until": until}
        with self._sessions.reading() as conn:
            rows = conn.execute(_latest_events(until is not None), params).mappings()
            return {row["contact_id"]: EventRecord.model_validate(dict(row)) for row in rows}

    def events_in_window(
        self,
        contact_id: str,
        names: Collection[str],
        *,
        since: datetime,
        until: datetime,
        limit: int,
    ) -> list[EventRecord]:
        """The contact's events of those names with a timestamp in [since, until], oldest
        first (ties: the earlier arrival), at most `limit`: on the (contact, name, timestamp)
        index."""
        if not names:
            return []
        stmt = (
            select(Event)
            .where(
                Event.contact_id == contact_id,
                Event.name.in_(sorted(names)),
                Event.timestamp >= as_utc(since),
                Event.timestamp <= as_utc(until),
            )
            .order_by(Event.timestamp, Event.id)
            .limit(limit)
        )
        with self._sessions.read() as session:
            return [_event(row) for row in session.scalars(stmt)]

    def recent_events(self, contact_id: str, limit: int = 50) -> list[EventRecord]:
        """The contact's latest events of any name, newest first."""
        with self._sessions.read() as session:
            rows = session.scalars(
                select(Event)
                .where(Event.contact_id == contact_id)
                .order_by(Event.timestamp.desc(), Event.id.desc())
                .limit(limit)
            )
            return [_event(row) for row in rows]

    # -- consent and suppressions -----------------------------------------------------------

    def set_consent(
        self,
        contact_id: str,
        channel: Channel,
        status: ConsentStatus,
        source: str,
        *,
        topic: str | None = None,
        at: datetime | None = None,
    ) -> ConsentRecord:
        """Record marketing consent for a channel (or one topic of it). With `at`, a change
        older than the stored one is ignored, so late deliveries cannot undo a newer choice."""
        check_choice("channel", channel, CHANNELS)
        check_choice("status", status, CONSENT_STATUSES)
        if not source:
            raise ValueError("source must not be empty")
        when = as_utc(at) if at is not None else utcnow()
        with self._sessions.write() as session:
            stmt = insert(session, Consent).values(
                contact_id=contact_id,
                channel=channel,
                topic=topic,
                status=status,
                source=source,
                updated_at=when,
            )
            changes = {
                "status": stmt.excluded.status,
                "source": stmt.excluded.source,
                "updated_at": stmt.excluded.updated_at,
            }
            # Only an explicit `at` can be older than what is stored.
            newer = Consent.updated_at <= stmt.excluded.updated_at if at else None
            if topic is None:
                stmt = stmt.on_conflict_do_update(
                    index_elements=["contact_id", "channel"],
                    index_where=text("topic IS NULL"),
                    set_=changes,
                    where=newer,
                )
            else:
                stmt = stmt.on_conflict_do_update(
                    index_elements=["contact_id", "channel", "topic"], set_=changes, where=newer
                )
            execute(session, stmt)
            topic_match = Consent.topic.is_(None) if topic is None else Consent.topic == topic
            row = session.scalars(
                select(Consent).where(
                    Consent.contact_id == contact_id, Consent.channel == channel, topic_match
                )
            ).one()
            return _consent(row)

    def consent(self, contact_id: str, channel: Channel, topic: str | None = None) -> ConsentStatus:
        """The contact's marketing consent on `channel` (`subscribed` when never set). With a
        topic, an unsubscribe from the whole channel still wins over the topic's own status."""
        check_choice("channel", channel, CHANNELS)
        with self._sessions.reading() as conn:
            params = {"contact_id": contact_id, "channel": channel}
            by_topic = {topic: status for topic, status in conn.execute(_CONSENTS_OF, params)}
        channel_wide = by_topic.get(None)
        if channel_wide == "unsubscribed":
            return "unsubscribed"
        status = by_topic.get(topic) if topic is not None else None
        status = status or channel_wide or "subscribed"
        return "unsubscribed" if status == "unsubscribed" else "subscribed"

    def consents_for_contact(self, contact_id: str) -> list[ConsentRecord]:
        with self._sessions.read() as session:
            rows = session.scalars(
                select(Consent)
                .where(Consent.contact_id == contact_id)
                .order_by(Consent.channel, Consent.topic.asc().nulls_first(), Consent.id)
            )
            return [_consent(row) for row in rows]

    def suppress(self, channel: Channel, address: str, reason: SuppressionReason) -> bool:
        """Suppress an address (stored as given, matched by hash); False if it already was
        suppressed for that reason."""
        check_choice("channel", channel, CHANNELS)
        check_choice("reason", reason, SUPPRESSION_REASONS)
        if not address.strip():
            raise ValueError("address must not be empty")
        with self._sessions.write() as session:
            stmt = (
                insert(session, Suppression)
                .values(
                    channel=channel,
                    address=address,
                    address_hash=address_hash(channel, address),
                    reason=reason,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["channel", "address_hash", "reason"])
            )
            return inserted(session, stmt)

    def is_suppressed(self, channel: Channel, address: str) -> SuppressionReason | None:
        """The reason `address` is suppressed on `channel` (the oldest, if several), or None.
        Matched by hash, so entries whose address was erased still count."""
        check_choice("channel", channel, CHANNELS)
        params = {"channel": channel, "hash": address_hash(channel, address)}
        with self._sessions.reading() as conn:
            reason = conn.scalars(_SUPPRESSION_REASON, params).first()
        return reason

    def unsuppress(
        self, channel: Channel, address: str, reason: SuppressionReason | None = None
    ) -> int:
        """Lift suppressions of `address` (e.g. an SMS START after STOP): those with `reason`,
        or all but `erased` ones when no reason is given. Returns how many were lifted."""
        check_choice("channel", channel, CHANNELS)
        stmt = delete(Suppression).where(
            Suppression.channel == channel,
            Suppression.address_hash == address_hash(channel, address),
        )
        if reason is None:
            stmt = stmt.where(Suppression.reason != "erased")
        else:
            check_choice("reason", reason, SUPPRESSION_REASONS)
            stmt = stmt.where(Suppression.reason == reason)
        with self._sessions.write() as session:
            return int(execute(session, stmt).rowcount)

    # -- runs -------------------------------------------------------------------------------

    def record_run(self, run: RunRecord) -> RunRecord:
        """Record a run's entry; recording the same (workflow_id, run_id) again returns the
        stored run unchanged."""
        with self._sessions.writing() as conn:
            conn.execute(
                _record_run_statement(conn.dialect.name),
                {
                    "workflow_id": run.workflow_id,
                    "run_id": run.run_id,
                    "contact_id": run.contact_id,
                    "journey": run.journey,
                    "version": run.version,
                    "status": run.status,
                    "entered_at": run.entered_at,
                    "ended_at": run.ended_at,
                    "outcome": run.outcome,
                    "variant": run.variant,
                    "holdout": run.holdout,
                    "data": run.data,
                },
            )
            ids = {"workflow_id": run.workflow_id, "run_id": run.run_id}
            return _run_of(conn.execute(_RUN_BY_IDS, ids).mappings().one())

    @staticmethod
    def _latest_run(
        conn: Connection, workflow_id: str, run_id: str | None
    ) -> Mapping[Any, Any] | None:
        if run_id is None:
            return conn.execute(_LATEST_RUN, {"workflow_id": workflow_id}).mappings().first()
        params = {"workflow_id": workflow_id, "run_id": run_id}
        return conn.execute(_LATEST_RUN_WITH_ID, params).mappings().first()

    def end_run(
        self,
        workflow_id: str,
        *,
        outcome: str | None = None,
        status: RunStatus = "completed",
        run_id: str | None = None,
        ended_at: datetime | None = None,
    ) -> RunRecord | None:
        """End the workflow's open run(s) (or the one `run_id`) with a status and outcome. An
        already ended run keeps its first ending. Returns the latest matching run."""
        check_choice("status", status, RUN_STATUSES)
        if status == "running":
            raise ValueError("status of an ended run cannot be 'running'")
        params = {
            "w_id": workflow_id,
            "r_id": run_id,
            "new_status": status,
            "new_outcome": outcome,
            "at": ended_at if ended_at is not None else utcnow(),
        }
        with self._sessions.writing() as conn:
            conn.execute(_END_RUNS if run_id is None else _END_RUN, params)
            row = self._latest_run(conn, workflow_id, run_id)
            return _run_of(row) if row is not None else None

    def update_run(
        self,
        workflow_id: str,
        *,
        run_id: str | None = None,
        variant: str | None = None,
        holdout: bool | None = None,
        data: dict[str, Any] | None = None,
    ) -> RunRecord | None:
        """Set a run's split variant, holdout flag or data (fields left `None` are kept)."""
        changes: dict[str, Any] = {}
        if variant is not None:
            changes["variant"] = variant
        if holdout is not None:
            changes["holdout"] = holdout
        if data is not None:
            changes["data"] = dict(data)
        with self._sessions.writing() as conn:
            row = self._latest_run(conn, workflow_id, run_id)
            if row is None:
                return None
            if changes:
                conn.execute(_UPDATE_RUN, {"row_id": row["id"], **changes})
            return _run_of({**row, **changes})

    def get_run(self, workflow_id: str, run_id: str | None = None) -> RunRecord | None:
        with self._sessions.reading() as conn:
            row = self._latest_run(conn, workflow_id, run_id)
            return _run_of(row) if row is not None else None

    def list_runs(
        self,
        journey: str | None = None,
        status: RunStatus | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs, newest entry first, optionally of one journey and/or in one status."""
        stmt = select(Run)
        if journey is not None:
            stmt = stmt.where(Run.journey == journey)
        if status is not None:
            stmt = stmt.where(Run.status == status)
        stmt = stmt.order_by(Run.entered_at.desc(), Run.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._sessions.read() as session:
            return [_run(row) for row in session.scalars(stmt)]

    def runs_of_contacts(
        self, journey: str, contact_ids: Collection[str]
    ) -> dict[str, list[RunRecord]]:
        """Each contact's runs of `journey`, in one query."""
        found: dict[str, list[RunRecord]] = defaultdict(list)
        if not contact_ids:
            return found
        stmt = select(Run).where(Run.journey == journey, Run.contact_id.in_(list(contact_ids)))
        with self._sessions.read() as session:
            for row in session.scalars(stmt):
                found[row.contact_id].append(_run(row))
        return found

    def runs_for_contact(self, contact_id: str, journey: str | None = None) -> list[RunRecord]:
        """The contact's runs (of one journey, if given), newest entry first."""
        stmt = _RUNS_OF_CONTACT if journey is None else _RUNS_OF_CONTACT_IN
        with self._sessions.reading() as conn:
            rows = conn.execute(stmt, {"contact_id": contact_id, "journey": journey}).mappings()
            return [_run_of(row) for row in rows]

    def record_run_steps(
        self, workflow_id: str, run_id: str, steps: Iterable[RunStepRecord]
    ) -> None:
        """Record steps a run reached: one row per step, keeping its first reach and raising
        its `last_seq`. Safe to repeat (a retried activity records the same values)."""
        merged: dict[str, dict[str, Any]] = {}
        for step in steps:
            row = merged.get(step.step_id)
            if row is None:
                merged[step.step_id] = {
                    "step_id": step.step_id,
                    "kind": step.kind,
                    "variant": step.variant,
                    "first_reached_at": step.reached_at,
                    "first_seq": step.seq,
                    "last_seq": step.seq,
                }
                continue
            row["first_seq"] = min(row["first_seq"], step.seq)
            row["first_reached_at"] = min(row["first_reached_at"], step.reached_at)
            row["last_seq"] = max(row["last_seq"], step.seq)
            row["variant"] = step.variant or row["variant"]
        if not merged:
            return
        with self._sessions.writing() as conn:
            ids = {"workflow_id": workflow_id, "run_id": run_id}
            run_key = conn.execute(_RUN_KEY, ids).scalar()
            if run_key is None:  # recorded before its steps, always: a bug if not
                raise LookupError(f"no run {workflow_id!r} / {run_id!r} to record steps of")
            rows = [{"run_key": run_key, **row} for row in merged.values()]
            # One statement built once, run for each step (a multi-row VALUES is compiled anew
            # for every call).
            conn.execute(_record_steps_statement(conn.dialect.name), rows)
