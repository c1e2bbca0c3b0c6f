"""`rapport demo seed`: a realistic shop's year of history (runtime/demo_shop.py), through the
history path: it counts in traits and metrics and starts no journey; then the runs the project's
event-triggered journeys would have made over it (runtime/demo_journeys.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from commands.common import console_out, print_json
from commands.report import parse_when
from commands.runs import print_plain
from runtime.demo_shop import default_end, seed_demo_shop
from runtime.traits import open_store
from settings import get_settings
from workflows.project import compile_project

app = typer.Typer(name="demo", help="Demo data.", no_args_is_help=True)


@app.command("seed")
def seed(
    contacts: Annotated[int, typer.Option(min=1, help="How many contacts.")] = 2_000,
    seed: Annotated[int, typer.Option(help="The random seed: the same seed, the same shop.")] = 7,
    end: Annotated[
        str | None,
        typer.Option(help="The day the shop's year ends (default: today, midnight UTC)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Seed a coffee shop's year: contacts, seasonal orders, NPS answers, newsletter opens and
    clicks, referrals. Seeding the same shop again adds nothing."""
    until = parse_when("--end", end) if end is not None else default_end()
    settings = get_settings()
    store = open_store(settings)  # keeps the project's traits current
    plans = compile_project(settings).plans
    try:
        shop = seed_demo_shop(
            store, contacts=contacts, seed=seed, end=until, journeys=(settings, plans)
        )
    finally:
        store.close()
    since = until - timedelta(days=365)
    if json_output:
        print_json(
            {
                "contacts": shop.contacts,
                "events": shop.events,
                "runs": shop.runs.runs,
                "messages": shop.runs.messages,
                "runs_by_journey": shop.runs.by_journey,
                "since": since.date().isoformat(),
                "until": until.date().isoformat(),
            }
        )
        return
    out = console_out()
    print_plain(
        out,
        f"seeded the demo shop: {shop.contacts} contact(s), {shop.events} new event(s) of history "
        f"from {since.date()} to {until.date()} (no journey started); "
        f"{shop.runs.runs} new journey run(s) with {shop.runs.messages} message(s) as the "
        "journeys would have made them",
    )
    quarter = (until - timedelta(days=91)).date()
    print_plain(out, f"try: rapport report loyalty --since {quarter} --until {until.date()}")
