"""`rapport event CONTACT NAME [--prop k=v…] [--message-id ID] [--json]` against the shared dev
server and store: the same path as the HTTP API, without HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from cli import ExitCode, exit_code_for
from errors import RapportError
from settings import get_settings
from store import ContactRecord
from tests.api.helpers import contact_id
from tests.stack.conftest import Cli
from tests.stack.helpers import Stack, free_port
from workflows.journey_workflow import JourneyWorkflow


async def test_an_event_starts_a_journey_and_a_repeat_of_its_id_does_nothing(
    stack: Stack, cli: Cli
) -> None:
    user = contact_id("cli")  # not in onboarding's holdout group
    stack.store.upsert_contact(ContactRecord(id=user, email=f"{user}@example.com"))
    code, out, error = await cli(
        "event", user, "signed_up", "--prop", "plan=starter", "--message-id", "cli-1", "--json"
    )
    assert (code, error) == (0, None), out
    result = json.loads(out)
    assert result["started"] == [f"journey:onboarding:{user}"]
    assert list(result) == [  # the keys docs/events.md lists, in its order
        "contact_id",
        "event",
        "message_id",
        "duplicate",
        "routed",
        "history",
        "traits_changed",
        "started",
        "signalled",
        "not_started",
    ]
    assert (result["duplicate"], result["routed"], result["message_id"]) == (False, True, "cli-1")
    await stack.sent(user)

    code, out, _ = await cli("event", user, "signed_up", "--message-id", "cli-1")
    assert code == 0 and "duplicate" in out, out
    [event] = [e for e in stack.store.recent_events(user) if e.name == "signed_up"]
    assert (event.source, event.properties) == ("cli", {"plan": "starter"})

    code, out, _ = await cli("event", user, "order_placed", "--prop", "total=12.5")
    assert code == 0, out
    assert f"signalled  journey:onboarding:{user}" in out
    handle = stack.client.get_workflow_handle_for(JourneyWorkflow.run, f"journey:onboarding:{user}")
    assert (await asyncio.wait_for(handle.result(), 10)).outcome == "converted"


async def test_an_event_for_a_new_contact_that_no_journey_wants(stack: Stack, cli: Cli) -> None:
    code, out, error = await cli("event", "cli-new-contact", "page_viewed", "--prop", "path=/")
    assert (code, error) == (0, None), out
    assert "no journey starts on or waits for this event" in out
    assert stack.store.get_contact("cli-new-contact") is not None


async def test_bad_arguments_are_clear_errors(cli: Cli) -> None:
    code, out, error = await cli("event", "someone", "x", "--prop", "novalue")
    assert code != 0 and "KEY=VALUE" in str(error), out
    code, _, error = await cli("event", "someone", "")
    assert code != 0 and "invalid event" in str(error)


async def test_temporal_down_says_how_to_finish_the_event(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    _, _, error = await cli("event", "someone", "signed_up", "--message-id", "cli-down-1")
    assert isinstance(error, RapportError) and exit_code_for(error) == ExitCode.UNAVAILABLE
    assert "cannot reach Temporal" in str(error) and "--message-id cli-down-1" in str(error)
