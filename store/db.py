"""Engines and migrations.

`make_engine(url)` builds an engine for SQLite or PostgreSQL (psycopg 3); `migrate(url)` brings a
database to the newest schema with Alembic, from the migrations packaged in `store/migrations`
(no alembic.ini needed). Several processes may migrate the same database at once: PostgreSQL
serialises them with an advisory lock, SQLite with an immediate (write-locking) transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Execution option asking for a write transaction: on SQLite it begins with BEGIN IMMEDIATE, so
# the write lock is taken up front (waiting on busy_timeout) instead of failing on upgrade.
WRITE = "rapport_write"

SQLITE_BUSY_TIMEOUT_S = 30
# How long a PostgreSQL connection may take to be made (libpq's `connect_timeout`, whole
# seconds, at least 2); `?connect_timeout=N` in the URL overrides it.
POSTGRES_CONNECT_TIMEOUT_S = 10
# pg_advisory_xact_lock key held while migrating ("rapport" in ASCII).
MIGRATION_LOCK_KEY = 0x72617070_6F7274


# What the database raises while it cannot be reached or used for now (down, restarting, its
# connections reset, the pool exhausted, a SQLite file locked past the busy timeout): the API
# answers 503, the activities retry.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError)


class UnsupportedDatabase(ValueError):
    pass


def normalize_url(url: str | URL) -> URL:
    """The URL as SQLAlchemy should see it: bare `postgresql://` uses psycopg 3."""
    parsed = make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise UnsupportedDatabase(
            f"unsupported database {parsed.drivername!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB"
        )
    return parsed


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _use_wal(cursor: Any) -> None:
    """Switch the database file to WAL (a persistent setting, so usually already done).
    The switch needs the database to itself and fails at once, without waiting on the busy
    timeout, while another connection writes, e.g. when several processes create the file
    together: retry until the timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for `url`. SQLite files get their parent directory created, WAL journaling,
    foreign keys on, a busy timeout, and connections usable from any thread."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        if "connect_timeout" not in parsed.query:
            # A server that takes the connection and never answers (a firewall that drops
            # packets, a host gone mid-failover) would hold a request or an activity for as
            # long as the operating system lets TCP wait; libpq waits forever by default.
            kwargs["connect_args"] = {
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
                **kwargs.get("connect_args", {}),
            }
        return create_engine(parsed, **kwargs)

    connect_args: dict[str, Any] = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
    memory = _is_memory(parsed)
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
    elif parsed.database:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are zeroed, not left in free pages: erasure must leave no copy in
            # the file (consent/erasure.py).
            cursor.execute("PRAGMA secure_delete=ON")
            if not memory:
                _use_wal(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On the driver's connection: through `exec_driver_sql` the BEGIN cost as much CPU
        # as a short statement, on every transaction.
        begin = "BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN"
        try:
            conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]
        except sqlite3.OperationalError as error:  # locked past the busy timeout: as SQLAlchemy's
            raise OperationalError(begin, None, error) from error

    return engine


# This process's write-turn locks (see `write_turn`): one per SQLite file, looked up by URL.
_TURNS_BY_FILE: dict[str, threading.RLock] = {}
_TURNS_BY_URL: dict[URL, threading.RLock | None] = {}
_TURNS_GUARD = threading.Lock()


def _turn_of(url: URL) -> threading.RLock | None:
    """The file's lock (None: PostgreSQL, or SQLite in memory); the path resolved once per URL,
    not on every write."""
    try:
        return _TURNS_BY_URL[url]
    except KeyError:
        pass
    with _TURNS_GUARD:
        turn = None
        if url.get_backend_name() == "sqlite" and not _is_memory(url) and url.database:
            key = str(Path(url.database).expanduser().resolve())
            turn = _TURNS_BY_FILE.setdefault(key, threading.RLock())
        return _TURNS_BY_URL.setdefault(url, turn)


@contextmanager
def write_turn(engine: Engine) -> Iterator[None]:
    """This thread's turn to write to `engine`'s SQLite file, among this process's threads
    (PostgreSQL, and SQLite in memory: no wait). SQLite lets one connection write at a time and
    makes the others poll: its busy handler sleeps 1, 2, 5, 10 … 100 ms between tries, so a
    writer that arrives just after another waits milliseconds after the lock is free, and the
    store's short write transactions (a send writes three) queued behind each other in those
    sleeps. Waiting on a lock in the process instead, the next writer starts the moment the
    last one commits; other processes still meet at SQLite's lock. Reentrant: a transaction
    inside this thread's own write transaction does not wait for itself."""
    turn = _turn_of(engine.url)
    if turn is None:
        yield
        return
    if not turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
        # As SQLite's busy timeout would: the store is unavailable for now.
        locked = sqlite3.OperationalError("database is locked")
        raise OperationalError("BEGIN IMMEDIATE", None, locked)
    try:
        yield
    finally:
        turn.release()


def write_engine(engine: Engine) -> Engine:
    """`engine` (same pool) whose transactions are write transactions."""
    return engine.execution_options(**{WRITE: True})


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic config for the packaged migrations; `url` is optional when a connection is
    handed over in `config.attributes["connection"]`."""
    from alembic.config import Config  # imported when needed: it costs every CLI start 0.2 s

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def migrate(url: str | URL | Engine, revision: str = "head") -> None:
    """`alembic upgrade <revision>` on the database at `url` (or of an engine)."""
    owned = not isinstance(url, Engine)
    engine = make_engine(url) if not isinstance(url, Engine) else url
    try:
        with write_engine(engine).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            from alembic import command

            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        if owned:
            engine.dispose()


def downgrade(url: str | URL | Engine, revision: str) -> None:
    """`alembic downgrade <revision>` (tests and manual recovery)."""
    owned = not isinstance(url, Engine)
    engine = make_engine(url) if not isinstance(url, Engine) else url
    try:
        with write_engine(engine).begin() as conn:
            from alembic import command

            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
    finally:
        if owned:
            engine.dispose()


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()
