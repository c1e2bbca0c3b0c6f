"""The stack tests use the session's dev server, worker and CLI fixtures of tests/conftest.py,
and a fresh PostgreSQL database where a test runs the processes on PostgreSQL."""

import pytest
from sqlalchemy.engine import URL

from tests.conftest import Cli
from tests.store.conftest import PostgresDatabases, postgres_databases

__all__ = ["Cli", "postgres_databases"]


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> URL:
    """A new, empty PostgreSQL database (dropped at the session's end)."""
    return postgres_databases.create()
