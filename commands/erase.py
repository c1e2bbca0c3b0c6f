"""`rapport contacts erase ID`: erase a contact (GDPR), as `DELETE /v1/contacts/{id}` does —
its journey runs deleted from Temporal first, then its profile, events and consent deleted,
its messages redacted, its outbox files removed, and its addresses kept only as hashed
suppressions (docs/compliance.md)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from commands.common import console_out, print_json
from commands.runs import print_plain
from consent.erasure import Erased, erase_contact
from errors import InvalidInputError, RapportError
from runtime.starter import connect_client
from settings import Settings, get_settings
from store import Store
from workflows.project import compile_project


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


async def _erase(settings: Settings, contact_id: str) -> Erased | None:
    store = await asyncio.to_thread(Store.open, settings.database)
    try:
        if await asyncio.to_thread(store.get_contact, contact_id) is None:
            return None
        plans = await asyncio.to_thread(lambda: compile_project(settings).plans)
        return await erase_contact(
            lambda: connect_client(settings),
            store,
            plans,
            contact_id,
            outbox_dir=settings.outbox_dir,
            temporal_db=settings.dev_server_db,
        )
    finally:
        store.close()


def command(
    contact_id: Annotated[str, typer.Argument(help="The contact's id.")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Erase without asking for confirmation.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Erase a contact (GDPR): delete its runs and data, keep its addresses suppressed."""
    if not yes:
        if not sys.stdin.isatty():
            raise RapportError(f"erasing {contact_id!r} cannot be undone: pass --yes to confirm")
        typer.confirm(
            f"Erase {contact_id!r}: delete its runs, profile, events, consent and outbox "
            "files? This cannot be undone",
            abort=True,
        )
    erased = asyncio.run(_erase(get_settings(), contact_id))
    if erased is None:
        raise InvalidInputError(f"no contact {contact_id!r} in the store")
    result = erased.result
    if json_output:
        print_json(
            {
                "runs_cancelled": erased.runs_cancelled,
                "executions_deleted": erased.executions_deleted,
                "outbox_files_deleted": erased.outbox_files_deleted,
                **result.model_dump(),
            }
        )
        return
    print_plain(
        console_out(),
        f"erased {contact_id!r}: {_plural(len(erased.executions_deleted), 'run')} deleted "
        f"from Temporal ({len(erased.runs_cancelled)} still open), "
        f"{_plural(erased.outbox_files_deleted, 'outbox file')} removed, "
        f"{_plural(result.events_deleted, 'event')} and "
        f"{_plural(result.consents_deleted, 'consent record')} deleted, "
        f"{_plural(result.messages_redacted, 'message')} redacted, "
        f"{result.addresses_suppressed} address(es) kept suppressed",
    )
