"""Versions of the journey workflow types as a later release might change them, for
test_replay.py.

The change: refresh the contact before every send, which adds a command (a local activity) where
recorded runs have none. The `Patched…` classes guard it with `workflow.patched`, as
docs/workflows.md says to; the `Unguarded…` ones do not. One pair per registered type: the
current `JourneyV4`, `JourneyV3`, `JourneyV2` and the legacy `JourneyWorkflow`. (A module of
its own: the workflow sandbox re-imports the module that defines a workflow.)
"""

from __future__ import annotations

from temporalio import workflow

from workflows.contracts import JourneyInput, JourneyResult
from workflows.journey_workflow import (
    LEGACY_WORKFLOW_TYPE,
    V2_WORKFLOW_TYPE,
    V3_WORKFLOW_TYPE,
    WORKFLOW_TYPE,
    JourneyV2Workflow,
    JourneyV3Workflow,
    JourneyWorkflow,
    LegacyJourneyWorkflow,
)
from workflows.model import SendStep

PATCH = "refresh-contact-before-send"


class _Patched(JourneyWorkflow):
    async def _execute(self, index: int) -> int | None:
        if isinstance(self.plan.step(index), SendStep) and workflow.patched(PATCH):
            await self._refresh_contact()
        return await super()._execute(index)


class _Unguarded(JourneyWorkflow):
    async def _execute(self, index: int) -> int | None:
        if isinstance(self.plan.step(index), SendStep):
            await self._refresh_contact()
        return await super()._execute(index)


@workflow.defn(name=WORKFLOW_TYPE)
class PatchedJourneyWorkflow(_Patched):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)


@workflow.defn(name=WORKFLOW_TYPE)
class UnguardedJourneyWorkflow(_Unguarded):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)


@workflow.defn(name=V3_WORKFLOW_TYPE)
class PatchedJourneyV3Workflow(_Patched, JourneyV3Workflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)


@workflow.defn(name=V3_WORKFLOW_TYPE)
class UnguardedJourneyV3Workflow(_Unguarded, JourneyV3Workflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)


@workflow.defn(name=V2_WORKFLOW_TYPE)
class PatchedJourneyV2Workflow(_Patched, JourneyV2Workflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)


@workflow.defn(name=V2_WORKFLOW_TYPE)
class UnguardedJourneyV2Workflow(_Unguarded, JourneyV2Workflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)


@workflow.defn(name=LEGACY_WORKFLOW_TYPE)
class PatchedLegacyJourneyWorkflow(_Patched, LegacyJourneyWorkflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)


@workflow.defn(name=LEGACY_WORKFLOW_TYPE)
class UnguardedLegacyJourneyWorkflow(_Unguarded, LegacyJourneyWorkflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyResult:
        return await super().run(input)
