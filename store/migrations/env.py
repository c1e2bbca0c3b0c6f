"""Alembic environment for the store.

`store.db.migrate` hands over an open connection in `config.attributes["connection"]`. Run by the
`alembic` command instead, the URL is `sqlalchemy.url` from the config or, failing that, the
project settings (`RAPPORT_DATABASE_URL`, else the SQLite file in the data dir).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from store.db import make_engine, normalize_url, write_engine
from store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from settings import get_settings

        url = get_settings().database
    return normalize_url(url).render_as_string(hide_password=False)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with write_engine(engine).connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
