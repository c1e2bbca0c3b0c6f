"""Lifecycle tests share the segment tests' fixtures: the session's dev server, and a per-test
task queue, store and journeys directory."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest
from typer.testing import CliRunner

from cli import app, exit_code_for
from errors import RapportError
from settings import get_settings
from tests.segments.conftest import Segments, segments  # noqa: F401
from tests.stack.helpers import ROOT

Cli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def cli(segments: Segments, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:  # noqa: F811
    """`rapport …` in a thread (commands call asyncio.run) against the test's queue and store."""
    for name, value in {
        "TEMPORAL_ADDRESS": str(segments.settings.temporal_address),
        "TEMPORAL_TASK_QUEUE": segments.queue,
        "RAPPORT_DATA_DIR": str(segments.tmp),
        "RAPPORT_JOURNEYS_DIR": str(segments.journeys),
        "RAPPORT_TEMPLATES_DIR": str(ROOT / "templates"),
        "RAPPORT_CONTACTS_DIR": str(ROOT / "contacts"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    get_settings.cache_clear()

    async def run(*args: str) -> tuple[int, str, str]:
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
        error = result.exception
        if isinstance(error, RapportError):  # as `cli.main` ends the process: code, message
            return exit_code_for(error), result.stdout, result.stderr + str(error)
        if error is not None and not isinstance(error, SystemExit):
            raise error
        return result.exit_code, result.stdout, result.stderr

    yield run
    get_settings.cache_clear()
