"""`rapport contacts erase ID` on the shared dev server and store: the contact's runs are
cancelled, its data deleted, and its address stays suppressed."""

from __future__ import annotations

import json

from temporalio.client import WorkflowExecutionStatus

from cli import ExitCode, exit_code_for
from errors import RapportError
from tests.stack.conftest import Cli
from tests.stack.helpers import Stack, closed_status


async def test_erase_cancels_the_runs_deletes_the_data_and_keeps_the_address_suppressed(
    stack: Stack, cli: Cli
) -> None:
    contact = stack.contact("alice")
    email = stack.store.get_contact(contact).email  # type: ignore[union-attr]
    assert (await cli("start", "onboarding", "--contact", contact))[0] == 0
    await stack.sent(contact)

    _, _, error = await cli("contacts", "erase", contact)
    assert isinstance(error, RapportError) and "pass --yes" in str(error)
    assert exit_code_for(error) == ExitCode.USAGE
    assert stack.store.get_contact(contact) is not None

    code, out, error = await cli("contacts", "erase", contact, "--yes", "--json")
    assert (code, error) == (0, None), out
    report = json.loads(out)
    workflow_id = f"journey:onboarding:{contact}"
    assert report["runs_cancelled"] == [workflow_id]
    assert report["profile_deleted"] is True and report["messages_redacted"] == 1
    assert await closed_status(stack.client, workflow_id) is WorkflowExecutionStatus.CANCELED
    assert stack.store.get_contact(contact) is None
    assert stack.store.is_suppressed("email", email or "") == "erased"
    [message] = stack.store.ledger.messages_for_contact(contact)
    assert (message.status, message.body, message.recipient) == ("sent", None, None)

    _, _, error = await cli("contacts", "erase", contact, "--yes")
    assert isinstance(error, RapportError) and f"no contact {contact!r}" in str(error)
    assert exit_code_for(error) == ExitCode.INVALID
