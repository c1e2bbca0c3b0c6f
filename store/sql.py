"""Small helpers shared by the repositories: dialect-specific INSERT, addresses, row mapping."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Executable, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.db import UnsupportedDatabase, write_engine
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


class Sessions:
    """Short sessions on one engine: `read()` for queries, `write()` for one write transaction
    (which on SQLite takes the write lock when it begins)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = write_engine(engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session
