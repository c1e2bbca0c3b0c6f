"""What `simulate`'s timeline tells a reader (issue 16 item 5): the properties of the events that
arrive, what ended the run, the values an `update` wrote, local times beside UTC, the outbox in
`--json`, and the simulated send time in each `.eml` `Date:` header."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from email import message_from_bytes
from email.utils import parsedate_to_datetime

from commands.simulate import timeline_lines
from runtime.simulator import SimulationResult
from tests.workflows.conftest import START, Runner, at, contact, sample
from tests.workflows.test_sample_journeys import lapsed, spent


async def converts(run: Runner) -> SimulationResult:
    """alice signs up, then orders on day 3 (onboarding's goal is order_placed)."""
    return await run(
        sample("onboarding"),
        contact("alice"),
        [
            at("1m", "signed_up", plan="starter"),
            at("3d", "order_placed", order_id="A-1", total=42.5),
        ],
    )


async def test_an_arriving_event_shows_its_properties(run: Runner) -> None:
    lines = timeline_lines(await converts(run), START)
    assert (
        "  2026-11-05 15:00 UTC (10:00 EST, +3d)        "
        "event order_placed {order_id: A-1, total: 42.5}"
    ) in lines


async def test_a_converted_run_names_the_goal_event_that_ended_it(run: Runner) -> None:
    result = await converts(run)
    exit_entry = result.timeline[-1]
    assert (exit_entry.type, exit_entry.event, exit_entry.properties) == (
        "exit",
        "order_placed",
        {"order_id": "A-1", "total": 42.5},
    )
    assert timeline_lines(result, START)[-3].endswith(
        "exit: converted (goal order_placed {order_id: A-1, total: 42.5})"
    )


async def test_an_exited_run_names_the_exit_on_event(run: Runner) -> None:
    result = await run(
        sample("onboarding"),
        contact("alice"),
        [at("1m", "signed_up"), at("1d", "account_closed", why="moving")],
    )
    assert timeline_lines(result, START)[-3].endswith(
        "exit: exited (exit_on account_closed {why: moving})"
    )


async def test_an_update_shows_the_values_it_wrote(run: Runner) -> None:
    result = await run(sample("win_back"), lapsed("dana"), [], history=spent("dana", 180))
    [update] = [line for line in timeline_lines(result, START) if "update:" in line]
    assert update.endswith("[lapsed] update: {churn_risk: high}")


async def test_times_are_in_the_contacts_zone_beside_utc(run: Runner) -> None:
    tokyo = contact("kenji", timezone="Asia/Tokyo")
    result = await run(sample("onboarding"), tokyo, [at("1m", "signed_up")])
    lines = timeline_lines(result, START)
    assert lines[0].startswith("onboarding (version ")
    assert lines[0].endswith(") for kenji (Asia/Tokyo), from 2026-11-02T15:00:00+00:00")
    assert lines[1].startswith("  2026-11-02 15:01 UTC (11-03 00:01 JST, +1m)  ")
    welcome = result.as_json()["timeline"][0]
    local = datetime.fromisoformat(welcome["at_local"])
    assert (local, local.utcoffset()) == (datetime.fromisoformat(welcome["at"]), timedelta(hours=9))


async def test_json_names_the_outbox_folder(run: Runner) -> None:
    result = await converts(run)
    assert result.as_json()["outbox"] == str(result.outbox)
    assert len(list(result.outbox.glob("*.eml"))) == 2


async def test_an_eml_is_dated_at_its_simulated_send_time(run: Runner) -> None:
    result = await converts(run)
    dated = {}
    for path in result.outbox.glob("*.eml"):
        message = message_from_bytes(path.read_bytes())
        dated[message["Subject"]] = parsedate_to_datetime(message["Date"])
    # Dated when the send was asked for (to the second): after the entry before it on the
    # timeline, and no later than the send's own entry, written once the send is done.
    timeline = result.timeline
    for before, entry in itertools.pairwise(timeline):
        if entry.type == "send":
            assert before.at.replace(microsecond=0) <= dated.pop(entry.subject or "") <= entry.at
    assert dated == {}
