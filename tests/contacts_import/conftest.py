"""The store tests' `store` fixture: the import tests run on SQLite and on PostgreSQL."""

from tests.store.conftest import (  # noqa: F401
    backend,
    postgres_databases,
    postgres_store_url,
    store,
    store_url,
)
