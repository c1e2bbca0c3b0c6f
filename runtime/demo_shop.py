"""`rapport demo seed`: a realistic coffee shop's year, written through the history path.

A few thousand contacts who signed up over the last three years; a year of orders with the
seasons of a coffee roaster (a December gift peak, a summer lull), from customers of four kinds
(never buy, buy once, regulars who may drift away, loyal fans); NPS answers after some orders,
warmer from loyal customers; a monthly newsletter opened and clicked; friends referred by
customers. Every event is history (`Store.record_history`): stored, counted in traits and
metrics, starting and signalling nothing, so no journey fires for last year's orders. The runs
the journeys would have made are written afterwards, as the workflow records them
(runtime/demo_journeys.py).

Deterministic: the same `seed`, `contacts` and `end` give the same shop, event for event (each
event's message id is fixed, so seeding twice adds nothing).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from runtime.demo_journeys import DemoRuns, seed_demo_runs
from settings import Settings
from store import ContactRecord, EventRecord, Store
from workflows.plan import JourneyPlan

log = logging.getLogger(__name__)

SOURCE = "demo"
CONTACT_PREFIX = "demo-"
YEAR = timedelta(days=365)
BATCH = 2_000
# Relative order volume by month (January = 1): gifts in November and December, a summer lull.
SEASON = {1: 0.8, 2: 0.8, 3: 0.9, 4: 0.95, 5: 1.0, 6: 0.85, 7: 0.75, 8: 0.75, 9: 1.0, 10: 1.1,
          11: 1.4, 12: 1.9}  # fmt: skip
FIRST = ["Ada", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea",
         "Mo", "Nia", "Oskar", "Pia", "Quinn", "Rui", "Sol"]  # fmt: skip
LAST = ["Okafor", "Silva", "Nguyen", "Novak", "Haddad", "Moreau", "Kowalski", "Tanaka", "Berg",
        "Costa", "Murphy", "Schmidt", "Rossi", "Dubois", "Larsen", "Ortiz"]  # fmt: skip
PLACES = [("Europe/London", "en-GB"), ("Europe/Paris", "fr"), ("Europe/Berlin", "de"),
          ("America/New_York", "en-US"), ("America/Chicago", "en-US"), ("UTC", "en")]  # fmt: skip


@dataclass(frozen=True)
class Kind:
    """A kind of customer: how many orders a year, how long they stay, how they feel."""

    name: str
    share: float
    orders: tuple[int, int]
    nps: tuple[int, ...]  # scores to draw from
    opens: float  # chance to open a newsletter


KINDS = (
    Kind("browser", 0.35, (0, 0), (5, 6, 7, 8), 0.12),
    Kind("one_time", 0.38, (1, 1), (3, 5, 6, 7, 8, 9), 0.2),
    Kind("regular", 0.2, (2, 7), (6, 7, 8, 8, 9, 9, 10), 0.35),
    Kind("loyal", 0.07, (8, 22), (8, 9, 9, 10, 10, 10), 0.6),
)


@dataclass(frozen=True)
class DemoShop:
    contacts: int
    events: int
    runs: DemoRuns = field(default_factory=DemoRuns)


class _Events:
    """Event records with fixed message ids, in the order they are made."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.made = 0

    def __call__(self, contact_id: str, name: str, at: datetime, **properties: Any) -> EventRecord:
        self.made += 1
        return EventRecord(
            contact_id=contact_id,
            name=name,
            properties=properties,
            timestamp=at,
            source=SOURCE,
            message_id=f"demo:{self.seed}:{self.made}",
        )


def _seasonal_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A moment in [start, end), more likely in busy months (rejection sampling)."""
    peak = max(SEASON.values())
    while True:
        at = start + (end - start) * rng.random()
        if rng.random() * peak < SEASON[at.month]:
            return at.replace(microsecond=0)


def _contact(rng: random.Random, n: int, end: datetime) -> ContactRecord:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    zone, locale = rng.choice(PLACES)
    return ContactRecord(
        id=f"{CONTACT_PREFIX}{n:05d}",
        email=f"{first}.{last}.{n}@example.com".lower(),
        phone=f"+4477009{n:05d}" if rng.random() < 0.4 else None,
        timezone=zone,
        locale=locale,
        attributes={"first_name": first, "last_name": last},
        created_at=end - timedelta(days=2 + 1_100 * rng.random()),
    )


def shop(
    contacts: int, seed: int, end: datetime
) -> tuple[list[ContactRecord], Iterator[EventRecord]]:
    """The contacts, and a generator of their events (the year before `end`)."""
    rng = random.Random(seed)
    people = [_contact(rng, n, end) for n in range(contacts)]
    kinds = rng.choices(KINDS, weights=[k.share for k in KINDS], k=contacts)
    return people, _events(rng, people, kinds, seed, end)


def _events(
    rng: random.Random, people: list[ContactRecord], kinds: list[Kind], seed: int, end: datetime
) -> Iterator[EventRecord]:
    event = _Events(seed)
    start = end - YEAR
    last_moment = end - timedelta(days=1)  # all of it older than the default trigger max age
    first_orders: dict[str, datetime] = {}
    for person, kind in zip(people, kinds, strict=True):
        signed_up = person.created_at or start
        yield event(person.id, "signed_up", signed_up, plan=rng.choice(["basic", "basic", "pro"]))
        low, high = kind.orders
        count = rng.randint(low, high) if high else 0
        window_start = max(signed_up, start)
        if count and window_start < last_moment:
            # A regular may drift away: their orders end somewhere in the year.
            stays_until = last_moment
            if kind.name == "regular" and rng.random() < 0.45:
                stays_until = window_start + (last_moment - window_start) * rng.uniform(0.2, 0.8)
            times = sorted(_seasonal_time(rng, window_start, stays_until) for _ in range(count))
            first_orders[person.id] = times[0]
            for number, at in enumerate(times, start=1):
                total = round(rng.lognormvariate(3.6, 0.45) * (1.25 if at.month == 12 else 1), 2)
                yield event(
                    person.id, "order_placed", at, order_id=f"{person.id}-{number}", total=total
                )
                if rng.random() < 0.3:
                    answered = at + timedelta(days=rng.uniform(3, 10))
                    if answered < last_moment:
                        score = rng.choice(kind.nps)
                        yield event(person.id, "nps_submitted", answered, score=score)
        month = start.replace(day=1, hour=10, minute=0, second=0, microsecond=0)
        while month < last_moment:
            sent = month + timedelta(days=14)
            if signed_up < sent < last_moment and rng.random() < kind.opens:
                campaign = f"newsletter-{sent:%Y-%m}"
                opened = sent + timedelta(hours=rng.uniform(0.5, 48))
                yield event(person.id, "email_opened", opened, campaign=campaign)
                if rng.random() < 0.3:
                    clicked = opened + timedelta(minutes=rng.uniform(1, 30))
                    yield event(person.id, "email_clicked", clicked, campaign=campaign)
            month = (month + timedelta(days=32)).replace(day=1)
    # Referrals: about one customer in ten was brought by an earlier customer, who is thanked
    # when the friend's first order arrives.
    customers = sorted(first_orders, key=lambda c: (first_orders[c], c))
    for position, friend in enumerate(customers[1:], start=1):
        if rng.random() < 0.1:
            referrer = customers[rng.randrange(position)]
            if first_orders[referrer] < first_orders[friend]:
                yield event(
                    referrer,
                    "referral_completed",
                    first_orders[friend] + timedelta(minutes=5),
                    referred=friend,
                    referral_id=f"ref-{friend}",  # what journeys/referral_reward.yaml keys on
                )


def default_end(now: datetime | None = None) -> datetime:
    """Midnight UTC today: the demo year ends where today begins."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def seed_demo_shop(
    store: Store,
    contacts: int = 2_000,
    seed: int = 7,
    end: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    journeys: tuple[Settings, dict[str, JourneyPlan]] | None = None,
) -> DemoShop:
    """Write the shop into the store: contacts upserted in batches, events as history in
    batches (one transaction each); then, given the project's settings and journeys, the runs
    their event-triggered journeys would have made (runtime/demo_journeys.py). Returns how many
    contacts, new events and runs."""
    if contacts < 1:
        raise ValueError("contacts must be at least 1")
    until = end or default_end()
    people, events = shop(contacts, seed, until)
    store.upsert_contacts(people)
    written = 0
    made: list[EventRecord] = []
    while batch := list(islice(events, BATCH)):
        made += batch
        written += store.record_history(batch)
        if progress is not None:
            progress(written)
    runs = DemoRuns()
    if journeys is not None:
        settings, plans = journeys
        runs = seed_demo_runs(store, settings, plans, people, made, seed, until)
    return DemoShop(contacts=len(people), events=written, runs=runs)


def is_seeded(store: Store) -> bool:
    """Whether a demo shop is in the store already (its first contact is)."""
    return store.get_contact(f"{CONTACT_PREFIX}00000") is not None


def seed_demo_shop_once(
    store: Store, journeys: tuple[Settings, dict[str, JourneyPlan]] | None = None
) -> DemoShop | None:
    """The default shop, unless one is there already (`make run` on every start)."""
    if is_seeded(store):
        return None
    seeded = seed_demo_shop(store, journeys=journeys)
    log.info(
        "demo shop seeded: %d contacts, %d events of history (rapport report loyalty), "
        "%d journey runs with %d messages",
        seeded.contacts,
        seeded.events,
        seeded.runs.runs,
        seeded.runs.messages,
    )
    return seeded
