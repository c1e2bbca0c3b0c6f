"""The worker's sandbox (`runtime.workers.DirectContextRunner`): a workflow instance answers the
worker's per-payload question (which serialization context) without an `exec` into the sandbox,
and gives the answer the sandbox route gives. Fails when an SDK release changes the sandbox's
internals so that the shortcut no longer applies (the runner then leaves instances as the SDK
makes them, which is correct but slower: docs/performance.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from temporalio import workflow
from temporalio.converter import WorkflowSerializationContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxRestrictions

from runtime.workers import PASSTHROUGH, DirectContextRunner
from workflows.journey_workflow import JourneyWorkflow


@dataclass(frozen=True)
class KeepingRunner(DirectContextRunner):
    """The runner, keeping the instances it creates."""

    created: ClassVar[list[WorkflowInstance]] = []

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        instance = super().create_instance(det)
        self.created.append(instance)
        return instance


async def test_a_workflow_instance_answers_the_serialization_context_as_the_sandbox_does() -> None:
    runner = KeepingRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )
    runner.prepare_workflow(workflow._Definition.must_from_class(JourneyWorkflow))
    [instance] = runner.created
    assert "get_serialization_context" in vars(instance)  # the shortcut is in effect
    assert "get_external_store_context" in vars(instance)
    through_the_sandbox = type(instance).get_serialization_context(instance, None)
    direct = instance.get_serialization_context(None)
    assert direct == through_the_sandbox
    assert direct == WorkflowSerializationContext(
        namespace="sandbox-validate-namespace", workflow_id="sandbox-validate-workflow_id"
    )
