"""Journey runs: entry, end, variants, listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store import RunRecord, Store

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def run(workflow_id: str, **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "workflow_id": workflow_id,
        "run_id": "r1",
        "contact_id": "u1",
        "journey": "onboarding",
        "version": "sha256:abc",
        "entered_at": T0,
    }
    values.update(fields)
    return RunRecord.model_validate(values)


def test_record_run_is_idempotent(store: Store) -> None:
    first = store.record_run(run("wf-1", holdout=True, data={"offer": "WELCOME10"}))
    again = store.record_run(run("wf-1", holdout=False, data={}))
    assert again == first
    assert first.id is not None and first.holdout and first.status == "running"
    assert first.entered_at == T0


def test_end_run_keeps_the_first_ending(store: Store) -> None:
    store.record_run(run("wf-1"))
    ended = store.end_run("wf-1", outcome="converted", ended_at=T0 + timedelta(days=1))
    assert ended is not None
    assert (ended.status, ended.outcome, ended.ended_at) == (
        "completed",
        "converted",
        T0 + timedelta(days=1),
    )
    retried = store.end_run("wf-1", outcome="exited", status="cancelled")
    assert retried == ended
    assert store.end_run("missing", outcome="x") is None


def test_end_run_refuses_running_status(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot be 'running'"):
        store.end_run("wf-1", status="running")


def test_update_run_sets_split_variant(store: Store) -> None:
    store.record_run(run("wf-1"))
    updated = store.update_run("wf-1", variant="b")
    assert updated is not None and updated.variant == "b"
    got = store.get_run("wf-1")
    assert got is not None and got.variant == "b"
    assert store.update_run("missing", variant="a") is None


def test_list_runs_filters_by_journey_and_status(store: Store) -> None:
    store.record_run(run("wf-1", entered_at=T0))
    store.record_run(run("wf-2", entered_at=T0 + timedelta(hours=1), contact_id="u2"))
    store.record_run(run("wf-3", journey="winback", entered_at=T0 + timedelta(hours=2)))
    store.end_run("wf-1", outcome="completed")

    assert [r.workflow_id for r in store.list_runs()] == ["wf-3", "wf-2", "wf-1"]
    assert [r.workflow_id for r in store.list_runs(journey="onboarding")] == ["wf-2", "wf-1"]
    assert [r.workflow_id for r in store.list_runs(status="running")] == ["wf-3", "wf-2"]
    assert [r.workflow_id for r in store.list_runs("onboarding", "completed")] == ["wf-1"]
    assert [r.workflow_id for r in store.list_runs(limit=1)] == ["wf-3"]


def test_runs_for_contact_newest_first(store: Store) -> None:
    store.record_run(run("wf-1", entered_at=T0))
    store.record_run(run("wf-1", run_id="r2", entered_at=T0 + timedelta(days=1)))
    store.record_run(run("wf-9", contact_id="u2"))
    runs = store.runs_for_contact("u1")
    assert [(r.workflow_id, r.run_id) for r in runs] == [("wf-1", "r2"), ("wf-1", "r1")]
    assert store.runs_for_contact("u1", journey="winback") == []
