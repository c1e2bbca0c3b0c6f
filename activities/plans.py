"""Plans by reference: runs carry a journey and a version; the plan behind them lives in the
store (`store.plans`), written before any run of it starts, and is read here through an
in-process LRU cache, so a worker parses each version once however many runs use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from weakref import WeakKeyDictionary

from temporalio.exceptions import ApplicationError

from rendering.bundle import TemplateBundle
from store import Store
from workflows.contracts import TemplateRef
from workflows.expression_sites import RunReads, run_reads
from workflows.plan import JourneyPlan, template_key

PLANS_CACHED = 64

# The (journey, version) pairs each store is known to hold, so a start writes its plan once per
# process, not once per run.
_saved: WeakKeyDictionary[Store, set[tuple[str, str]]] = WeakKeyDictionary()


def save_plan(store: Store, plan: JourneyPlan) -> None:
    """Make sure the store holds `plan` (under its journey and version) before a run uses it."""
    saved = _saved.setdefault(store, set())
    key = (plan.journey_id, plan.version)
    if key not in saved:
        store.plans.save(plan.journey_id, plan.version, plan.model_dump(mode="json"))
        saved.add(key)


def save_plans(store: Store, plans: Iterable[JourneyPlan]) -> None:
    for plan in plans:
        save_plan(store, plan)


class PlanNotFoundError(ApplicationError):
    """No stored plan for a run's version: not retryable (the plan is written before the start)."""

    def __init__(self, journey: str, version: str) -> None:
        super().__init__(
            f"no stored plan for journey {journey!r} version {version!r}",
            type="PlanNotFound",
            non_retryable=True,
        )


class PlanCache:
    def __init__(self, store: Store, size: int = PLANS_CACHED) -> None:
        self._store = store
        self.plan = lru_cache(maxsize=size)(self._load)
        # A `JourneyV2` run's view of a version (`JourneyPlan.run_document`, `run_reads`;
        # `open_run` judges the audience).
        self.run_document = lru_cache(maxsize=size)(
            lambda journey, version: self.plan(journey, version).run_document()
        )
        self.run_reads = lru_cache(maxsize=size)(
            lambda journey, version: run_reads(self.plan(journey, version).journey, audience=False)
        )
        # What a JourneyV2 run opening at a step reads before its first wait.
        self.opening_reads = lru_cache(maxsize=size * 4)(self._opening_reads)

    def _load(self, journey: str, version: str) -> JourneyPlan:
        document = self._store.plans.document(journey, version)
        if document is None:
            raise PlanNotFoundError(journey, version)
        return JourneyPlan.model_validate(document)

    def _opening_reads(self, journey: str, version: str, start: int) -> RunReads:
        plan = self.plan(journey, version)
        return run_reads(plan.journey, audience=False, steps=plan.before_wait(start))

    def template(self, ref: TemplateRef) -> TemplateBundle:
        plan = self.plan(ref.journey, ref.version)
        return plan.templates[template_key(ref.channel, ref.name)]
