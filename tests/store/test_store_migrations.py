"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import URL, make_url

from store import Store, make_engine, migrate
from store.db import (
    UnsupportedDatabase,
    alembic_config,
    current_revision,
    downgrade,
    normalize_url,
)
from store.models import Base

# The newest migration in store/migrations/versions: a new database must end up there.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def check_constraint_shape(sqltext: str) -> tuple[str, frozenset[str]]:
    """(column, allowed values) of `col IN ('a', 'b')`, however the database spells it back."""
    column = re.match(r"\(*\s*(\w+)", sqltext)
    assert column, sqltext
    return column.group(1), frozenset(re.findall(r"'([^']*)'", sqltext))


def normalised_predicate(clause: Any) -> str:
    return re.sub(r"[()\s]+", " ", str(clause)).strip().lower()


@pytest.fixture
def migrated(empty_database: Callable[[], URL]) -> Engine:
    url = empty_database()
    migrate(url)
    return make_engine(url)


def test_migrations_match_models(migrated: Engine) -> None:
    with migrated.connect() as conn:
        assert current_revision(conn) == HEAD
        assert schema_diff(conn) == []
    migrated.dispose()


def test_schema_comparison_would_notice_drift(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(text("DROP INDEX ix_events_contact_timestamp"))
    with migrated.connect() as conn:
        diff = schema_diff(conn)
    migrated.dispose()
    assert [(d[0], d[1].name) for d in diff] == [("add_index", "ix_events_contact_timestamp")]


def test_check_constraints_and_partial_index_match_models(migrated: Engine) -> None:
    """What autogenerate does not compare: CHECK constraints and partial-index predicates."""
    inspector = inspect(migrated)
    for table in Base.metadata.sorted_tables:
        expected = {
            str(c.name): check_constraint_shape(str(c.sqltext))
            for c in table.constraints
            if c.__class__.__name__ == "CheckConstraint"
        }
        reflected = {
            str(c["name"]): check_constraint_shape(c["sqltext"])
            for c in inspector.get_check_constraints(table.name)
        }
        assert reflected == expected, table.name

        for index in table.indexes:
            where = index.dialect_options[migrated.dialect.name].get("where")
            found = next(i for i in inspector.get_indexes(table.name) if i["name"] == index.name)
            options = found.get("dialect_options", {})
            reflected_where = options.get(f"{migrated.dialect.name}_where")
            if where is None:
                assert reflected_where is None, index.name
            else:
                assert normalised_predicate(reflected_where) == normalised_predicate(where)
    migrated.dispose()


def test_downgrade_to_base_then_upgrade_again(empty_database: Callable[[], URL]) -> None:
    url = empty_database()
    migrate(url)
    downgrade(url, "base")
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        migrate(engine)
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD
            assert schema_diff(conn) == []
    finally:
        engine.dispose()


def test_concurrent_migrations_of_a_new_database_all_succeed(
    empty_database: Callable[[], URL],
) -> None:
    url = empty_database()
    barrier = threading.Barrier(4)

    def run(_: int) -> None:
        barrier.wait(timeout=30)
        migrate(url)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run, range(4)))
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD
            assert schema_diff(conn) == []
    finally:
        engine.dispose()


def test_store_open_migrates_a_new_database(empty_database: Callable[[], URL]) -> None:
    with Store.open(empty_database()) as store:
        with store.engine.connect() as conn:
            assert current_revision(conn) == HEAD
        assert store.get_contact("u1") is None


def test_sqlite_engine_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "rapport.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert path.parent.is_dir()

        def from_another_thread() -> int:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql("SELECT 1").scalar() or 0)

        with ThreadPoolExecutor(max_workers=1) as pool:
            assert pool.submit(from_another_thread).result() == 1
    finally:
        engine.dispose()


def test_in_memory_sqlite_store_works() -> None:
    with Store.open("sqlite://") as store:
        assert store.count_events("u1", "x") == 0


def test_postgresql_url_without_driver_uses_psycopg() -> None:
    assert normalize_url("postgresql://postgres@127.0.0.1/db").drivername == "postgresql+psycopg"
    assert normalize_url(make_url("sqlite:///x.db")).drivername == "sqlite"
    with pytest.raises(UnsupportedDatabase, match="unsupported database 'mysql'"):
        normalize_url("mysql://root@localhost/db")


def test_run_steps_recorded_before_0009_keep_their_run(empty_database: Callable[[], URL]) -> None:
    """0009 keys `run_steps` by the run's integer id: steps written before it find their run
    (and its re-entry keeps its own steps); a step of a run never recorded is dropped."""
    url = empty_database()
    migrate(url, "0008")
    engine = make_engine(url)
    runs = [("journey:w:a", "first"), ("journey:w:a", "again"), ("journey:w:b", "only")]
    steps = [*runs, ("journey:w:gone", "lost")]
    try:
        with engine.begin() as conn:
            for workflow_id, run_id in runs:
                conn.execute(
                    text(
                        "INSERT INTO runs (workflow_id, run_id, contact_id, journey, version,"
                        " status, entered_at, holdout, data) VALUES (:w, :r, 'c', 'w', 'v',"
                        " 'running', '2026-07-01 10:00:00', false, '{}')"
                    ),
                    {"w": workflow_id, "r": run_id},
                )
            for workflow_id, run_id in steps:
                conn.execute(
                    text(
                        "INSERT INTO run_steps (workflow_id, run_id, step_id, kind,"
                        " first_reached_at, first_seq, last_seq) VALUES (:w, :r, :s, 'send',"
                        " '2026-07-01 10:00:00', 1, 1)"
                    ),
                    {"w": workflow_id, "r": run_id, "s": f"step_{run_id}"},
                )
        migrate(engine)
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD
            rows = conn.execute(
                text(
                    "SELECT runs.workflow_id, runs.run_id, run_steps.step_id FROM run_steps"
                    " JOIN runs ON runs.id = run_steps.run_key ORDER BY run_steps.step_id"
                )
            ).all()
            assert [tuple(row) for row in rows] == [
                ("journey:w:a", "again", "step_again"),
                ("journey:w:a", "first", "step_first"),
                ("journey:w:b", "only", "step_only"),
            ]
            assert conn.execute(text("SELECT count(*) FROM run_steps")).scalar_one() == 3
    finally:
        engine.dispose()
