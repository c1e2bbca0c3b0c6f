"""Safe changes to running workflows: the recorded histories of the sample journeys' main paths
replay with the current `JourneyWorkflow`, and a change guarded by `workflow.patched` keeps them
replaying where the same change unguarded does not (docs/workflows.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from runtime.temporal import WORKFLOWS, workflow_runner
from tests.workflows.record_histories import HISTORIES
from tests.workflows.sample_paths import PATHS
from workflows.contracts import JourneyInput, JourneyResult
from workflows.journey_workflow import JourneyWorkflow
from workflows.model import SendStep

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


# A change to the workflow as a later release might make it: refresh the contact before every
# send. That adds a command (a local activity) where recorded runs have none.
PATCH = "refresh-contact-before-send"


@workflow.defn(name="JourneyWorkflow")
class PatchedJourneyWorkflow(JourneyWorkflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)

    async def _execute(self, index: int) -> int | None:
        if isinstance(self.plan.step(index), SendStep) and workflow.patched(PATCH):
            await self._refresh_contact()
        return await super()._execute(index)


@workflow.defn(name="JourneyWorkflow")
class UnguardedJourneyWorkflow(JourneyWorkflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)

    async def _execute(self, index: int) -> int | None:
        if isinstance(self.plan.step(index), SendStep):
            await self._refresh_contact()
        return await super()._execute(index)


async def test_a_change_behind_workflow_patched_still_replays_old_histories() -> None:
    onboarding = load(HISTORIES / "onboarding_converts.json")
    assert await replay([PatchedJourneyWorkflow], onboarding) is None
    # The same change without the guard breaks the runs already in flight.
    failure = await replay([UnguardedJourneyWorkflow], onboarding)
    assert failure is not None
