"""Heartbeats for activities that may run long: while a worker is alive its activities beat,
so when it dies Temporal notices within the heartbeat timeout (seconds), not the whole
start-to-close timeout (minutes), and retries the activity on another worker.

A beat can carry what the attempt has done so far (`progress`): the next attempt of the same
activity reads it back (`attempt_progress`), e.g. that the provider already accepted a message
whose ledger row the attempt could not write."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from temporalio import activity

T = TypeVar("T")

# The details the running attempt's beats carry (a list shared with its beat task).
_DETAILS: ContextVar[list[Any] | None] = ContextVar("rapport_heartbeat_details", default=None)


async def heartbeating(work: Awaitable[T], *details: Any) -> T:
    """`work`, heartbeating (with `details`, or what `progress` set since) every third of the
    heartbeat timeout while it runs. Outside a worker, or without a heartbeat timeout, just
    `work`."""
    try:
        info = activity.info()
    except RuntimeError:
        return await work
    if info.heartbeat_timeout is None:
        return await work
    interval = max(info.heartbeat_timeout.total_seconds() / 3, 0.05)
    current = list(details)
    token = _DETAILS.set(current)

    async def beat() -> None:
        # The first beat only after `interval`: work that is over sooner costs no heartbeat
        # round trip to the server.
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(*current)

    beating = asyncio.create_task(beat())
    try:
        return await work
    finally:
        beating.cancel()
        _DETAILS.reset(token)


def progress(*details: Any) -> None:
    """Beat now with `details`, and keep beating with them: if this attempt fails or dies, the
    next one finds them in `attempt_progress()`. A no-op outside a worker."""
    current = _DETAILS.get()
    if current is not None:
        current[:] = details
    with contextlib.suppress(RuntimeError):
        activity.heartbeat(*details)


def attempt_progress() -> Sequence[Any]:
    """The details of the previous attempt's last beat (empty for a first attempt, or outside
    a worker)."""
    try:
        return activity.info().heartbeat_details
    except RuntimeError:
        return ()
