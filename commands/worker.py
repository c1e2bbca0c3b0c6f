"""`rapport worker`: the Temporal worker on its own, for real deployments (run as many as you
like against one namespace and task queue). SIGINT/SIGTERM shut it down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal

from runtime.starter import connect_client, temporal_address
from runtime.trait_activities import TraitActivities
from runtime.workers import build_activities, build_worker
from settings import Settings, get_settings

log = logging.getLogger("rapport.worker")


async def serve_worker(settings: Settings) -> None:
    client = await connect_client(settings, fail_fast=False)
    activities = build_activities(settings)
    traits = TraitActivities(activities.store, client, settings)
    worker = build_worker(
        client, activities, settings.temporal_task_queue, more_activities=traits.all()
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling task queue %r on %s (namespace %r); email via %s, SMS via %s",
        settings.temporal_task_queue,
        temporal_address(settings),
        settings.temporal_namespace,
        activities.email.name,
        activities.sms.name,
    )
    running = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            running.result()
        else:
            log.info("stopping the worker")
            await worker.shutdown()
    finally:
        stopping.cancel()
        activities.store.close()


def command() -> None:
    """Run the Temporal worker (journey workflows and their activities)."""
    from runtime.stack import configure_logging

    settings = get_settings()
    settings.check_serving()  # the worker signs the unsubscribe links it sends
    configure_logging()
    asyncio.run(serve_worker(settings))
