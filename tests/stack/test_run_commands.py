"""`rapport start`, `list`, `inspect` and `cancel` against the shared dev server and store.

Each command runs through Typer's CliRunner in a thread (it calls `asyncio.run`), so the
in-process worker on the session's event loop keeps working meanwhile.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from cli import ExitCode, exit_code_for
from errors import ProblemsReportedError, RapportError
from settings import get_settings
from tests.stack.conftest import Cli
from tests.stack.helpers import Stack, free_port
from tests.waiting import eventually
from workflows.ids import stable_fraction


async def test_start_then_inspect_shows_where_the_contact_stands(stack: Stack, cli: Cli) -> None:
    contact = stack.contact()
    code, out, error = await cli(
        "start", "onboarding", "--contact", contact, "--data", "n=3", "--json"
    )
    assert (code, error) == (0, None), out
    started = json.loads(out)
    assert started["started"] is True and started["workflow_id"] == f"journey:onboarding:{contact}"
    await stack.sent(contact)

    code, out, error = await cli("inspect", contact, "--json")
    assert (code, error) == (0, None), out
    report = json.loads(out)
    [run] = report["runs"]
    assert run["journey"] == "onboarding" and run["execution"] == "running"
    assert (run["step"], run["waiting_for"]) == ("wait_2", "time") and run["until"]
    assert [(m["step_id"], m["status"]) for m in run["messages"]] == [("welcome", "sent")]
    assert any(e["type"] == "send" and e["step"] == "welcome" for e in run["timeline"])

    code, out, _ = await cli("inspect", contact)
    assert code == 0 and "now: at wait_2 (wait), waiting for a timer until" in out

    code, out, _ = await cli("list", "--journey", "onboarding", "--status", "running", "--json")
    rows: list[dict[str, Any]] = json.loads(out)
    mine = [row for row in rows if row["contact_id"] == contact]
    assert code == 0 and len(mine) == 1 and mine[0]["step"] == "wait_2"
    assert mine[0]["version"] == stack.plans["onboarding"].version


async def test_list_shows_the_key_of_each_keyed_run(stack: Stack, cli: Cli) -> None:
    contact = stack.contact()
    for order in ("K-1", "K-2"):  # feedback_follow_up: one run per contact and order_id
        code, out, _ = await cli("event", contact, "order_delivered", "--prop", f"order_id={order}")
        assert code == 0, out

    def feedback_runs() -> int:
        runs = stack.store.runs_for_contact(contact)
        return len([run for run in runs if run.journey == "feedback_follow_up"])

    await eventually(lambda: feedback_runs() == 2, "two feedback runs", seen=lambda _: None)
    code, out, _ = await cli("list", "--journey", "feedback_follow_up", "--json")
    keys = sorted(row["key"] for row in json.loads(out) if row["contact_id"] == contact)
    assert (code, keys) == (0, ["K-1", "K-2"])
    code, out, _ = await cli("list", "--journey", "feedback_follow_up")
    columns = sorted(line.split()[:3] for line in out.splitlines() if line.startswith(contact))
    assert columns == [
        [contact, "feedback_follow_up", "K-1"],
        [contact, "feedback_follow_up", "K-2"],
    ]


async def test_a_second_start_is_refused(stack: Stack, cli: Cli) -> None:
    contact = stack.contact()
    assert (await cli("start", "onboarding", "--contact", contact))[0] == 0
    _, out, error = await cli("start", "onboarding", "--contact", contact, "--json")
    assert isinstance(error, ProblemsReportedError) and exit_code_for(error) == ExitCode.INVALID
    assert json.loads(out)["started"] is False


async def test_cancel_ends_the_run_as_cancelled(stack: Stack, cli: Cli) -> None:
    contact = stack.contact()
    assert (await cli("start", "onboarding", "--contact", contact))[0] == 0
    await stack.sent(contact)
    code, out, error = await cli("cancel", contact, "onboarding", "--json")
    assert (code, error) == (0, None), out
    workflow_id = f"journey:onboarding:{contact}"
    assert json.loads(out)["cancelled"] == {workflow_id: "cancelled"}
    described = await stack.client.get_workflow_handle(workflow_id).describe()
    assert described.status is WorkflowExecutionStatus.CANCELED
    [run] = stack.store.runs_for_contact(contact)
    assert (run.status, run.outcome) == ("cancelled", "cancelled") and run.ended_at

    code, _, error = await cli("cancel", contact, "onboarding")
    assert isinstance(error, RapportError) and "no open run" in str(error)
    code, out, _ = await cli("list", "--status", "cancelled", "--json")
    assert any(row["contact_id"] == contact for row in json.loads(out))


async def test_unknown_contact_and_unreachable_temporal_are_clear_errors(
    stack: Stack, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, error = await cli("start", "onboarding", "--contact", "nobody-at-all")
    assert isinstance(error, RapportError) and "no contact 'nobody-at-all'" in str(error)

    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    for args in (
        ["list"],
        ["inspect", "alice"],
        ["cancel", "alice", "onboarding"],
        ["start", "onboarding", "--contact", "alice"],
    ):
        _, _, error = await cli(*args)
        assert isinstance(error, RapportError), args
        assert exit_code_for(error) == ExitCode.UNAVAILABLE
        assert "cannot reach Temporal" in str(error)


async def test_inspect_shows_which_variant_a_contact_was_sent(stack: Stack, cli: Cli) -> None:
    contact = stack.contact("bruno")
    while stable_fraction("holdout", "win_back", contact) * 100 < 10:  # win_back's holdout
        contact = stack.contact("bruno")
    code, _, error = await cli("start", "win_back", "--contact", contact)
    assert (code, error) == (0, None)
    [message] = await stack.sent(contact)
    assert (message.step_id, message.variant) in {("offer", "a"), ("offer", "b")}

    code, out, _ = await cli("inspect", contact, "--journey", "win_back", "--json")
    [run] = json.loads(out)["runs"]
    [shown] = run["messages"]
    templates = {"a": "win_back/we_miss_you", "b": "win_back/we_miss_you_code"}
    assert (shown["variant"], shown["template"]) == (message.variant, templates[message.variant])
    [send] = [e for e in run["timeline"] if e["type"] == "send"]
    assert send["variant"] == message.variant

    code, out, _ = await cli("inspect", contact, "--journey", "win_back")
    assert code == 0 and f"offer  email (variant {message.variant})  sent" in out
