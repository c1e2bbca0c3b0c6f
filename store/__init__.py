"""The durable data layer (SPEC §5): contacts, events, consent, suppressions, runs and the
message ledger, on SQLite or PostgreSQL through SQLAlchemy 2, with Alembic migrations.

    store = Store.open()                      # settings' database, migrated to head
    store.upsert_contact(ContactRecord(id="u1", email="ada@example.com"))
    entry, created = store.ledger.claim(key, contact_id="u1", channel="email")
"""

from store.db import make_engine, migrate
from store.ledger import MessageLedger, UnknownMessageError
from store.records import (
    ConsentRecord,
    ContactRecord,
    ErasureResult,
    EventRecord,
    LedgerEntry,
    RunRecord,
)
from store.repository import Store

__all__ = [
    "ConsentRecord",
    "ContactRecord",
    "ErasureResult",
    "EventRecord",
    "LedgerEntry",
    "MessageLedger",
    "RunRecord",
    "Store",
    "UnknownMessageError",
    "make_engine",
    "migrate",
]
