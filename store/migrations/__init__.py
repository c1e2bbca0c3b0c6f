"""Alembic migrations of the store schema (run with `store.db.migrate`)."""
