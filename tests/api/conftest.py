"""The event API tests share the stack tests' real dev server and in-process worker, and serve
the app with uvicorn on a free port, as `rapport api` does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import WRITE_KEY, Served, build_app, ping_plans, serve
from tests.stack.conftest import cli, dev_server, stack
from tests.stack.helpers import Stack

__all__ = ["cli", "dev_server", "stack"]


@pytest.fixture(scope="session")
async def served(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """The app (the project's journeys plus the test journeys) on a real uvicorn server."""
    plans = {**stack.plans, **ping_plans(Path(tmp_path_factory.mktemp("journeys")))}
    app = build_app(stack, plans)
    async with serve(app) as url:
        yield Served(url, app, stack)


@pytest.fixture
async def api(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the served app, with the write key."""
    async with httpx.AsyncClient(base_url=served.url, auth=(WRITE_KEY, ""), timeout=30) as client:
        yield client
