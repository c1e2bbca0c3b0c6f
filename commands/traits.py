"""`rapport traits …`: a sub-app. `rapport traits rebuild` recomputes every trait of `traits/`
and the built-in RFM traits from all stored events, in SQL (runtime/traits.py), then routes the
`trait_changed` events the new values caused, like any event (journeys may start on them)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer

from commands.common import console_out, print_json
from commands.runs import print_plain
from errors import InvalidInputError, UnavailableError
from settings import Settings, get_settings

app = typer.Typer(name="traits", help="Computed contact traits.", no_args_is_help=True)


async def _rebuild(settings: Settings) -> dict[str, Any]:
    # Imported here: every `rapport` command loads this module.
    from api.ingest import load_plans
    from runtime.router import EventIndex, route_trait_changes
    from runtime.starter import connect_client
    from runtime.traits import listened_traits, rebuild
    from store import Store
    from workflows.diagnostics import errors
    from workflows.project import compile_project_traits

    compiled = compile_project_traits(settings)
    if not compiled.ok:
        problems = "\n".join(str(d) for d in sorted(errors(compiled.diagnostics)))
        raise InvalidInputError(f"{problems}\ntraits/ has errors: nothing was rebuilt")
    plans = load_plans(settings)
    store = await asyncio.to_thread(Store.open, settings.database)
    # trait_changed stored for the traits the journeys listen to (docs/traits.md).
    store.use_traits(compiled.program, announced=listened_traits(plans, compiled.program))
    clients: list[Any] = []

    async def client() -> Any:
        if not clients:  # only when a journey starts on or waits for trait_changed
            clients.append(await connect_client(settings))
        return clients[0]

    try:
        started = time.monotonic()
        report = await asyncio.to_thread(rebuild, store, compiled.program, settings)
        seconds = time.monotonic() - started
        index = EventIndex.build(plans)
        routed = await route_trait_changes(
            store,
            index,
            client,
            task_queue=settings.temporal_task_queue,
            max_age=settings.trigger_max_age_delta,
        )
    finally:
        store.close()
    return {
        **report.as_json(),
        "seconds": round(seconds, 2),
        "runs_started": [r.workflow_id for r in routed.started if r.started],
    }


@app.command("rebuild")
def rebuild_command(
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Recompute every trait and RFM score now, in SQL; start the journeys listening for the
    trait_changed events this causes."""
    from runtime.starter import TemporalUnavailableError

    settings = get_settings()
    try:
        result = asyncio.run(_rebuild(settings))
    except TemporalUnavailableError as error:
        raise UnavailableError(
            f"{error}\nThe traits were rebuilt; their trait_changed events are stored but not "
            "routed: run `rapport traits rebuild` again once Temporal is back."
        ) from None
    if json_output:
        print_json(result)
        return
    changed = result["changed"]
    out = console_out()
    print_plain(
        out,
        f"rebuilt traits in {result['seconds']} s: {sum(changed.values())} value(s) changed "
        f"({changed['aggregates']} aggregate, {changed['derived']} derived, "
        f"{changed['rfm']} RFM)",
    )
    for workflow_id in result["runs_started"]:
        print_plain(out, f"started    {workflow_id}")
