"""Two versions of `JourneyWorkflow` as a later release might change it, for test_replay.py.

The change: refresh the contact before every send, which adds a command (a local activity) where
recorded runs have none. `PatchedJourneyWorkflow` guards it with `workflow.patched`, as
docs/workflows.md says to; `UnguardedJourneyWorkflow` does not. (A module of its own: the
workflow sandbox re-imports the module that defines a workflow.)
"""

from __future__ import annotations

from temporalio import workflow

from workflows.contracts import JourneyInput, JourneyResult
from workflows.journey_workflow import JourneyWorkflow
from workflows.model import SendStep

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
