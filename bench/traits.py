"""Traits: the ingest rate with the sample traits against the same ingest without traits, and
`rapport traits rebuild` (every aggregate, RFM and the derived traits) over many contacts and
events, on SQLite or PostgreSQL.

    .venv/bin/python bench/traits.py ingest [--events 2000] [--backend sqlite|postgresql]
    .venv/bin/python bench/traits.py rebuild [--contacts 100000] [--events 1000000]
                                             [--backend sqlite|postgresql]

**ingest** — `api.ingest.ingest_event` (the path of `POST /v1/track` and `rapport event`, minus
HTTP: ensure the contact, store the event with its trait updates, look for the trait_changed
events to route, mark routed) for `order_placed` events of 200 contacts, no journey listening
(Temporal is never called), on a fresh store. The same events go once without traits and once
with `traits/loyalty.yaml` installed as `rapport api` installs it here (`trait_changed` stored for
the traits the sample journeys listen to: `tier`), in alternating blocks of 100 on two stores,
so both see the same machine load; events/s each and their ratio.

**rebuild** — a fresh store loaded in SQL (a recursive CTE on SQLite, `generate_series` on
PostgreSQL): N contacts and M `order_placed` events spread over the last year (totals 5-200,
every contact ordering at least once), then `runtime.traits.rebuild` timed (aggregates in SQL,
RFM in SQL, the derived `tier` once per distinct `lifetime_spend` and joined back in SQL), the
traits installed as `rapport traits rebuild` installs them here; wall time and this process's
CPU time (on SQLite that is all the database's work too; on a machine shared with other loads
the wall time includes waiting for a core). Peak RSS printed.
PostgreSQL: a uniquely named database on `RAPPORT_TEST_POSTGRES_URL` (default the local server),
dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.ingest import ingest_event
from runtime.router import EventIndex
from runtime.traits import listened_traits, rebuild
from settings import Settings
from store import EventRecord, Store
from workflows.project import compile_project
from workflows.trait_compiler import compile_traits
from workflows.trait_program import TraitProgram

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get(
    "RAPPORT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def program() -> TraitProgram:
    compiled = compile_traits([ROOT / "traits"])
    assert compiled.program is not None, compiled.diagnostics
    return compiled.program


def install(store: Store) -> TraitProgram:
    """The sample traits on `store` as `rapport api` and `rapport traits rebuild` install them
    in this repository (`runtime.traits.install_traits`): `trait_changed` stored for the traits
    the sample journeys listen to (`tier`)."""
    compiled = program()
    plans = compile_project(Settings(_env_file=None)).plans
    store.use_traits(compiled, announced=listened_traits(plans, compiled))
    return compiled


class Database:
    """A fresh database URL on the backend, dropped on exit."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.name = f"rapport_bench_{uuid.uuid4().hex[:8]}"
        self.tmp = tempfile.TemporaryDirectory()

    def url(self, suffix: str = "") -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp.name}/{suffix or 'bench'}.db"
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}{suffix}"'))
        admin.dispose()
        return make_url(ADMIN_URL).set(database=f"{self.name}{suffix}").render_as_string(False)

    def drop(self, *suffixes: str) -> None:
        if self.backend == "postgresql":
            admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for suffix in suffixes:
                    conn.execute(
                        text(f'DROP DATABASE IF EXISTS "{self.name}{suffix}" WITH (FORCE)')
                    )
            admin.dispose()
        self.tmp.cleanup()


async def _never() -> Any:
    raise AssertionError("no journey listens: Temporal is never called")


async def bench_ingest(backend: str, events: int) -> None:
    db = Database(backend)
    plain, traited = Store.open(db.url("_plain")), Store.open(db.url("_traits"))
    install(traited)
    index = EventIndex.build({})
    now = datetime.now(UTC)
    rows = [
        EventRecord(
            contact_id=f"c{n % 200}",
            name="order_placed",
            properties={"total": 5 + n % 195, "order_id": f"o-{n}"},
            timestamp=now - timedelta(minutes=events - n),
            message_id=f"m-{n}",
        )
        for n in range(events)
    ]
    spent = {"plain": 0.0, "traits": 0.0}
    try:
        for block in range(0, events, 100):
            for label, store in (("plain", plain), ("traits", traited)):
                started = time.perf_counter()
                for event in rows[block : block + 100]:
                    await ingest_event(store, index, event, client=_never, task_queue="bench")
                spent[label] += time.perf_counter() - started
    finally:
        plain.close()
        traited.close()
        db.drop("_plain", "_traits")
    rate = {label: events / seconds for label, seconds in spent.items()}
    print(f"ingest on {backend}: {events} events each")
    print(f"  without traits: {rate['plain']:.0f} events/s")
    print(f"  with traits/loyalty.yaml: {rate['traits']:.0f} events/s")
    print(f"  ratio: {rate['traits'] / rate['plain']:.2f}")


LOAD = {
    "sqlite": [
        """WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :contacts)
        INSERT INTO contacts (id, attributes, created_at, updated_at)
        SELECT 'c' || i, '{}', :now, :now FROM n""",
        """WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :events)
        INSERT INTO events (contact_id, name, properties, timestamp, source, message_id,
                            received_at, routed_at)
        SELECT 'c' || (i % :contacts), 'order_placed',
               json_object('total', 5 + (i * 7919) % 196, 'order_id', 'o-' || i),
               datetime(:now, '-' || ((i * 104729) % 525600) || ' minutes'),
               'bench', 'm-' || i, :now, :now
        FROM n""",
    ],
    "postgresql": [
        """INSERT INTO contacts (id, attributes, created_at, updated_at)
        SELECT 'c' || i, '{}', now(), now() FROM generate_series(0, :contacts - 1) AS i""",
        """INSERT INTO events (contact_id, name, properties, timestamp, source, message_id,
                               received_at, routed_at)
        SELECT 'c' || (i % :contacts), 'order_placed',
               json_build_object('total', 5 + (i * 7919) % 196, 'order_id', 'o-' || i),
               now() - ((i * 104729) % 525600) * interval '1 minute',
               'bench', 'm-' || i, now(), now()
        FROM generate_series(0::bigint, :events - 1) AS i""",
    ],
}


def bench_rebuild(backend: str, contacts: int, events: int) -> None:
    db = Database(backend)
    store = Store.open(db.url())
    try:
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        started = time.perf_counter()
        with store.engine.begin() as conn:
            for statement in LOAD[backend]:
                conn.execute(text(statement), {"contacts": contacts, "events": events, "now": now})
        loaded = time.perf_counter() - started
        settings = Settings(_env_file=None)
        started = time.perf_counter()
        traits = install(store)
        cpu = time.process_time()
        report = rebuild(store, traits, settings)
        first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        again = rebuild(store, traits, settings)
        second, second_cpu = time.perf_counter() - started, time.process_time() - cpu
        segments = store.trait_value_counts("rfm_segment")
    finally:
        store.close()
        db.drop("")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rebuild on {backend}: {contacts} contacts, {events} events (loaded in {loaded:.1f} s)")
    print(
        f"  first rebuild: {first:.1f} s (CPU of this process {first_cpu:.1f} s), "
        f"{report.changed} values set {report.as_json()}"
    )
    print(
        f"  again (nothing changed): {second:.1f} s (CPU {second_cpu:.1f} s), "
        f"{again.changed} changes"
    )
    print(f"  rfm_segment: {segments}")
    print(f"  peak RSS: {rss:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["ingest", "rebuild"])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int)
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    os.chdir(ROOT)  # the settings' journeys/, templates/, traits/
    if args.what == "ingest":
        asyncio.run(bench_ingest(args.backend, args.events or 2000))
    else:
        bench_rebuild(args.backend, args.contacts, args.events or 1_000_000)


if __name__ == "__main__":
    main()
