"""Building the Temporal worker: the workflows, the activities and the sandbox they run in.

The one place a worker is put together (`rapport worker`, the embedded stack, the simulator, tests).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.journey_activities import JourneyActivities
from activities.segment_activities import SegmentActivities
from providers import email_provider, sms_provider
from providers.base import PROVIDER_THREADS
from settings import Settings
from store import Store
from workflows.journey_workflow import (
    JourneyV2Workflow,
    JourneyV3Workflow,
    JourneyWorkflow,
    LegacyJourneyWorkflow,
)
from workflows.segment_workflow import SegmentTickWorkflow
from workflows.traits_workflow import TraitsRefreshWorkflow

WORKFLOWS = [
    JourneyWorkflow,
    JourneyV3Workflow,
    JourneyV2Workflow,
    LegacyJourneyWorkflow,
    SegmentTickWorkflow,
    TraitsRefreshWorkflow,
]
# Pure libraries the workflow evaluates expressions with: loaded once, outside the sandbox.
PASSTHROUGH = (
    "jinja2",
    "markupsafe",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "croniter",
    "babel",
    "yaml",
    "workflows",
    "rendering",
    "activities",
    "providers",
    "store",
    "settings",
    "sqlalchemy",
    "httpx",
)


# What the worker asks a workflow in the sandbox for each payload it encodes or decodes, which
# the sandbox answers through an `exec` under its importer (see `DirectContextRunner`).
_ASKED_PER_PAYLOAD = ("get_serialization_context", "get_external_store_context")


@dataclass(frozen=True)
class DirectContextRunner(SandboxedWorkflowRunner):
    """The SDK's sandbox, with the per-payload questions answered directly.

    For every payload of every activation and completion (replays included), the worker asks
    the workflow's instance which serialization context the payload's command has; the
    sandboxed instance answers by `exec`-ing a call to the same method of the instance inside
    the sandbox, under the sandbox's importer. That method is SDK bookkeeping (it reads the
    instance's pending commands and builds a context object; no workflow code, no import), so
    calling it directly gives the same answer: on the bench's 2-core machine it was the largest
    single cost of a workflow task (~0.14 ms a payload, ~27 payloads in a 9-event replay;
    docs/performance.md). Activations themselves still run under the importer, as before.
    Should an SDK release change the sandbox's internals, the instance is left as the SDK made
    it (`tests/workflows/test_workflow_runner.py` says whether the shortcut is in effect)."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        instance = super().create_instance(det)
        namespace = getattr(instance, "globals_and_locals", None)
        inside = namespace.get("__temporal_in_sandbox") if isinstance(namespace, dict) else None
        answers = {name: getattr(inside, name, None) for name in _ASKED_PER_PAYLOAD}
        if all(callable(answer) for answer in answers.values()):
            for name, answer in answers.items():
                setattr(instance, name, answer)
        return instance


def workflow_runner() -> SandboxedWorkflowRunner:
    return DirectContextRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_activities(settings: Settings, store: Store) -> JourneyActivities:
    """The journey activities on `store`, which the composition root opens with the project's
    traits installed (`runtime.traits.open_store`), so that an `update:` step re-derives the
    traits that read the attributes it writes."""
    return JourneyActivities(
        store=store,
        email=email_provider(settings),
        sms=sms_provider(settings),
        settings=settings,
    )


def build_worker(
    client: Client,
    activities: JourneyActivities,
    task_queue: str,
    *,
    more_activities: Sequence[Callable[..., Any]] = (),
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """The worker; `more_activities`: those its composition root adds (the traits schedule's
    `runtime.trait_activities`, which routes events and so sits above this module);
    `interceptors`: e.g. `runtime.worker_metrics.MetricsInterceptor`."""
    segments = SegmentActivities(activities.store, client, task_queue)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[*activities.all(), *segments.all(), *more_activities],
        workflow_runner=workflow_runner(),
        # After a worker dies, its cached runs move to another worker this soon (default 10 s).
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        max_concurrent_activities=PROVIDER_THREADS,  # a provider thread for each
        max_cached_workflows=activities.settings.worker_cached_runs,
        interceptors=interceptors,
    )


def settle_heap() -> None:
    """Leave what the process built before its worker runs (modules, compiled plans and
    templates, the SDK's and SQLAlchemy's tables) out of the garbage collector's full
    collections, which otherwise walk all of it every few seconds under load and stop every
    run in flight meanwhile: on the bench's 2-core machine the longest pause fell from
    ~150 ms to ~30 ms (docs/performance.md). Objects made later are collected as before."""
    gc.collect()
    gc.freeze()


@contextmanager
def settled_heap() -> Iterator[None]:
    """`settle_heap` for as long as the worker runs (the composition roots wrap its run and
    shutdown in this), then the frozen objects handed back to the collector: the interpreter's
    exit then tears them down as it would have without the freeze, the Temporal client's
    native runtime among them, rather than leaving them to outlive its last collection."""
    settle_heap()
    try:
        yield
    finally:
        gc.unfreeze()
