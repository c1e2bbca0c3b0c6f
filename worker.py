"""The Temporal worker: runs journey workflows and their activities (`rapport worker`).

Run as many as you like against one Temporal namespace and task queue; they share the work.
"""

from __future__ import annotations

import asyncio

from runtime.temporal import connect
from runtime.workers import build_activities, build_worker
from settings import Settings, get_settings


async def run_worker(settings: Settings) -> None:
    client = await connect(settings)
    activities = build_activities(settings)
    try:
        await build_worker(client, activities, settings.temporal_task_queue).run()
    finally:
        activities.store.close()


def main() -> None:
    asyncio.run(run_worker(get_settings()))


if __name__ == "__main__":
    main()
