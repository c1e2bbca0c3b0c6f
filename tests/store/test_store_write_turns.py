"""SQLite write transactions take turns within the process (`store.db.write_turn`): a writer
waits on a lock for the one before it, not in SQLite's sleeping busy handler; a turn not had
within the busy timeout is the store being unavailable, as a locked file is."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

import store.db
from store import ContactRecord, Store
from store.db import UNAVAILABLE_ERRORS, write_turn


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'rapport.db'}") as opened:
        opened.upsert_contact(ContactRecord(id="u1", email="ada@example.com"))
        yield opened


@contextmanager
def turn_held_elsewhere(sqlite_store: Store) -> Iterator[threading.Event]:
    """Another thread holds the store's write turn until the event yielded is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with write_turn(sqlite_store.engine):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join(10)


def claim(sqlite_store: Store, key: str) -> bool:
    return sqlite_store.ledger.claim(key, contact_id="u1", channel="email").created


def test_a_write_waits_for_the_turn_another_thread_holds_then_is_written(
    sqlite_store: Store,
) -> None:
    with ThreadPoolExecutor(1) as pool, turn_held_elsewhere(sqlite_store) as release:
        waiting: Future[bool] = pool.submit(claim, sqlite_store, "k1")
        with pytest.raises(TimeoutError):
            waiting.result(timeout=0.3)
        assert sqlite_store.ledger.get("k1") is None
        release.set()
        assert waiting.result(timeout=10) is True
    entry = sqlite_store.ledger.get("k1")
    assert entry is not None and entry.status == "queued"


def test_a_write_without_its_turn_within_the_busy_timeout_is_the_store_unavailable(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.db, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    with turn_held_elsewhere(sqlite_store), pytest.raises(UNAVAILABLE_ERRORS) as raised:
        claim(sqlite_store, "k1")
    assert "database is locked" in str(raised.value)
    assert sqlite_store.ledger.get("k1") is None


def test_a_write_inside_the_threads_own_turn_does_not_wait_for_itself(
    sqlite_store: Store,
) -> None:
    with write_turn(sqlite_store.engine), sqlite_store.one_connection():
        assert claim(sqlite_store, "k1") is True
        sqlite_store.ledger.hand_over("k1", "outbox")
    entry = sqlite_store.ledger.get("k1")
    assert entry is not None and entry.provider == "outbox"
