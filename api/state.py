"""What the API's routes share: the store, the compiled journeys (and the event index built
from them), a Temporal client and the metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request
from temporalio.client import Client

from api.metrics import Metrics
from runtime.router import EventIndex
from settings import Settings
from store import Store
from workflows.plan import JourneyPlan

ClientFactory = Callable[[], Awaitable[Client]]


class TemporalClients:
    """One Temporal client for the app, connected on first use (so the API starts, and answers
    503, while Temporal is down) and kept once connected (the SDK reconnects by itself)."""

    def __init__(self, factory: ClientFactory) -> None:
        self._factory = factory
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self._factory()
        return self._client


@dataclass
class ApiState:
    settings: Settings
    store: Store
    temporal: TemporalClients
    plans: dict[str, JourneyPlan] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    index: EventIndex = field(init=False)

    def __post_init__(self) -> None:
        self.index = EventIndex.build(self.plans)

    @property
    def task_queue(self) -> str:
        return self.settings.temporal_task_queue


async def api_state(request: Request) -> ApiState:
    # A coroutine: FastAPI runs a plain function dependency in a worker thread, a thread hop
    # (and a wait for the GIL) on every request.
    state: ApiState = request.app.state.rapport
    return state
