"""Fixtures shared by the whole session, defined once here so that every test directory gets
the same instances: one REAL Temporal dev server (`temporal server start-dev`, in memory, on free
ports), one in-process worker on it writing to a temporary SQLite store and outbox (`stack`), the
event API served on it with uvicorn (`served`, `api`), and `rapport …` run in-process against
them (`cli`). (A fixture imported into a directory's conftest would be a second instance: a
second dev server.) Tests that need processes of their own (`rapport worker`, `rapport run`)
start them as subprocesses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli import app
from runtime.stack import wait_for_temporal
from runtime.temporal import connect
from settings import get_settings
from tests.api.helpers import WRITE_KEY, Served, build_app, ping_plans, serve
from tests.stack.helpers import (
    Stack,
    dev_server_process,
    free_port,
    project_settings,
    worker_stack,
)


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[str]:
    """`temporal server start-dev` on free ports, in memory, for the whole session."""
    port = free_port()
    with dev_server_process(port):
        address = f"127.0.0.1:{port}"
        await wait_for_temporal(project_settings(), address, timeout=30)
        yield address


@pytest.fixture(scope="session")
async def stack(dev_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A worker in this process on its own task queue, with a tmp SQLite store and outbox."""
    root = tmp_path_factory.mktemp("stack")
    settings = project_settings(
        data_dir=root,
        temporal_address=dev_server,
        temporal_task_queue=f"stack-{uuid.uuid4().hex[:8]}",
    )
    async with worker_stack(settings, await connect(settings)) as running:
        yield running


# `rapport …` in this process against the shared stack: exit code, stdout, exception.
Cli = Callable[..., Awaitable[tuple[int, str, BaseException | None]]]


@pytest.fixture
def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """Run CLI commands with the environment pointing at the stack's server, store and files."""
    settings = stack.settings
    for name, value in {
        "TEMPORAL_ADDRESS": str(settings.temporal_address),
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "RAPPORT_DATA_DIR": str(settings.data_dir),
        "RAPPORT_JOURNEYS_DIR": str(settings.journeys_dir),
        "RAPPORT_TEMPLATES_DIR": str(settings.templates_dir),
        "RAPPORT_CONTACTS_DIR": str(settings.contacts_dir),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    get_settings.cache_clear()

    async def run(*args: str) -> tuple[int, str, BaseException | None]:
        # In a thread: the command calls asyncio.run while the worker runs on this loop.
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
        return result.exit_code, result.stdout, result.exception

    yield run
    get_settings.cache_clear()


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
