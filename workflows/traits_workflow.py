"""`TraitsRefreshWorkflow`: what the nightly `traits:rfm` schedule starts (SPEC §5b).

One activity (`refresh_traits`, called by name so this module imports no I/O code) recomputes
the rolling-window traits and RFM in SQL and routes the `trait_changed` events that caused;
retried with backoff if the database or Temporal is away.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

REFRESH_TRAITS = "refresh_traits"
SCHEDULE_ID = "traits:rfm"
WORKFLOW_ID = "traits-refresh"


@workflow.defn(name="TraitsRefreshWorkflow")
class TraitsRefreshWorkflow:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        result: dict[str, Any] = await workflow.execute_activity(
            REFRESH_TRAITS,
            start_to_close_timeout=timedelta(hours=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=10),
        )
        return result
