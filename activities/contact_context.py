"""What an expression sees of a contact, read from the store: the one loader for runs, the send
activity, `rapport preview` and `simulate`, the router and segment ticks.

`contact.*` is the flattened profile; `count_events`/`last_event` are answered by indexed queries,
one per question for any number of contacts (a segment page asks them all at once), and only the
answers travel — never the contact's raw events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from store import Store
from store.models import Base
from store.records import ContactRecord, EventRecord
from store.traits import TraitUpdater
from workflows.contracts import ContactSnapshot, EventPayload
from workflows.durations import parse_duration
from workflows.event_questions import EventAnswers, EventQuestion, LatestEvent, sorted_questions


def event_payload(event: EventRecord) -> EventPayload:
    """A stored event as runs see it; its `id` (the source's message id) is what a run
    de-duplicates on, whether the event came as a signal or from the store."""
    return EventPayload(
        id=event.message_id or f"{event.source}:{event.id}",
        name=event.name,
        properties=dict(event.properties),
        timestamp=event.timestamp,
    )


def flatten_contact(record: ContactRecord) -> dict[str, Any]:
    """`contact.*` as expressions and templates see it (`ContactRecord.flattened`): attributes,
    then the computed traits the store loaded with the contact, then the profile fields."""
    return record.flattened()


def answer_event_questions(
    store: Store, contact_ids: Sequence[str], questions: Iterable[EventQuestion], now: datetime
) -> dict[str, EventAnswers]:
    """Each contact's answers at `now` (events after `now` do not count yet)."""
    counts: dict[str, dict[str, int]] = {contact_id: {} for contact_id in contact_ids}
    latest: dict[str, dict[str, LatestEvent | None]] = {cid: {} for cid in contact_ids}
    for question in sorted_questions(questions):
        if question.kind == "count":
            since = now - parse_duration(question.within) if question.within else None
            found = store.event_counts(contact_ids, question.name, since=since, until=now)
            for contact_id in contact_ids:
                counts[contact_id][question.key] = found.get(contact_id, 0)
        else:
            events = store.latest_events(contact_ids, question.name, until=now)
            for contact_id in contact_ids:
                event = events.get(contact_id)
                latest[contact_id][question.key] = (
                    LatestEvent(
                        name=event.name, timestamp=event.timestamp, properties=event.properties
                    )
                    if event is not None
                    else None
                )
    return {
        contact_id: EventAnswers(counts=counts[contact_id], latest=latest[contact_id])
        for contact_id in contact_ids
    }


def contact_snapshots(
    store: Store,
    contacts: Sequence[ContactRecord],
    questions: Iterable[EventQuestion],
    now: datetime,
) -> dict[str, ContactSnapshot]:
    """Snapshots of contacts already read (a segment page): one query per question."""
    answers = answer_event_questions(store, [c.id for c in contacts], questions, now)
    return {
        contact.id: ContactSnapshot(
            found=True, contact=flatten_contact(contact), events=answers[contact.id]
        )
        for contact in contacts
    }


def contact_snapshot(
    store: Store,
    contact_id: str,
    questions: Iterable[EventQuestion],
    now: datetime,
    *,
    record: ContactRecord | None = None,
) -> ContactSnapshot:
    """One contact's snapshot (`found=False` when it does not exist); `record` if already read."""
    contact = record if record is not None else store.get_contact(contact_id)
    if contact is None:
        return ContactSnapshot(found=False)
    return contact_snapshots(store, [contact], questions, now)[contact.id]


def scratch_snapshot(
    profile: ContactRecord,
    history: Iterable[EventRecord],
    questions: Iterable[EventQuestion],
    now: datetime,
    traits: TraitUpdater | None = None,
) -> ContactSnapshot:
    """The snapshot of a contact that lives in no database (a contact file for `preview`):
    stored in a throwaway in-memory store so that its questions get the same answers, from the
    same queries, as a run's — and, with `traits`, its history counts in its traits."""
    with Store.open("sqlite://", migrate_schema=False) as store:
        # The models' tables straight away: a scratch store needs no migration history.
        Base.metadata.create_all(store.engine)
        store.use_traits(traits)
        store.upsert_contact(profile)
        for event in history:
            store.record_event(event)
        return contact_snapshot(store, profile.id, questions, now)
