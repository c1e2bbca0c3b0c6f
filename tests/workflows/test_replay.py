"""Safe changes to running workflows: the recorded histories of the sample journeys' main paths
replay with the current `JourneyWorkflow`, and a change guarded by `workflow.patched` keeps them
replaying where the same change unguarded does not (docs/workflows.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from runtime.payloads import data_converter
from runtime.workers import WORKFLOWS, workflow_runner
from tests.workflows.patched_workflows import (
    PatchedJourneyV2Workflow,
    PatchedJourneyV3Workflow,
    PatchedJourneyWorkflow,
    PatchedLegacyJourneyWorkflow,
    UnguardedJourneyV2Workflow,
    UnguardedJourneyV3Workflow,
    UnguardedJourneyWorkflow,
    UnguardedLegacyJourneyWorkflow,
)
from tests.workflows.record_histories import HISTORIES
from tests.workflows.sample_paths import PATHS
from workflows.journey_workflow import (
    LEGACY_WORKFLOW_TYPE,
    V2_WORKFLOW_TYPE,
    V3_WORKFLOW_TYPE,
    WORKFLOW_TYPE,
)

RECORDED = sorted(HISTORIES.glob("*.json"))
LEGACY_PAIR = (PatchedLegacyJourneyWorkflow, UnguardedLegacyJourneyWorkflow)


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


async def replay(workflows: list[Any], history: WorkflowHistory) -> BaseException | None:
    replayer = Replayer(
        workflows=workflows,
        data_converter=data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure


def test_every_sample_path_has_a_recorded_history() -> None:
    assert {path.name for path in PATHS} <= {file.name.split(".")[0] for file in RECORDED}


@pytest.mark.parametrize("recorded", RECORDED, ids=[path.stem for path in RECORDED])
async def test_a_recorded_history_replays_with_the_current_workflow(recorded: Path) -> None:
    assert await replay(WORKFLOWS, load(recorded)) is None


@pytest.mark.parametrize(
    ("recorded", "patched", "unguarded"),
    [
        ("onboarding_converts.json", *LEGACY_PAIR),
        ("onboarding_converts.lean.json", *LEGACY_PAIR),
        ("onboarding_converts.v2.json", PatchedJourneyV2Workflow, UnguardedJourneyV2Workflow),
        ("onboarding_converts.v3.json", PatchedJourneyV3Workflow, UnguardedJourneyV3Workflow),
        ("onboarding_converts.v4.json", PatchedJourneyWorkflow, UnguardedJourneyWorkflow),
    ],
    ids=["legacy", "legacy-lean", "v2", "v3", "v4"],
)
async def test_a_change_behind_workflow_patched_still_replays_old_histories(
    recorded: str, patched: type, unguarded: type
) -> None:
    history = load(HISTORIES / recorded)
    assert await replay([patched], history) is None
    # The same change without the guard breaks the runs already in flight. (In a JourneyV3
    # history the added local activity meets the send's local-activity marker, whose result
    # fails to decode as its own before the types are compared: a failed task all the same.)
    failure = await replay([unguarded], history)
    assert isinstance(failure, NondeterminismError | RuntimeError), failure
    assert isinstance(failure, NondeterminismError) or "Failed decoding" in str(failure)


def test_each_history_is_of_the_type_its_name_says() -> None:
    """Runs start as JourneyV4 (`.v4.` files); those recorded before it stay of their types,
    JourneyV3 (`.v3.`), JourneyV2 (`.v2.`) and the legacy type (the rest), and replay on
    `JourneyV3Workflow`, `JourneyV2Workflow` and `LegacyJourneyWorkflow`: a type is never
    re-recorded under another's name."""
    for recorded in RECORDED:
        started = json.loads(recorded.read_text(encoding="utf-8"))["events"][0]
        kind = started["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
        expected = (
            WORKFLOW_TYPE
            if ".v4." in recorded.name
            else V3_WORKFLOW_TYPE
            if ".v3." in recorded.name
            else V2_WORKFLOW_TYPE
            if ".v2." in recorded.name
            else LEGACY_WORKFLOW_TYPE
        )
        assert kind == expected, recorded.name
