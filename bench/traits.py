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
so both see the same machine load; events/s each and their ratio, by wall time and by CPU time
(on a shared machine the wall time swings with the load): the CPU time of this process (threads
included; on SQLite that is all the database's work too) and, on PostgreSQL, of the server
processes serving each store's database (`/proc/PID/stat` of the backends `pg_stat_activity`
lists for it, read before and after each block: the server must run on this machine).

**rebuild** — a fresh store loaded in SQL (a recursive CTE on SQLite, `generate_series` on
PostgreSQL): N contacts and M `order_placed` events spread over the last year (totals 5-200,
every contact ordering at least once), then `runtime.traits.rebuild` timed three times, the
traits installed as `rapport traits rebuild` installs them here (aggregates in SQL, one grouped
scan per event name; RFM in SQL; the derived `tier` once per distinct `lifetime_spend`, joined
back in SQL): the first rebuild (sets every value), the same again (nothing changes), and the
`traits:rfm` schedule's refresh (`windows_only`: the rolling windows, RFM and the derived
traits). Each with its wall time, this process's CPU time (on SQLite that is all the database's
work too), on PostgreSQL the server backends' CPU time (as for ingest), and the 1-minute load
average after it (on a shared machine the wall time includes waiting for a core). Peak RSS
printed.
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
        self.admin: Any = None

    def url(self, suffix: str = "") -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp.name}/{suffix or 'bench'}.db"
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}{suffix}"'))
        admin.dispose()
        return make_url(ADMIN_URL).set(database=f"{self.name}{suffix}").render_as_string(False)

    def server_cpu(self, suffix: str) -> float:
        """CPU seconds the server's backends for the database have used (PostgreSQL on this
        machine; 0 on SQLite, whose work is this process's)."""
        if self.backend != "postgresql":
            return 0.0
        if self.admin is None:
            self.admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                {"name": f"{self.name}{suffix}"},
            ).scalars()
            ticks = 0
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:  # the backend ended meanwhile
                    continue
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def drop(self, *suffixes: str) -> None:
        if self.admin is not None:
            self.admin.dispose()
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
    stores = {"plain": ("_plain", plain), "traits": ("_traits", traited)}
    wall = {"plain": 0.0, "traits": 0.0}
    cpu = {"plain": 0.0, "traits": 0.0}
    server = {"plain": 0.0, "traits": 0.0}
    load = os.getloadavg()
    try:
        for block in range(0, events, 100):
            for label, (suffix, store) in stores.items():
                server_before = db.server_cpu(suffix)
                started, cpu_started = time.perf_counter(), time.process_time()
                for event in rows[block : block + 100]:
                    await ingest_event(store, index, event, client=_never, task_queue="bench")
                wall[label] += time.perf_counter() - started
                cpu[label] += time.process_time() - cpu_started
                server[label] += db.server_cpu(suffix) - server_before
    finally:
        plain.close()
        traited.close()
        db.drop("_plain", "_traits")
    peak = max(load[0], os.getloadavg()[0])
    print(f"ingest on {backend}: {events} events each (load average up to {peak:.1f})")
    print("                             events/s (wall)   CPU ms/event (this process + server)")
    for label, name in (("plain", "without traits"), ("traits", "with traits/loyalty.yaml")):
        total = (cpu[label] + server[label]) / events * 1000
        print(
            f"  {name:<26} {events / wall[label]:>6.0f}            {total:.3f} "
            f"({cpu[label] / events * 1000:.3f} + {server[label] / events * 1000:.3f})"
        )
    by_cpu = (cpu["plain"] + server["plain"]) / (cpu["traits"] + server["traits"])
    print(f"  ratio: {wall['plain'] / wall['traits']:.2f} by wall time, {by_cpu:.2f} by CPU time")


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
    timings: list[tuple[str, float, float, float, int, float]] = []
    try:
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        started = time.perf_counter()
        with store.engine.begin() as conn:
            for statement in LOAD[backend]:
                conn.execute(text(statement), {"contacts": contacts, "events": events, "now": now})
        loaded = time.perf_counter() - started
        settings = Settings(_env_file=None)
        traits = install(store)
        runs = [
            ("first rebuild", False),
            ("again (nothing changed)", False),
            ("the traits:rfm schedule's refresh (windows, RFM, derived)", True),
        ]
        for label, windows_only in runs:
            started, cpu, server = time.perf_counter(), time.process_time(), db.server_cpu("")
            report = rebuild(store, traits, settings, windows_only=windows_only)
            timings.append(
                (
                    label,
                    time.perf_counter() - started,
                    time.process_time() - cpu,
                    db.server_cpu("") - server,
                    report.changed,
                    os.getloadavg()[0],
                )
            )
        segments = store.trait_value_counts("rfm_segment")
    finally:
        store.close()
        db.drop("")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rebuild on {backend}: {contacts} contacts, {events} events (loaded in {loaded:.1f} s)")
    for label, wall, cpu, server, changed, load in timings:
        on_server = f", PostgreSQL backends {server:.1f} s" if backend == "postgresql" else ""
        print(
            f"  {label}: {wall:.1f} s wall, CPU of this process {cpu:.1f} s{on_server}; "
            f"{changed} value(s) changed; load average {load:.1f}"
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
