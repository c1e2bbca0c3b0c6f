"""Waiting in tests: poll until something is true, and fail loudly when it never is.

A helper that returned quietly on time-out let its caller go on as if the awaited thing had
happened; every wait here raises `WaitTimeout` naming what was awaited and the last value seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """What a test waited for did not happen in time."""


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    what: str,
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    seen: Callable[[T], Any] | None = None,
) -> T:
    """Poll `check()` (sync or async) until it returns something truthy, and return it; after
    `timeout` seconds raise `WaitTimeout` with `what` and the last value (or `seen(value)`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            shown = seen(value) if seen is not None else value  # type: ignore[arg-type]
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}; saw {shown!r}")
        await asyncio.sleep(interval)
