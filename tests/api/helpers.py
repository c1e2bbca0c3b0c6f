"""Helpers of the event API tests: the served app, test journeys, contacts outside the holdout,
store snapshots and the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app, proxy_options
from api.state import ApiState
from store import Store
from tests.routing.test_route_event import CART
from tests.stack.helpers import ROOT, Stack, free_port
from workflows.compiler import compile_journey
from workflows.ids import stable_fraction
from workflows.plan import JourneyPlan

WRITE_KEY = "test-write-key"

# Starts on every `pinged` (reentry: always), sends one email and ends: a second run would be
# visible as a second email, so a duplicate that started anything would show.
PING = """\
name: Ping
trigger:
  event: pinged
reentry: always
steps:
  - id: pong
    send: email
    template: feedback/thanks
    category: transactional
"""

# An A/B split on `ab_tested`: the run records which arm it took.
AB = """\
name: A/B
trigger:
  event: ab_tested
steps:
  - id: pick
    split: {a: 1, b: 1}
  - id: a
    exit: completed
  - id: b
    exit: completed
"""


def ping_plans(directory: Path) -> dict[str, JourneyPlan]:
    plans: dict[str, JourneyPlan] = {}
    for name, source in {"ping": PING, "cart": CART, "ab": AB}.items():
        path = directory / f"{name}.yaml"
        path.write_text(source, encoding="utf-8")
        plan, diagnostics = compile_journey(path, ROOT / "templates")
        assert plan is not None, diagnostics
        plans[name] = plan
    return plans


def build_app(stack: Stack, plans: dict[str, JourneyPlan], **settings: Any) -> FastAPI:
    async def client() -> Any:
        return stack.client

    return create_app(
        stack.settings.model_copy(update={"write_keys": WRITE_KEY, **settings}),
        client,
        store=stack.store,
        plans=plans,
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (the test session owns the signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port, in this event loop, with the proxy
    settings `rapport api` gives uvicorn."""
    port = free_port()
    options = proxy_options(app.state.rapport.settings)
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start in 10 s"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Served:
    url: str
    app: FastAPI
    stack: Stack

    @property
    def state(self) -> ApiState:
        state: ApiState = self.app.state.rapport
        return state


def contact_id(prefix: str, journey: str = "onboarding", holdout: int = 10) -> str:
    """A fresh contact id that is not in the journey's holdout group (which gets no messages)."""
    while True:
        candidate = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if stable_fraction("holdout", journey, candidate) * 100 >= holdout:
            return candidate


def snapshot(store: Store) -> dict[str, int]:
    """Row counts of what a bad request must not change."""
    with store.engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("contacts", "events")
        }


def outbox_mentions(outbox: Path, needle: str) -> list[Path]:
    if not outbox.exists():
        return []
    return sorted(
        path
        for path in outbox.iterdir()
        if path.is_file() and needle in path.read_text(encoding="utf-8", errors="replace")
    )
