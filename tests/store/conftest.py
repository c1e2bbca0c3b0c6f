"""Fixtures running every store test on SQLite and on PostgreSQL.

PostgreSQL is reached through `RAPPORT_TEST_POSTGRES_URL` (an admin URL, by default
`postgresql+psycopg://postgres@127.0.0.1:5432/postgres`). Each test session creates its own
uniquely named databases and drops them at the end, so parallel runs do not meet. When the
server cannot be reached the PostgreSQL variants are skipped with the reason, unless
`RAPPORT_REQUIRE_POSTGRES=1`, which makes that an error.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from store import Store, migrate
from store.models import Base

ADMIN_URL = os.environ.get(
    "RAPPORT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]


class PostgresDatabases:
    """Creates uniquely named, empty databases on one server and drops them all at the end."""

    def __init__(self, admin: Engine) -> None:
        self.admin = admin
        self.prefix = f"rapport_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []

    def create(self) -> URL:
        name = f"{self.prefix}_{len(self.created)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.admin.url.set(database=name)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in reversed(self.created):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    admin_url = make_url(ADMIN_URL)
    admin = create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        reason = f"PostgreSQL unreachable at {admin_url.render_as_string()}: {exc}".splitlines()[0]
        if os.environ.get("RAPPORT_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    databases = PostgresDatabases(admin)
    try:
        yield databases
    finally:
        databases.drop_all()
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_store_url(postgres_databases: PostgresDatabases) -> URL:
    """One migrated database shared by the session's PostgreSQL store tests (emptied per test)."""
    url = postgres_databases.create()
    migrate(url)
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[], URL]:
    """A factory of new, empty databases on the test's backend."""
    counter = iter(range(1_000_000))

    def make() -> URL:
        if backend == "sqlite":
            return make_url(f"sqlite:///{tmp_path / f'empty-{next(counter)}' / 'rapport.db'}")
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        return databases.create()

    return make


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> URL:
    if backend == "sqlite":
        return make_url(f"sqlite:///{tmp_path / 'data' / 'rapport.db'}")
    url: URL = request.getfixturevalue("postgres_store_url")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    finally:
        engine.dispose()
    return url


@pytest.fixture
def store(store_url: URL) -> Iterator[Store]:
    """A migrated, empty store on SQLite (a temporary file) or PostgreSQL."""
    with Store.open(store_url) as opened:
        yield opened
