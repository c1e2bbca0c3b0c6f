"""Erasure (GDPR, SPEC §7): what `DELETE /v1/contacts/{id}` and `rapport contacts erase ID` do.

Everywhere Rapport keeps a contact's personal data, in this order (docs/compliance.md):

1. Temporal: every workflow execution of the contact — open or closed, of any journey, found in
   the store's runs and by Temporal's visibility (`journey:J:C` and keyed `journey:J:C:KEY`) —
   is deleted with DeleteWorkflowExecution, which ends an open run and removes its history (the
   contact's profile, the events it received, what it sent). Temporal must accept each
   deletion, else `TemporalUnavailableError` and nothing in the store is touched, so a retry
   starts over. The deletions are then awaited (each execution gone), bounded in time.
2. The store: `Store.delete_contact` deletes the profile, events, consent and computed traits,
   keeps ledger rows and runs for counts without personal data, and suppresses the contact's
   addresses by hash.
3. The outbox: the `.eml`/`.txt` files of the contact's messages, found by the ledger's keys.
4. The files: SQLite's write-ahead logs are checkpointed and truncated (the store's, and the
   embedded Temporal dev server's `temporal.db` when there is one); both write with
   `secure_delete`, so deleted rows are zeroed rather than left in free pages.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from providers.outbox import outbox_file_name
from runtime.starter import TemporalUnavailableError, is_unavailable
from store import ErasureResult, Store
from workflows.ids import workflow_id_for
from workflows.plan import JourneyPlan

log = logging.getLogger("rapport.erasure")

DELETION_WAIT_SECONDS = 10.0
OUTBOX_SUFFIXES = (".eml", ".txt")


@dataclass
class Erased:
    result: ErasureResult
    runs_cancelled: list[str] = field(default_factory=list)  # open runs, ended by the deletion
    executions_deleted: list[str] = field(default_factory=list)  # every run, open or closed
    outbox_files_deleted: int = 0


def _unavailable(client: Client, error: RPCError) -> TemporalUnavailableError:
    return TemporalUnavailableError(client.service_client.config.target_host, error.message)


def _quoted(text: str) -> str | None:
    """A visibility-query string literal, or None for text the query language cannot hold
    safely (quotes, backslashes, control characters)."""
    if any(c in text for c in "'\"\\") or not text.isprintable():
        return None
    return f"'{text}'"


def visibility_query(journeys: Iterable[str], contact_id: str) -> str | None:
    """Every execution id a contact can have in these journeys: `journey:J:C`, and keyed runs
    `journey:J:C:KEY`. None when an id cannot be put in a query (the store's runs still are
    deleted, by their recorded ids)."""
    clauses = []
    for journey in sorted(set(journeys)):
        base = workflow_id_for(journey, contact_id)
        exact, prefix = _quoted(base), _quoted(base + ":")
        if exact is None or prefix is None:
            return None
        clauses.append(f"WorkflowId = {exact} OR WorkflowId STARTS_WITH {prefix}")
    return " OR ".join(clauses) or None


async def _executions(
    client: Client, store: Store, plans: Mapping[str, JourneyPlan], contact_id: str
) -> dict[tuple[str, str], bool]:
    """(workflow id, run id) -> still open, for every execution of the contact."""
    runs = await asyncio.to_thread(store.runs_for_contact, contact_id)
    found = {(run.workflow_id, run.run_id): run.status == "running" for run in runs}
    query = visibility_query([*plans, *(run.journey for run in runs)], contact_id)
    if query is not None:
        try:
            async for execution in client.list_workflows(query):
                open_now = execution.status == WorkflowExecutionStatus.RUNNING
                found[(execution.id, execution.run_id)] = open_now
        except RPCError as error:
            if is_unavailable(error):
                raise _unavailable(client, error) from None
            raise
    return found


async def _delete(client: Client, workflow_id: str, run_id: str) -> bool:
    """Ask Temporal to delete one execution (ending it if open); False if it is gone already."""
    request = DeleteWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
    )
    try:
        await client.workflow_service.delete_workflow_execution(request)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        if is_unavailable(error):
            raise _unavailable(client, error) from None
        raise
    return True


async def _gone(client: Client, workflow_id: str, run_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return True
        raise
    return False


async def _await_deletions(client: Client, executions: Iterable[tuple[str, str]]) -> None:
    """Temporal deletes in the background: wait (bounded) until each execution is gone."""
    pending = list(executions)
    deadline = time.monotonic() + DELETION_WAIT_SECONDS
    while pending and time.monotonic() < deadline:
        pending = [e for e in pending if not await _gone(client, *e)]
        if pending:
            await asyncio.sleep(0.1)
    if pending:
        log.warning("erasure: %d execution(s) still being deleted by Temporal", len(pending))


def remove_outbox_files(outbox_dir: Path, message_keys: Iterable[str]) -> int:
    """Delete the outbox files of these messages; how many there were."""
    removed = 0
    for key in message_keys:
        for suffix in OUTBOX_SUFFIXES:
            path = outbox_dir / outbox_file_name(key, suffix)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
    return removed


def checkpoint_sqlite_file(path: Path) -> None:
    """Fold a SQLite file's write-ahead log into it and truncate the log (the embedded
    Temporal dev server's file, which another process writes)."""
    if not path.is_file():
        return
    connection = sqlite3.connect(path, timeout=5)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as error:  # busy or locked: the server checkpoints it later itself
        log.warning("erasure: could not checkpoint %s: %s", path, error)
    finally:
        connection.close()


async def erase_contact(
    client: Callable[[], Awaitable[Client]],
    store: Store,
    plans: Mapping[str, JourneyPlan],
    contact_id: str,
    *,
    outbox_dir: Path | None = None,
    temporal_db: Path | None = None,
) -> Erased:
    """Erase the contact everywhere (see the module docstring). `outbox_dir`: the local outbox
    to clear; `temporal_db`: the embedded dev server's SQLite file to checkpoint."""
    temporal = await client()
    executions = await _executions(temporal, store, plans, contact_id)
    deleted = [key for key in sorted(executions) if await _delete(temporal, *key)]
    await _await_deletions(temporal, deleted)
    cancelled = sorted({wid for (wid, rid), open_now in executions.items() if open_now})
    for workflow_id in cancelled:
        await asyncio.to_thread(store.end_run, workflow_id, outcome="cancelled", status="cancelled")

    messages = await asyncio.to_thread(store.ledger.messages_for_contact, contact_id)
    result = await asyncio.to_thread(store.delete_contact, contact_id)
    removed = 0
    if outbox_dir is not None:
        keys = [message.idempotency_key for message in messages]
        removed = await asyncio.to_thread(remove_outbox_files, outbox_dir, keys)
    await asyncio.to_thread(store.checkpoint)
    if temporal_db is not None:
        await asyncio.to_thread(checkpoint_sqlite_file, temporal_db)
    return Erased(
        result,
        runs_cancelled=cancelled,
        executions_deleted=sorted({wid for wid, _rid in deleted}),
        outbox_files_deleted=removed,
    )
