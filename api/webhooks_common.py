"""What the provider webhooks and the unsubscribe page share: a capped body read, and handing
the engagement events they produce to `ingest_event` (stored -> routed -> marked routed)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import Request

from api.body import KB, read_capped
from api.ingest import ingest_event
from api.state import ApiState
from consent.feedback import Applied
from store.records import EventRecord

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "The request carries no signature."},
    403: {"description": "The signature does not match, is stale, or the webhook is disabled."},
    413: {"description": "The body is too large."},
    503: {"description": "Temporal or the database is unreachable; the provider retries."},
}


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The raw body (signatures cover the exact bytes); 413 past `limit`."""
    return await read_capped(request, limit, what, limit)


async def deliver(state: ApiState, events: list[EventRecord]) -> None:
    """Store and route each event; `TemporalUnavailableError` (503) if Temporal refuses, with
    the event kept stored-but-unrouted for the provider's retry to finish."""
    for event in events:
        await ingest_event(
            state.store,
            state.index,
            event,
            client=state.temporal.get,
            task_queue=state.task_queue,
            max_age=state.settings.trigger_max_age_delta,
        )


async def deliver_applied(state: ApiState, source: str, results: Sequence[Applied]) -> None:
    """`deliver` the events of applied provider callbacks, then remember the callbacks as
    applied, so a replay of any of them — about a known contact or not — changes nothing. Not
    before: a callback whose events could not be routed (503) must be finished by the retry."""
    await deliver(state, [event for result in results for event in result.events])
    applied = [result.provider_event for result in results if result.provider_event]
    await asyncio.to_thread(state.store.mark_provider_events_applied, source, applied)


def size_limit(kilobytes: int) -> int:
    return kilobytes * KB
