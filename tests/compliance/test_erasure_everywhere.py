"""Erasure leaves no copy of the person anywhere Rapport writes (issue 14, item 3): not in
Temporal's histories, not in the outbox, not in the raw SQLite files of the store or of the
dev server — all as `rapport run` lays them out, on a dev server of this test's own (the
session's runs in memory, without a file to look into)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.ingest import ingest_event
from consent.erasure import erase_contact
from runtime.router import EventIndex
from runtime.stack import dev_server_command, wait_for_temporal
from runtime.starter import start_run
from store import EventRecord
from tests.stack.helpers import Stack, free_port, project_settings, worker_stack


@dataclass
class FileStack:
    stack: Stack
    data_dir: Path


@pytest.fixture
async def file_stack(tmp_path: Path) -> AsyncIterator[FileStack]:
    """A dev server keeping its state in `temporal.db` (as `rapport run` starts it), a worker,
    the SQLite store and the outbox, all in one data dir."""
    port = free_port()
    settings = project_settings(
        data_dir=tmp_path,
        temporal_address=f"127.0.0.1:{port}",
        temporal_task_queue=f"erase-{uuid.uuid4().hex[:8]}",
    )
    command = [*dev_server_command(tmp_path, port, free_port()), "--headless"]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        client = await wait_for_temporal(settings, f"127.0.0.1:{port}", timeout=60)
        async with worker_stack(settings, client) as stack:
            yield FileStack(stack, tmp_path)
    finally:
        server.terminate()
        server.wait(timeout=30)


async def history_bytes(client: Client, workflow_id: str) -> bytes | None:
    """The execution's whole history as protobuf bytes (payloads as they are stored), or None
    when Temporal has no such execution."""
    try:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
    except RPCError as error:
        assert error.status == RPCStatusCode.NOT_FOUND, error
        return None
    return b"".join(event.SerializeToString() for event in history.events)


def files_mentioning(directory: Path, *needles: str) -> list[str]:
    return sorted(
        f"{path.name}: {needle}"
        for path in directory.rglob("*")
        if path.is_file()
        for needle in needles
        if needle.encode() in path.read_bytes()
    )


async def test_erasure_leaves_nothing_in_temporal_the_outbox_or_the_database_files(
    file_stack: FileStack,
) -> None:
    stack, data_dir = file_stack.stack, file_stack.data_dir
    marker = uuid.uuid4().hex[:10]
    email, phone = f"gdpr-{marker}@example.com", "+1646" + str(uuid.uuid4().int)[:7]
    contact = stack.contact("chen", email=email, phone=phone)
    other = stack.contact("chen")  # someone else, whose data must stay

    # An open run (onboarding waits after its welcome email) and a closed one (a keyed
    # feedback run whose trigger event carries personal data, then ended).
    for who in (contact, other):
        await start_run(
            stack.client, stack.store, stack.plans["onboarding"], who, task_queue=stack.task_queue
        )
        await stack.sent(who)
    order = f"G-{marker}"
    await ingest_event(
        stack.store,
        EventIndex.build(stack.plans),
        EventRecord(
            contact_id=contact,
            name="order_delivered",
            properties={"order_id": order, "gift_note": f"for {email}"},
            message_id=f"m-{marker}",
        ),
        client=lambda: _client(stack),
        task_queue=stack.task_queue,
    )
    onboarding = f"journey:onboarding:{contact}"
    feedback = f"journey:feedback_follow_up:{contact}:{order}"
    await stack.client.get_workflow_handle(feedback).terminate("ended before the erasure")
    for workflow_id in (onboarding, feedback):
        history = await history_bytes(stack.client, workflow_id)
        assert history is not None and email.encode() in history, workflow_id
    assert files_mentioning(stack.outbox, email)  # the checks below can see it

    erased = await erase_contact(
        lambda: _client(stack),
        stack.store,
        stack.plans,
        contact,
        outbox_dir=stack.settings.outbox_dir,
        temporal_db=stack.settings.dev_server_db,
    )
    assert erased.executions_deleted == sorted([feedback, onboarding])
    assert erased.runs_cancelled == [onboarding]
    assert erased.outbox_files_deleted == 1

    # Temporal: no execution of the contact, no history.
    for workflow_id in (onboarding, feedback):
        assert await history_bytes(stack.client, workflow_id) is None, workflow_id
    listed = [w.id async for w in stack.client.list_workflows(f"WorkflowId = '{onboarding}'")]
    assert listed == []
    # The outbox: the contact's email is gone, the other contact's is still there.
    assert files_mentioning(stack.outbox, email, phone) == []
    other_email = stack.store.get_contact(other).email  # type: ignore[union-attr]
    assert len(files_mentioning(stack.outbox, other_email or "")) == 1
    # The raw files: the store's database and its WAL, the dev server's database and its WAL.
    names = sorted(p.name for p in data_dir.iterdir() if p.is_file())
    assert {"rapport.db", "temporal.db"} <= set(names), names
    assert files_mentioning(data_dir, email, phone, f"for {email}") == []
    assert (await history_bytes(stack.client, f"journey:onboarding:{other}")) is not None


async def _client(stack: Stack) -> Client:
    return stack.client
