"""Benchmark: `rapport report loyalty` and `rapport report journey` over 1M events and 100k runs.

Method. A fresh store — a temporary SQLite file, or a new PostgreSQL database on
`--postgres-url`'s server, migrated to head with the production engine settings — is filled
through bulk Core inserts (executemany, 10 000 rows a statement) with:
  * `--contacts` contacts (default 100 000) and `--events` events (default 1 000 000) spread over
    the year before 2026-12-01: 35% `order_placed` (a `total`), 5% `nps_submitted` (a `score`),
    the rest `page_viewed` and `email_opened`;
  * `--runs` runs (default 100 000) of one journey entered over the same year, 10% holdout, a
    third converted, a third completed, the rest exited or running; each with 3 to 6 `run_steps`
    rows (a split among them, arms a/b) and 2 ledger rows of assorted statuses.
Loaded below the ORM (SQLite executemany, PostgreSQL COPY). PostgreSQL gets `ANALYZE` after the
load (what autovacuum would do); SQLite is left as loaded.
Then the two reports run exactly as the CLI calls them (`reports.loyalty.loyalty_report` over
the last quarter with `--cohorts`, `reports.journey.journey_report` over the last quarter and
over all time), `--repeat` times each; reported: the first (cold) and the median time.

Run: `.venv/bin/python bench/reports.py [--backend sqlite|postgresql] [--events 1000000]
[--runs 100000] [--repeat 3]`. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from reports.journey import JourneyQuery, journey_report  # noqa: E402
from reports.loyalty import LoyaltyQuery, loyalty_report  # noqa: E402
from store import Store  # noqa: E402
from store.models import Contact, Event, Message, Run, RunStep  # noqa: E402

END = datetime(2026, 12, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
CHUNK = 10_000
STEPS = ["welcome", "wait_1", "pick", "offer", "reminder", "done"]


def chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _plain(value: Any, sqlite: bool) -> Any:
    """A value as the driver takes it: JSON as text; on SQLite, timestamps as SQLAlchemy
    stores them (naive UTC text)."""
    if isinstance(value, dict):
        return json.dumps(value)
    if sqlite and isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def load(store: Store, model: Any, rows: Iterator[dict[str, Any]]) -> int:
    """Bulk load below the ORM: SQLite executemany, PostgreSQL COPY."""
    table = model.__table__.name
    count = 0
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        sqlite = store.engine.dialect.name == "sqlite"
        for batch in chunks(rows):
            columns = list(batch[0])
            values = [tuple(_plain(row[c], sqlite) for c in columns) for row in batch]
            if sqlite:
                marks = ", ".join("?" for _ in columns)
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values
                )
            else:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            count += len(batch)
        raw.commit()
    finally:
        raw.close()
    return count


def contacts(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"id": f"c{i:06d}", "attributes": {}, "created_at": END - YEAR, "updated_at": END}


def events(rng: random.Random, n: int, people: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        roll = rng.random()
        at = END - YEAR * rng.random()
        contact = f"c{rng.randrange(people):06d}"
        if roll < 0.35:
            name, props = "order_placed", {"total": round(rng.uniform(5, 120), 2)}
        elif roll < 0.40:
            name, props = "nps_submitted", {"score": rng.randint(0, 10)}
        else:
            name, props = rng.choice(["page_viewed", "email_opened"]), {}
        yield {
            "contact_id": contact,
            "name": name,
            "properties": props,
            "timestamp": at,
            "source": "bench",
            "message_id": f"e{i}",
            "received_at": at,
            "routed_at": at,
        }


def runs(rng: random.Random, n: int, people: int) -> tuple[list[dict[str, Any]], ...]:
    run_rows, step_rows, message_rows = [], [], []
    statuses = ["sent", "delivered", "opened", "clicked", "bounced", "skipped", "failed"]
    for i in range(n):
        entered = END - YEAR * rng.random()
        holdout = rng.random() < 0.1
        roll = rng.random()
        outcome = (
            "converted"
            if roll < 0.33
            else "completed"
            if roll < 0.66
            else "exited"
            if roll < 0.9
            else None
        )
        ended = entered + timedelta(hours=rng.uniform(1, 200)) if outcome else None
        workflow = f"journey:bench:c{i:06d}"
        run_rows.append(
            {
                "id": i + 1,
                "workflow_id": workflow,
                "run_id": f"r{i}",
                "contact_id": f"c{i:06d}",
                "journey": "bench",
                "version": "v1",
                "status": "completed" if outcome else "running",
                "entered_at": entered,
                "ended_at": ended,
                "outcome": outcome,
                "holdout": holdout,
                "data": {},
            }
        )
        reached = rng.randint(3, 6)
        for seq, step in enumerate(STEPS[:reached], start=1):
            step_rows.append(
                {
                    "run_key": i + 1,
                    "step_id": step,
                    "kind": "split" if step == "pick" else "send",
                    "variant": rng.choice("ab") if step == "pick" else None,
                    "first_reached_at": entered + timedelta(minutes=seq),
                    "first_seq": seq,
                    "last_seq": seq,
                }
            )
        for m in range(2):
            message_rows.append(
                {
                    "idempotency_key": f"k{i}-{m}",
                    "workflow_id": workflow,
                    "step_id": STEPS[m * 3],
                    "journey": "bench",
                    "contact_id": f"c{i:06d}",
                    "channel": rng.choice(["email", "sms"]),
                    "category": "marketing",
                    "status": "skipped" if holdout else rng.choice(statuses),
                    "created_at": entered + timedelta(minutes=m * 3 + 1),
                    "updated_at": entered,
                }
            )
    return run_rows, step_rows, message_rows


def timed(label: str, repeat: int, call: Callable[[], Any]) -> None:
    """Wall time, and this process's CPU time (SQLite works in-process, so on a busy machine
    the CPU time is what the wall time would be on an idle one)."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    print(
        f"{label:<40} wall first {walls[0]:6.2f} s, median {statistics.median(walls):6.2f} s;"
        f" cpu median {statistics.median(cpus):6.2f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    workdir = tempfile.TemporaryDirectory()
    admin = None
    name = f"rapport_bench_{uuid.uuid4().hex[:8]}"
    if args.backend == "sqlite":
        url = make_url(f"sqlite:///{Path(workdir.name) / 'bench.db'}")
    else:
        admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(args.postgres_url).set(database=name)
    store = Store.open(url)
    try:
        rng = random.Random(1)
        started = time.perf_counter()
        load(store, Contact, contacts(args.contacts))
        load(store, Event, events(rng, args.events, args.contacts))
        run_rows, step_rows, message_rows = runs(rng, args.runs, args.contacts)
        load(store, Run, iter(run_rows))
        load(store, RunStep, iter(step_rows))
        load(store, Message, iter(message_rows))
        if args.backend == "postgresql":
            with store.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        print(
            f"{args.backend}: {args.events:,} events, {args.contacts:,} contacts, "
            f"{args.runs:,} runs ({len(step_rows):,} run_steps, {len(message_rows):,} messages) "
            f"loaded in {time.perf_counter() - started:.0f} s; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
            flush=True,
        )
        quarter = LoyaltyQuery(since=END - timedelta(days=91), until=END, cohorts=True)
        timed(
            "report loyalty (a quarter, --cohorts)",
            args.repeat,
            lambda: loyalty_report(store, quarter),
        )
        year = LoyaltyQuery(since=END - YEAR, until=END)
        timed("report loyalty (a year)", args.repeat, lambda: loyalty_report(store, year))
        recent = JourneyQuery(
            journey="bench", since=END - timedelta(days=91), until=END, step_order=tuple(STEPS)
        )
        timed(
            "report journey (a quarter: ~25k runs)",
            args.repeat,
            lambda: journey_report(store, recent),
        )
        everything = JourneyQuery(journey="bench", step_order=tuple(STEPS))
        timed(
            "report journey (all 100k runs)", args.repeat, lambda: journey_report(store, everything)
        )
    finally:
        store.close()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        workdir.cleanup()


if __name__ == "__main__":
    main()
