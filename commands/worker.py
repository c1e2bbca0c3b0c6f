"""`rapport worker`: the Temporal worker on its own, for real deployments (run as many as you
like against one namespace and task queue). SIGINT/SIGTERM shut it down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal

from activities.journey_activities import JourneyActivities
from commands.common import MetricsHost, MetricsPort
from runtime.log_format import RunLogContext
from runtime.starter import connect_client, temporal_address
from runtime.tracing import configure_tracing
from runtime.trait_activities import TraitActivities
from runtime.traits import open_store
from runtime.worker_metrics import (
    MetricsInterceptor,
    MetricsServer,
    WorkerMetrics,
    metrics_runtime,
    serve_metrics,
)
from runtime.workers import build_activities, build_worker, settled_heap
from settings import Settings, check_ports, get_settings

log = logging.getLogger("rapport.worker")


def worker_activities(settings: Settings) -> JourneyActivities:
    """The worker's activities, on the store with the project's traits installed: an `update:`
    step re-derives the traits that read the attributes it writes, as an identify does."""
    return build_activities(settings, open_store(settings))


async def serve_worker(
    settings: Settings, *, metrics_port: int | None = None, metrics_host: str = "127.0.0.1"
) -> None:
    metrics = WorkerMetrics() if metrics_port is not None else None
    runtime = metrics_runtime(metrics) if metrics else None
    client = await connect_client(settings, fail_fast=False, runtime=runtime)
    activities = worker_activities(settings)
    traits = TraitActivities(activities.store, client, settings)
    worker = build_worker(
        client,
        activities,
        settings.temporal_task_queue,
        more_activities=traits.all(),
        interceptors=[RunLogContext(), *([MetricsInterceptor(metrics)] if metrics else [])],
    )
    server: MetricsServer | None = None
    if metrics and metrics_port is not None:
        server = serve_metrics(metrics, metrics_port, metrics_host)
        log.info("worker metrics at http://%s:%d/metrics", metrics_host, metrics_port)
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
    with settled_heap():
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
            if server:
                server.close()


def command(
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run the Temporal worker (journey workflows and their activities)."""
    from runtime.stack import configure_logging

    if metrics_port is not None:
        check_ports(metrics_port=metrics_port)
    settings = get_settings()
    settings.check_serving()  # the worker signs the unsubscribe links it sends
    configure_logging(log_format=settings.log_format)
    configure_tracing(settings, "rapport-worker")
    asyncio.run(serve_worker(settings, metrics_port=metrics_port, metrics_host=metrics_host))
