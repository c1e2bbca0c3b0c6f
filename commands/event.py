"""`rapport event CONTACT NAME [--prop k=v…] [--message-id ID] [--timestamp ISO] [--json]`: send
an event.

The event goes the same way as one posted to `/v1/track` (`api.ingest.ingest_event`): stored,
routed — journeys it triggers are started, runs waiting for it are signalled — and marked routed,
talking to the store and Temporal directly (like `rapport start`), not through the HTTP API.
An event older than `RAPPORT_TRIGGER_MAX_AGE` (`--timestamp` in the past) is history: stored and
counted in traits, routed nowhere.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from commands.common import console_out, print_json
from commands.runs import parse_data, print_plain, session
from errors import InvalidInputError, UnavailableError
from runtime.starter import TemporalUnavailableError
from settings import Settings, get_settings
from store.records import EventRecord

SOURCE = "cli"


async def _send(settings: Settings, event: EventRecord) -> dict[str, Any]:
    # Imported here: every `rapport` command loads this module.
    from api.ingest import ingest_event, load_plans
    from runtime.router import EventIndex

    index = EventIndex.build(load_plans(settings))
    from runtime.traits import install_traits

    async with session(settings) as s:
        await asyncio.to_thread(install_traits, s.store, settings)

        async def client() -> Any:
            return s.client

        result = await ingest_event(
            s.store,
            index,
            event,
            client=client,
            task_queue=settings.temporal_task_queue,
            max_age=settings.trigger_max_age_delta,
        )
    return result.as_json()


def _event(
    contact: str, name: str, props: list[str], message_id: str | None, timestamp: str | None
) -> EventRecord:
    try:
        return EventRecord(
            contact_id=contact,
            name=name,
            properties=parse_data(props),
            timestamp=timestamp or datetime.now(UTC),
            source=SOURCE,
            message_id=message_id or f"cli-{uuid.uuid4()}",
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise InvalidInputError(f"invalid event: {problems}") from None


def command(
    contact: Annotated[str, typer.Argument(help="The contact's id (created if new).")],
    name: Annotated[str, typer.Argument(help="The event name, e.g. order_placed.")],
    prop: Annotated[
        list[str] | None,
        typer.Option("--prop", help="KEY=VALUE property (repeatable; JSON values parse)."),
    ] = None,
    message_id: Annotated[
        str | None,
        typer.Option(
            "--message-id",
            help="The event's unique id (default: a new one). Sending the same id again does "
            "not process the event twice.",
        ),
    ] = None,
    timestamp: Annotated[
        str | None,
        typer.Option(
            "--timestamp",
            help="When it happened, ISO 8601 (default: now). Older than RAPPORT_TRIGGER_MAX_AGE "
            "(24h): stored and counted in traits, but starts and signals nothing.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Send an event for a contact: start the journeys it triggers, wake the runs waiting for it."""
    settings = get_settings()
    event = _event(contact, name, prop or [], message_id, timestamp)
    try:
        result = asyncio.run(_send(settings, event))
    except TemporalUnavailableError as error:
        raise UnavailableError(
            f"{error}\nThe event may be stored but not routed: once Temporal is back, run the "
            f"same command with --message-id {event.message_id} to finish it (an event with "
            "the same id is never processed twice)."
        ) from None
    if json_output:
        print_json(result)
        return
    out = console_out()
    if result["duplicate"] and not result["routed"]:
        print_plain(out, f"duplicate: event {result['message_id']} was processed before")
        return
    print_plain(out, f"event {name!r} for {contact} recorded (message id {result['message_id']})")
    for change in result["traits_changed"]:
        print_plain(out, f"trait      {change['trait']}: {change['old']!r} -> {change['new']!r}")
    if result["history"]:
        print_plain(
            out,
            f"history: older than RAPPORT_TRIGGER_MAX_AGE ({settings.trigger_max_age}), so it "
            "starts and signals nothing",
        )
        return
    for workflow_id in result["started"]:
        print_plain(out, f"started    {workflow_id}")
    for workflow_id in result["signalled"]:
        print_plain(out, f"signalled  {workflow_id}")
    for journey, why in result["not_started"].items():
        print_plain(out, f"not started {journey}: {why}")
    if not (result["started"] or result["signalled"] or result["not_started"]):
        print_plain(out, "no journey starts on or waits for this event")
