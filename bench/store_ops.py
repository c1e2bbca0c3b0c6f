"""`store_ops`: CPU per store call on the event → welcome path, with no Temporal and no HTTP.

Method. A migrated store (a SQLite file in a temporary folder, or `--url` a PostgreSQL
database, which it fills) with N contacts seeded as `event_to_send` seeds them. For each
contact, in order, the store calls one `signed_up` event makes on its way to a sent welcome
email, grouped as the API and the activities make them:

- `ingest`: `store_event` (creating the contact), then routing's reads (the contact and its
  answers to the onboarding journey's event question, the paused journeys), the start's reentry
  check, and `mark_routed_ids`;
- `open_run`: the contact and its answers;
- `send_prepare`: `send_email`'s reads before the render (the contact, the ledger claim, the
  send policy) and the template's snapshot;
- `send_hand_over`, `send_mark_sent`: the ledger writes around the provider call;
- `record_progress`: the run's entry and its steps reached.

Each group is timed on `time.thread_time()` (this thread's CPU, so other load barely moves it),
per contact; printed: CPU µs per group and in all, mean over the contacts after `--warmup`.

    .venv/bin/python bench/store_ops.py [--contacts 400] [--url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from start_latency import seed  # contacts with alice's profile under fresh ids

from activities.contact_context import contact_snapshot
from activities.policy import SendPolicy
from store import EventRecord, Store
from store.records import RunRecord, RunStepRecord
from workflows.event_questions import EventQuestion

GROUPS = (
    "ingest",
    "open_run",
    "send_prepare",
    "send_hand_over",
    "send_mark_sent",
    "record_progress",
)
QUESTIONS = [EventQuestion(kind="count", name="order_placed")]


def one_connection(store: Store, how: str = "one_connection") -> AbstractContextManager[None]:
    """What the event path's activities wrap their store calls in (`Store.one_connection`,
    `one_transaction`; nothing before there were, so the script measures that code too)."""
    shared = getattr(store, how, None)
    return shared() if shared is not None else nullcontext()


def one_event(store: Store, contact_id: str, timed: Timer) -> None:
    """The store calls of one `signed_up` → welcome `sent`, each group timed by `timed`."""
    now = datetime.now(UTC)
    workflow_id = f"journey:onboarding:{contact_id}"
    run_id = uuid.uuid4().hex
    key = f"{workflow_id}:{run_id}:welcome:1"
    policy = SendPolicy(store)

    with timed("ingest"):
        event = EventRecord(
            contact_id=contact_id,
            name="signed_up",
            properties={"plan": "starter"},
            timestamp=now,
            source="api",
            message_id=uuid.uuid4().hex,
        )
        stored = store.store_event(event, create_contact=True)
        assert stored is not None
        with one_connection(store):  # routing's reads
            contact = store.get_contact(contact_id)
            assert contact is not None
            contact_snapshot(store, contact_id, QUESTIONS, now, record=contact)
            store.paused_journeys()
        with one_connection(store):  # the start's reentry check
            store.contact_exists(contact_id)
            store.runs_for_contact(contact_id, "onboarding")
        store.mark_routed_ids([stored.id])

    with timed("open_run"), one_connection(store):
        contact_snapshot(store, contact_id, QUESTIONS, now)

    with timed("send_prepare"), one_connection(store):
        contact = store.get_contact(contact_id)
        assert contact is not None and contact.email
        store.ledger.claim(
            key,
            contact_id=contact_id,
            channel="email",
            category="transactional",
            workflow_id=workflow_id,
            step_id="welcome",
            journey="onboarding",
            template="welcome",
            recipient=contact.email,
            created_at=now,
        )
        policy.check(
            contact_id=contact_id,
            channel="email",
            category="transactional",
            address=contact.email,
            frequency_cap="3 per 7d",
            now=now,
        )
        contact_snapshot(store, contact_id, [], now, record=contact)

    with timed("send_hand_over"):
        store.ledger.hand_over(key, "sendgrid", cap=None)

    with timed("send_mark_sent"):
        store.ledger.mark_sent(
            key, "sendgrid", "msg-1", body="Hello", subject="Welcome", recipient=contact.email
        )

    with timed("record_progress"), one_connection(store, "one_transaction"):
        store.record_run(
            RunRecord(
                workflow_id=workflow_id,
                run_id=run_id,
                contact_id=contact_id,
                journey="onboarding",
                version="v1",
                entered_at=now,
            )
        )
        store.record_run_steps(
            workflow_id,
            run_id,
            [
                RunStepRecord(step_id="welcome", kind="send", reached_at=now, seq=1),
                RunStepRecord(step_id="wait_1", kind="wait", reached_at=now, seq=2),
            ],
        )


class Timer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.on = False
        self._name = ""
        self._start = 0.0

    def __call__(self, name: str) -> Timer:
        self._name = name
        return self

    def __enter__(self) -> None:
        self._start = time.thread_time()

    def __exit__(self, *_exc: object) -> None:
        if self.on:
            self.totals[self._name] += time.thread_time() - self._start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--url", help="a PostgreSQL database to use (default: a SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'rapport.db'}"
        with Store.open(url) as store:
            ids = seed(store, args.warmup + args.contacts)
            timer = Timer()
            for n, contact_id in enumerate(ids):
                timer.on = n >= args.warmup
                one_event(store, contact_id, timer)
    per = {name: 1e6 * timer.totals[name] / args.contacts for name in GROUPS}
    print(f"store_ops on {url.split(':', 1)[0]}, {args.contacts} events, CPU µs per event:")
    for name in GROUPS:
        print(f"  {name:16} {per[name]:8.0f}")
    print(f"  {'total':16} {sum(per.values()):8.0f}")


if __name__ == "__main__":
    main()
