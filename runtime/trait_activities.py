"""The activity of the nightly `traits:rfm` schedule (`runtime.trait_schedule`): recompute the
rolling windows, RFM and the derived traits, then route the `trait_changed` events that caused.

Registered by the worker's composition roots (`rapport worker`, the embedded stack), which pass
it to `runtime.workers.build_worker`: it routes events, so it sits above the worker builder.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from temporalio.client import Client

from runtime.router import EventIndex, route_trait_changes
from runtime.traits import listened_traits, load_traits, rebuild
from settings import Settings
from store import Store
from workflows.project import compile_project
from workflows.traits_workflow import REFRESH_TRAITS


class TraitActivities:
    def __init__(self, store: Store, client: Client, settings: Settings) -> None:
        self.store = store
        self.client = client
        self.settings = settings

    @activity.defn(name=REFRESH_TRAITS)
    async def refresh_traits(self) -> dict[str, Any]:
        settings = self.settings
        program = await asyncio.to_thread(load_traits, settings)
        compiled = await asyncio.to_thread(compile_project, settings)
        index = EventIndex.build(compiled.plans)  # journeys with errors are left out
        # trait_changed for the traits the journeys listen to now (docs/traits.md).
        self.store.use_traits(
            self.store.trait_updater, announced=listened_traits(compiled.plans, program)
        )
        report = await asyncio.to_thread(rebuild, self.store, program, settings, windows_only=True)

        async def client() -> Client:
            return self.client

        routed = await route_trait_changes(
            self.store,
            index,
            client,
            task_queue=settings.temporal_task_queue,
            max_age=settings.trigger_max_age_delta,
        )
        return {**report.as_json(), "runs_started": len([r for r in routed.started if r.started])}

    def all(self) -> list[Any]:
        return [self.refresh_traits]
