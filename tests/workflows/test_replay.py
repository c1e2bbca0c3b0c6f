"""Safe changes to running workflows: the recorded histories of the sample journeys' main paths
replay with the current `JourneyWorkflow`, and a change guarded by `workflow.patched` keeps them
replaying where the same change unguarded does not (docs/workflows.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from runtime.workers import WORKFLOWS, workflow_runner
from tests.workflows.patched_workflows import PatchedJourneyWorkflow, UnguardedJourneyWorkflow
from tests.workflows.record_histories import HISTORIES
from tests.workflows.sample_paths import PATHS

RECORDED = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


async def replay(workflows: list[Any], history: WorkflowHistory) -> BaseException | None:
    replayer = Replayer(
        workflows=workflows,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure


def test_every_sample_path_has_a_recorded_history() -> None:
    assert {path.name for path in PATHS} <= {file.name.split(".")[0] for file in RECORDED}


@pytest.mark.parametrize("recorded", RECORDED, ids=[path.stem for path in RECORDED])
async def test_a_recorded_history_replays_with_the_current_workflow(recorded: Path) -> None:
    assert await replay(WORKFLOWS, load(recorded)) is None


async def test_a_change_behind_workflow_patched_still_replays_old_histories() -> None:
    onboarding = load(HISTORIES / "onboarding_converts.json")
    assert await replay([PatchedJourneyWorkflow], onboarding) is None
    # The same change without the guard breaks the runs already in flight.
    failure = await replay([UnguardedJourneyWorkflow], onboarding)
    assert isinstance(failure, NondeterminismError), failure
