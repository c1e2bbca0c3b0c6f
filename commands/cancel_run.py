"""`rapport cancel CONTACT JOURNEY`: cancel the contact's open run(s) of a journey; the store
records them as cancelled."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from commands.common import console_out, print_json
from commands.runs import print_plain, session
from errors import InvalidInputError
from runtime.run_state import cancel_contact_runs
from settings import Settings, get_settings


async def _cancel(settings: Settings, contact: str, journey: str) -> dict[str, str]:
    async with session(settings) as s:
        return await cancel_contact_runs(s.client, s.store, contact, journey)


def command(
    contact: Annotated[str, typer.Argument(help="The contact's id.")],
    journey: Annotated[str, typer.Argument(help="The journey name.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Cancel a contact's run of a journey."""
    results = asyncio.run(_cancel(get_settings(), contact, journey))
    if not results:
        raise InvalidInputError(f"{contact!r} has no open run of {journey!r}")
    if json_output:
        print_json({"contact_id": contact, "journey": journey, "cancelled": results})
        return
    out = console_out()
    for workflow_id, outcome in results.items():
        print_plain(out, f"{workflow_id}: {outcome}")
