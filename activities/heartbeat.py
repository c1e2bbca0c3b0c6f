"""Heartbeats for activities that may run long: while a worker is alive its activities beat,
so when it dies Temporal notices within the heartbeat timeout (seconds), not the whole
start-to-close timeout (minutes), and retries the activity on another worker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from temporalio import activity

T = TypeVar("T")


async def heartbeating(work: Awaitable[T], *details: Any) -> T:
    """`work`, heartbeating (with `details`) every third of the heartbeat timeout while it runs.
    Outside a worker, or without a heartbeat timeout, just `work`."""
    try:
        info = activity.info()
    except RuntimeError:
        return await work
    if info.heartbeat_timeout is None:
        return await work
    interval = max(info.heartbeat_timeout.total_seconds() / 3, 0.05)

    async def beat() -> None:
        # The first beat only after `interval`: work that is over sooner costs no heartbeat
        # round trip to the server.
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(*details)

    beating = asyncio.create_task(beat())
    try:
        return await work
    finally:
        beating.cancel()
