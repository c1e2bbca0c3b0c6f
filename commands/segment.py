"""`rapport segment JOURNEY [--count] [--sample N] [--at ISO] [--json]`: which contacts in the
store a segment journey matches now, and how many (runtime/segment_census.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from commands.common import console_out, print_json
from commands.loading import load_plan
from commands.moments import parse_moment
from commands.runs import print_plain
from errors import InvalidInputError
from runtime.segment_census import SegmentCensus, segment_census
from settings import get_settings
from store import Store


def summary(census: SegmentCensus) -> list[str]:
    """The count and the conditions, as `rapport segment` prints them."""
    lines = [
        f"{census.journey}: {census.matched} of {census.scanned} contact(s) match at "
        f"{census.at.isoformat()} ({census.kept_out} of them inside already or kept out by "
        f"reentry; {census.errors} could not be evaluated)",
        f"  segment: {census.segment}",
    ]
    if census.audience:
        lines.append(f"  audience: {census.audience}")
    lines.extend(f"  error: {sample}" for sample in census.error_samples)
    return lines


def command(
    journey: Annotated[str, typer.Argument(help="A journey with a segment trigger.")],
    count: Annotated[bool, typer.Option("--count", help="Print only how many match.")] = False,
    sample: Annotated[
        int, typer.Option("--sample", min=0, help="Show this many matching contacts (id order).")
    ] = 10,
    at: Annotated[
        str | None, typer.Option("--at", help="Evaluate at this moment (ISO 8601; default now).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Which contacts in the store a segment journey's trigger matches now, and how many:
    the segment tick's own evaluation (segment and audience, reentry counted apart)."""
    settings = get_settings()
    plan = load_plan(settings, journey)
    if getattr(plan.journey.trigger, "segment", None) is None:
        raise InvalidInputError(
            f"journey {journey!r} has no segment trigger: rapport segment counts the contacts "
            "a segment: trigger matches"
        )
    moment = parse_moment(at, "--at")
    store = Store.open(settings.database)
    try:
        census = segment_census(store, plan, moment, sample=0 if count else sample)
    finally:
        store.close()
    if json_output:
        print_json(census.model_dump(mode="json"))
    else:
        _print(census, count)


def _print(census: SegmentCensus, count: bool) -> None:
    out = console_out()
    if count:
        print_plain(out, str(census.matched))
        return
    for line in summary(census):
        print_plain(out, line)
    rows = [
        (contact.id, contact.email or "-", contact.phone or "-", contact.timezone or "-")
        for contact in census.sample
    ]
    if rows and out.is_terminal:
        table = Table("contact", "email", "phone", "timezone")
        for row in rows:
            table.add_row(*row)
        out.print(table)
    else:
        for row in rows:
            print_plain(out, "\t".join(row))
