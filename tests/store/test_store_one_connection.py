"""`Store.one_connection()`: an activity's store calls on one connection, with the same
transactions as one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import URL

from store import ContactRecord, RunRecord, Store
from store.records import RunStepRecord

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _run() -> RunRecord:
    return RunRecord(
        workflow_id="wf-1",
        run_id="r1",
        contact_id="u1",
        journey="onboarding",
        version="v1",
        entered_at=T0,
    )


def test_calls_in_the_block_check_out_one_connection(store: Store) -> None:
    store.upsert_contact(ContactRecord(id="u1", email="ada@example.com"))
    checkouts: list[object] = []

    def checkout(*args: Any) -> None:
        checkouts.append(args)

    event.listen(store.engine.pool, "checkout", checkout)
    try:
        with store.one_connection():
            contact = store.get_contact("u1")
            claim = store.ledger.claim("k1", contact_id="u1", channel="email")
            assert store.is_suppressed("email", "ada@example.com") is None
            assert store.consent("u1", "email") == "subscribed"
            store.set_journey_paused("onboarding", True)  # an ORM write
            paused = store.paused_journeys()
    finally:
        event.remove(store.engine.pool, "checkout", checkout)
    assert len(checkouts) == 1
    assert contact is not None and contact.email == "ada@example.com"
    assert claim.created and paused == {"onboarding"}


def test_writes_in_the_block_are_committed_as_each_call_returns(
    store: Store, store_url: URL
) -> None:
    with Store.open(store_url, migrate_schema=False) as other, store.one_connection():
        store.record_run(_run())
        # Seen from another connection before the block ends.
        assert other.get_run("wf-1") is not None
        assert store.get_run("wf-1") is not None
        store.end_run("wf-1", outcome="converted", ended_at=T0)
        ended = other.get_run("wf-1")
        assert ended is not None and ended.outcome == "converted"


def test_a_failed_call_leaves_the_block_usable_and_rolls_back_its_write(store: Store) -> None:
    with store.one_connection():
        store.record_run(_run())
        with pytest.raises(LookupError):
            # No such run: the write fails inside its transaction.
            store.record_run_steps("wf-missing", "r1", [_step()])
        assert store.get_run("wf-1") is not None
        with pytest.raises(ValueError, match="channel"):
            store.consent("u1", "fax")  # type: ignore[arg-type]
        assert store.contact_exists("u1") is False
    assert store.list_runs() and store.list_runs()[0].workflow_id == "wf-1"


def test_blocks_nest_and_end_with_the_outer_one(store: Store) -> None:
    with store.one_connection():
        with store.one_connection():
            store.upsert_contact(ContactRecord(id="u1"))
        assert store.contact_exists("u1")
    assert store.contact_exists("u1")


def _step() -> RunStepRecord:
    return RunStepRecord(step_id="welcome", kind="send", reached_at=T0, seq=1)


def test_one_transaction_commits_every_write_at_its_end(store: Store, store_url: URL) -> None:
    with Store.open(store_url, migrate_schema=False) as other:
        with store.one_transaction():
            store.record_run(_run())
            store.record_run_steps("wf-1", "r1", [_step()])
            store.end_run("wf-1", outcome="converted", ended_at=T0)
            assert other.get_run("wf-1") is None  # not committed yet
            assert store.get_run("wf-1") is not None  # its own writes, seen inside
        ended = other.get_run("wf-1")
        assert ended is not None and ended.outcome == "converted"


def test_one_transaction_that_fails_writes_nothing(store: Store) -> None:
    with pytest.raises(LookupError), store.one_transaction():
        store.record_run(_run())
        store.record_run_steps("wf-missing", "r1", [_step()])
    assert store.get_run("wf-1") is None
