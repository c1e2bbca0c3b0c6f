"""The worker's heap: frozen out of full collections while the worker runs, handed back to the
collector when it stops (so the interpreter's exit tears down what the freeze kept)."""

from __future__ import annotations

import gc

from runtime.workers import settled_heap


def test_the_heap_is_frozen_while_the_worker_runs_and_handed_back_when_it_stops() -> None:
    with settled_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
