"""Small helpers shared by the repositories: dialect-specific INSERT, addresses, row mapping."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, Executable, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.db import WRITE, UnsupportedDatabase, write_engine, write_turn
from store.models import Base

_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")


def normalize_address(channel: str, address: str) -> str:
    """The form of an address that suppression matching uses: emails lower-cased, phone
    numbers without spaces and punctuation."""
    address = address.strip()
    if channel == "email":
        return address.lower()
    return _PHONE_PUNCTUATION.sub("", address)


def address_hash(channel: str, address: str) -> str:
    """sha256 (hex) of the normalised address: what suppressions are matched by."""
    return hashlib.sha256(normalize_address(channel, address).encode("utf-8")).hexdigest()


def check_choice(field: str, value: object, allowed: tuple[str, ...]) -> None:
    """Refuse a value outside a closed vocabulary with a message naming the field."""
    if value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")


def insert(session: Session, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT for the session's dialect, which has `on_conflict_do_nothing/_update`."""
    return dialect_insert(session.get_bind().dialect.name, model)


def dialect_insert(name: str, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT for the dialect called `name` (a statement built once and reused)."""
    table = cast(Table, model.__table__)
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise UnsupportedDatabase(f"unsupported database dialect {name!r}")


def execute(session: Session, statement: Executable) -> CursorResult[Any]:
    """Run a Core INSERT/UPDATE/DELETE in the session's transaction; the result's `rowcount`
    is the database's (the ORM bulk paths do not always report it)."""
    return session.connection().execute(statement)


def inserted(session: Session, statement: postgresql.Insert | sqlite.Insert) -> bool:
    """Run an INSERT (usually … ON CONFLICT DO NOTHING); True when it added a row. Told by
    RETURNING, as PostgreSQL reports no rowcount once the driver has fetched returned keys."""
    table = cast(Table, statement.table)
    returning = statement.returning(*table.primary_key.columns)
    return execute(session, returning).first() is not None


def columns(obj: Any) -> dict[str, Any]:
    """The column values of an ORM object, for building a record."""
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def table(model: type[Base]) -> Table:
    """The model's table: what statements built once (Core, bound parameters) select from."""
    return cast(Table, model.__table__)


# The connection each thread's store calls share inside `Sessions.shared()`, by engine pool
# (the `Store`, its ledger, plans and experiments each have their own `Sessions`, one pool).
_shared = threading.local()


@dataclass
class _Shared:
    conn: Connection
    one_write: bool = False  # inside `Sessions.one_write()`: every call in its transaction


def _shared_for(engine: Engine) -> _Shared | None:
    by_pool: dict[object, _Shared] | None = getattr(_shared, "by_pool", None)
    return by_pool.get(engine.pool) if by_pool else None


class Sessions:
    """Short sessions on one engine: `read()` for queries, `write()` for one write transaction
    (which on SQLite takes the write lock when it begins). `reading()` and `writing()` are the
    same transactions on a bare connection, for the hot paths: statements built once and run
    without an ORM session (creating one, and loading ORM objects, cost more than a short
    indexed statement itself).

    Inside `shared()`, every one of them in this thread uses one connection, checked out once:
    reads share a read transaction, and each write ends it and is its own write transaction,
    as outside (an activity's calls then cost one checkout, not one each). Inside
    `one_write()`, they all run in one write transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = write_engine(engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        shared = _shared_for(self.engine)
        if shared is not None:
            with _read_transaction(shared), Session(shared.conn, expire_on_commit=False) as session:
                yield session
            return
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        shared = _shared_for(self.engine)
        if shared is not None:
            with (
                _write_transaction(shared),
                Session(shared.conn, expire_on_commit=False) as session,
            ):
                yield session
                session.flush()
            return
        with (
            write_turn(self.engine),
            Session(self._writer, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        shared = _shared_for(self.engine)
        if shared is not None:
            with _read_transaction(shared):
                yield shared.conn
            return
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        shared = _shared_for(self.engine)
        if shared is not None:
            with _write_transaction(shared):
                yield shared.conn
            return
        with write_turn(self.engine), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def shared(self) -> Iterator[None]:
        """The store calls this thread makes in the block share one connection (see above);
        what they wrote is committed as they return. Nested: the outer block's connection."""
        if _shared_for(self.engine) is not None:
            yield
            return
        by_pool: dict[object, _Shared] = getattr(_shared, "by_pool", None) or {}
        _shared.by_pool = by_pool
        with self.engine.connect() as conn:
            by_pool[self.engine.pool] = _Shared(conn)
            try:
                yield
                if conn.in_transaction():
                    conn.commit()
            finally:
                del by_pool[self.engine.pool]

    @contextmanager
    def one_write(self) -> Iterator[None]:
        """The store calls this thread makes in the block are one write transaction on one
        connection, committed at the end (rolled back if the block fails)."""
        with self.shared():
            shared = _shared_for(self.engine)
            assert shared is not None
            if shared.one_write:
                yield
                return
            with _write_transaction(shared):
                shared.one_write = True
                try:
                    yield
                finally:
                    shared.one_write = False


@contextmanager
def _read_transaction(shared: _Shared) -> Iterator[None]:
    """A shared connection's read transaction, begun if none is open; rolled back if the
    reads fail (PostgreSQL refuses any statement in a failed transaction). Inside
    `one_write()`: its transaction."""
    conn = shared.conn
    if shared.one_write:
        yield
        return
    if not conn.in_transaction():
        conn.begin()
    try:
        yield
    except BaseException:
        conn.rollback()
        raise


@contextmanager
def _write_transaction(shared: _Shared) -> Iterator[None]:
    """A write transaction of its own on a shared connection: the reads' transaction ends
    first, and the write's begins as `Sessions.write()`'s does (SQLite: BEGIN IMMEDIATE).
    Inside `one_write()`: its transaction."""
    conn = shared.conn
    if shared.one_write:
        yield
        return
    if conn.in_transaction():
        conn.commit()
    conn.execution_options(**{WRITE: True})
    try:
        with write_turn(conn.engine), conn.begin():
            yield
    finally:
        conn.execution_options(**{WRITE: False})
