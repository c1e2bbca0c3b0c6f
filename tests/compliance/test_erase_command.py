"""`rapport contacts erase ID` on the shared dev server and store: the contact's runs are
cancelled, its data deleted, and its address stays suppressed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator

import pytest
from temporalio.client import WorkflowExecutionStatus
from typer.testing import CliRunner

from cli import app
from commands.common import ExitCode, RapportError
from settings import get_settings
from tests.stack.helpers import Stack

Cli = Callable[..., Awaitable[tuple[int, str, BaseException | None]]]


@pytest.fixture
def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    settings = stack.settings
    for name, value in {
        "TEMPORAL_ADDRESS": str(settings.temporal_address),
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "RAPPORT_DATA_DIR": str(settings.data_dir),
        "RAPPORT_JOURNEYS_DIR": str(settings.journeys_dir),
        "RAPPORT_TEMPLATES_DIR": str(settings.templates_dir),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    get_settings.cache_clear()

    async def run(*args: str) -> tuple[int, str, BaseException | None]:
        # In a thread: the command calls asyncio.run, and the worker keeps running meanwhile.
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
        return result.exit_code, result.stdout, result.exception

    yield run
    get_settings.cache_clear()


async def test_erase_cancels_the_runs_deletes_the_data_and_keeps_the_address_suppressed(
    stack: Stack, cli: Cli
) -> None:
    contact = stack.contact("alice")
    email = stack.store.get_contact(contact).email  # type: ignore[union-attr]
    assert (await cli("start", "onboarding", "--contact", contact))[0] == 0
    await stack.sent(contact)

    _, _, error = await cli("contacts", "erase", contact)
    assert isinstance(error, RapportError) and "pass --yes" in str(error)
    assert error.exit_code == ExitCode.USAGE
    assert stack.store.get_contact(contact) is not None

    code, out, error = await cli("contacts", "erase", contact, "--yes", "--json")
    assert (code, error) == (0, None), out
    report = json.loads(out)
    workflow_id = f"journey:onboarding:{contact}"
    assert report["runs_cancelled"] == [workflow_id]
    assert report["profile_deleted"] is True and report["messages_redacted"] == 1
    described = await stack.client.get_workflow_handle(workflow_id).describe()
    assert described.status in (WorkflowExecutionStatus.CANCELED, WorkflowExecutionStatus.RUNNING)
    assert stack.store.get_contact(contact) is None
    assert stack.store.is_suppressed("email", email or "") == "erased"
    [message] = stack.store.ledger.messages_for_contact(contact)
    assert (message.status, message.body, message.recipient) == ("sent", None, None)

    _, _, error = await cli("contacts", "erase", contact, "--yes")
    assert isinstance(error, RapportError) and f"no contact {contact!r}" in str(error)
    assert error.exit_code == ExitCode.INVALID
