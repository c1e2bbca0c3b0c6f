"""How a worker is put together (`runtime.workers`): the runs it keeps in memory, and its heap,
frozen out of full collections while it runs and handed back to the collector when it stops
(so the interpreter's exit tears down what the freeze kept)."""

from __future__ import annotations

import gc
from pathlib import Path

from runtime.temporal import connect
from runtime.workers import build_activities, build_worker, settled_heap
from store import Store
from tests.stack.helpers import project_settings


async def test_a_worker_keeps_as_many_runs_in_memory_as_configured(
    dev_server: str, tmp_path: Path
) -> None:
    settings = project_settings(temporal_address=dev_server, worker_cached_runs=300)
    client = await connect(settings)
    store = Store.open(f"sqlite:///{tmp_path / 'rapport.db'}")
    try:
        worker = build_worker(client, build_activities(settings, store), "cache-size")
        assert worker.config()["max_cached_workflows"] == 300
    finally:
        store.close()


def test_the_heap_is_frozen_while_the_worker_runs_and_handed_back_when_it_stops() -> None:
    with settled_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
