"""The two provider interfaces the send activities program against."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Protocol, TypeVar, runtime_checkable

from providers.messages import OutgoingEmail, OutgoingSms, SendResult

T = TypeVar("T")

# Every provider call (SendGrid, Twilio, webhooks) gives up waiting after this long, for the
# connection and for each read: an answer that slow is treated as a timeout (transient) and the
# activity is retried. The send activities' start-to-close timeout is matched to it.
HTTP_TIMEOUT_SECONDS = 15.0

# The vendors' SDKs block: their calls run in threads of their own, as many as a worker runs
# activities at once (runtime.workers), not in asyncio's default pool (cpu count + 4 threads:
# 6 on two cores), where a few slow provider answers would hold up every store read and write
# the worker's activities make meanwhile, and cap the sends in flight at a handful.
PROVIDER_THREADS = 64
_provider_pool = ThreadPoolExecutor(PROVIDER_THREADS, thread_name_prefix="rapport-provider")


async def in_provider_thread(call: Callable[..., T], *args: object) -> T:
    """`call(*args)` in a provider thread (see PROVIDER_THREADS)."""
    return await asyncio.get_running_loop().run_in_executor(_provider_pool, partial(call, *args))


@runtime_checkable
class EmailProvider(Protocol):
    """Sends one rendered email. Raises `PermanentSendError` or `TransientSendError`."""

    name: str

    async def send(self, email: OutgoingEmail) -> SendResult: ...


@runtime_checkable
class SmsProvider(Protocol):
    """Sends one rendered SMS. Raises `PermanentSendError` or `TransientSendError`."""

    name: str

    async def send(self, sms: OutgoingSms) -> SendResult: ...
