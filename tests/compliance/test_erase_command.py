"""`rapport contacts erase ID` on the shared dev server and store: the contact's runs are
deleted from Temporal, its data and outbox files deleted, and its address stays suppressed."""

from __future__ import annotations

import json

import pytest
from temporalio.service import RPCError, RPCStatusCode

from cli import ExitCode, exit_code_for
from errors import RapportError
from tests.stack.conftest import Cli
from tests.stack.helpers import Stack


async def test_erase_deletes_the_runs_and_the_data_and_keeps_the_address_suppressed(
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
    assert report["executions_deleted"] == [workflow_id]
    assert report["outbox_files_deleted"] == 1
    with pytest.raises(RPCError) as gone:
        await stack.client.get_workflow_handle(workflow_id).describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND
    assert not [p for p in stack.outbox.glob("*") if (email or "").encode() in p.read_bytes()]
    assert stack.store.get_contact(contact) is None
    assert stack.store.is_suppressed("email", email or "") == "erased"
    [message] = stack.store.ledger.messages_for_contact(contact)
    assert (message.status, message.body, message.recipient) == ("sent", None, None)

    _, _, error = await cli("contacts", "erase", contact, "--yes")
    assert isinstance(error, RapportError) and f"no contact {contact!r}" in str(error)
    assert exit_code_for(error) == ExitCode.INVALID
