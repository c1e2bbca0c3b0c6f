"""End to end on a real dev server: the official Segment client (`segment-analytics-python`)
and plain HTTP, through uvicorn, to journeys that start, wait, wake and convert."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
import segment.analytics as analytics
from temporalio.client import WorkflowExecutionStatus

from runtime.starter import ended_run
from tests.api.helpers import WRITE_KEY, Served, contact_id, outbox_mentions
from tests.stack.conftest import Cli
from tests.waiting import eventually
from workflows.journey_workflow import JourneyWorkflow


def segment_client(served: Served, **options: Any) -> analytics.Client:
    """The official client in sync mode: each call is one POST /v1/batch, errors raise."""
    return analytics.Client(WRITE_KEY, host=served.url, sync_mode=True, **options)


async def call(client: analytics.Client, method: str, *args: Any, **kwargs: Any) -> Any:
    # The client is synchronous (requests); the server runs on this event loop.
    return await asyncio.to_thread(getattr(client, method), *args, **kwargs)


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
async def test_the_segment_client_identifies_and_tracks_and_the_welcome_email_goes_out(
    served: Served, gzip: bool
) -> None:
    stack = served.stack
    client = segment_client(served, gzip=gzip)
    user = contact_id("seg")
    email = f"{user}@example.com"
    await call(
        client,
        "identify",
        user,
        {"email": email, "first_name": "Sam", "timezone": "Europe/Paris", "tier": "gold"},
        context={"locale": "fr-FR"},
    )
    contact = stack.store.get_contact(user)
    assert contact is not None
    assert (contact.email, contact.timezone, contact.locale) == (email, "Europe/Paris", "fr-FR")
    assert contact.attributes == {"first_name": "Sam", "tier": "gold"}

    await call(client, "track", user, "signed_up", {"plan": "starter"})
    [welcome] = await stack.sent(user)
    assert (welcome.template, welcome.recipient) == ("onboarding/welcome", email)
    assert outbox_mentions(stack.outbox, email), "the welcome email is not in the outbox"
    [event] = [e for e in stack.store.recent_events(user) if e.name == "signed_up"]
    assert event.routed_at is not None and event.source == "api"
    await stack.client.get_workflow_handle(f"journey:onboarding:{user}").terminate("test done")


async def test_a_duplicate_message_id_starts_nothing(
    served: Served, api: httpx.AsyncClient
) -> None:
    stack = served.stack
    client = segment_client(served)
    user = contact_id("dup", "ping")
    await call(client, "identify", user, {"email": f"{user}@example.com"})
    message_id = str(uuid.uuid4())
    routed_before = served.state.metrics.registry.get_sample_value("rapport_events_routed_total")

    await call(client, "track", user, "pinged", {"order_id": "o-1"}, message_id=message_id)
    handle = stack.client.get_workflow_handle_for(JourneyWorkflow.run, f"journey:ping:{user}")
    assert (await ended_run(handle)).outcome == "completed"
    first_run = (await handle.describe()).run_id
    assert len(await stack.sent(user)) == 1

    # The same message again (a client retry): acknowledged, nothing started or sent.
    await call(client, "track", user, "pinged", {"order_id": "o-1"}, message_id=message_id)
    response = await api.post(
        "/v1/track",
        json={"userId": user, "event": "pinged", "messageId": message_id, "properties": {}},
    )
    assert response.json() == {"success": True}
    # The API answers only once Temporal has accepted every start an event causes: a run
    # started by the duplicate would be the journey's latest run by now.
    assert (await handle.describe()).run_id == first_run
    assert stack.ledger(user) == [("feedback/thanks", "sent", None)]
    assert len([e for e in stack.store.recent_events(user) if e.name == "pinged"]) == 1
    assert (
        served.state.metrics.registry.get_sample_value("rapport_events_routed_total")
        == routed_before + 1
    )

    # A new message id is a new event: the journey (reentry: always) runs again.
    await call(client, "track", user, "pinged", {"order_id": "o-2"})
    assert len(await stack.sent(user, count=2)) == 2


async def _status(served: Served, workflow_id: str) -> Any:
    handle = served.stack.client.get_workflow_handle(workflow_id)
    return await handle.query(JourneyWorkflow.status)


async def _running_runs(served: Served, user: str, count: int) -> None:
    """Runs record themselves in the store as they start; keyed runs are found through it."""

    def ready() -> bool:
        runs = served.stack.store.runs_for_contact(user)
        return len([r for r in runs if r.status == "running"]) >= count

    await eventually(
        ready,
        f"{count} running run(s) of {user} recorded",
        seen=lambda _: served.stack.store.runs_for_contact(user),
    )


async def test_wait_for_wakes_on_the_matching_event_and_not_on_another(
    served: Served, api: httpx.AsyncClient
) -> None:
    user = contact_id("cart", "cart")
    track = lambda event, **props: api.post(  # noqa: E731
        "/v1/track", json={"userId": user, "event": event, "properties": props}
    )
    assert (await track("cart_started", cart_id="c-1")).status_code == 200
    workflow_id = f"journey:cart:{user}:c-1"
    await _running_runs(served, user, 1)

    # Another cart's checkout, and an event the step does not wait for: the run keeps waiting.
    assert (await track("cart_checked_out", cart_id="c-9")).status_code == 200
    assert (await track("page_viewed", cart_id="c-1")).status_code == 200
    # A query sees every signal accepted before it (the API answered after they were).
    status = await _status(served, workflow_id)
    assert (status.step, status.waiting_for) == ("await_checkout", "cart_checked_out")

    assert (await track("cart_checked_out", cart_id="c-1")).status_code == 200
    handle = served.stack.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id)
    result = await asyncio.wait_for(ended_run(handle), 10)
    assert [e.step for e in result.timeline if e.type == "send"] == ["thanks"]
    assert result.outcome == "completed"


async def test_a_goal_event_exits_a_waiting_run_as_converted(
    served: Served, api: httpx.AsyncClient
) -> None:
    user = contact_id("goal")
    await api.post("/v1/identify", json={"userId": user, "traits": {"email": f"{user}@ex.com"}})
    assert (await api.post("/v1/track", json={"userId": user, "event": "signed_up"})).is_success
    await served.stack.sent(user)
    workflow_id = f"journey:onboarding:{user}"
    # The ledger row is `sent` a moment before the run has the activity's answer and moves on.
    for _ in range(200):
        if (step := (await _status(served, workflow_id)).step) != "welcome":
            break
        await asyncio.sleep(0.05)
    assert step == "wait_2"  # waiting two days

    response = await api.post(
        "/v1/track",
        json={"userId": user, "event": "order_placed", "properties": {"order_id": "o-7"}},
    )
    assert response.status_code == 200
    handle = served.stack.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id)
    result = await asyncio.wait_for(ended_run(handle), 10)
    assert result.outcome == "converted"
    await eventually(
        lambda: getattr(served.stack.store.get_run(workflow_id), "outcome", None) == "converted",
        f"{workflow_id} recorded as converted in the store",
        seen=lambda _: served.stack.store.get_run(workflow_id),
    )


async def test_a_keyed_trigger_runs_two_orders_side_by_side(
    served: Served, api: httpx.AsyncClient
) -> None:
    user = contact_id("orders")
    await api.post("/v1/identify", json={"userId": user, "traits": {"email": f"{user}@ex.com"}})
    batch = {
        "batch": [
            {
                "type": "track",
                "userId": user,
                "event": "order_delivered",
                "properties": {"order_id": order},
                "messageId": f"{user}-{order}",
            }
            for order in ("o-1", "o-2")
        ]
    }
    assert (await api.post("/v1/batch", json=batch)).json() == {"success": True}
    await _running_runs(served, user, 2)
    ids = [f"journey:feedback_follow_up:{user}:{order}" for order in ("o-1", "o-2")]
    for workflow_id in ids:
        handle = served.stack.client.get_workflow_handle(workflow_id)
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        assert (await _status(served, workflow_id)).step_kind == "wait"
    # The same batch again (a retry) starts no third run.
    assert (await api.post("/v1/batch", json=batch)).status_code == 200
    runs = served.stack.store.runs_for_contact(user)
    assert sorted(r.workflow_id for r in runs) == ids
    for workflow_id in ids:
        await served.stack.client.get_workflow_handle(workflow_id).terminate("test done")


async def test_an_event_for_an_unknown_contact_creates_it_and_anonymous_ids_work(
    served: Served, api: httpx.AsyncClient
) -> None:
    anonymous = f"anon-{uuid.uuid4().hex[:8]}"
    response = await api.post(
        "/v1/track",
        json={"anonymousId": anonymous, "event": "page_viewed", "properties": {"path": "/"}},
    )
    assert response.status_code == 200
    assert served.stack.store.get_contact(anonymous) is not None
    [event] = served.stack.store.recent_events(anonymous)
    assert (event.name, event.properties, event.routed_at is not None) == (
        "page_viewed",
        {"path": "/"},
        True,
    )


async def test_a_webhook_destination_posts_one_typed_message_at_a_time(
    served: Served, api: httpx.AsyncClient
) -> None:
    """Segment's Webhooks and RudderStack's Webhook destinations post each message on its own,
    with its `type`, to one URL: /v1/batch takes that too."""
    user = contact_id("hook", "ping")
    identify = {  # RudderStack's SDKs put an identify's traits in context.traits
        "type": "identify",
        "userId": user,
        "context": {"traits": {"email": f"{user}@example.com", "plan": "pro"}},
        "messageId": f"{user}-i",
        "channel": "server",
        "version": 2,
    }
    track = {
        "type": "track",
        "userId": user,
        "event": "pinged",
        "messageId": f"{user}-t",
        "properties": {"order_id": "o-3"},
        "context": {"library": {"name": "webhook"}},
    }
    page = {"type": "page", "userId": user, "name": "Home", "messageId": f"{user}-p"}
    for message in (identify, track, page, track):
        response = await api.post("/v1/batch", json=message)
        assert response.json() == {"success": True}, response.text
    assert len(await served.stack.sent(user)) == 1
    assert [e.name for e in served.stack.store.recent_events(user)] == ["pinged"]
    contact = served.stack.store.get_contact(user)
    assert contact is not None
    assert (contact.email, contact.attributes) == (f"{user}@example.com", {"plan": "pro"})


async def test_the_module_level_segment_api_batches_in_the_background_and_flushes(
    served: Served,
) -> None:
    """The library's default mode, configured as its README shows: module globals, a consumer
    thread that batches, `flush()`."""
    user = contact_id("module")
    analytics.write_key, analytics.host, analytics.gzip = WRITE_KEY, served.url, True
    analytics.default_client = None
    try:
        analytics.identify(user, {"email": f"{user}@example.com"})
        analytics.track(user, "signed_up", {"plan": "starter"})
        await asyncio.to_thread(analytics.flush)
    finally:
        await asyncio.to_thread(analytics.shutdown)  # flush, then end the consumer thread
        analytics.default_client = None
        analytics.write_key, analytics.host, analytics.gzip = None, None, False
    [welcome] = await served.stack.sent(user)
    assert welcome.template == "onboarding/welcome"
    await served.stack.client.get_workflow_handle(f"journey:onboarding:{user}").terminate("done")


async def test_the_arm_a_split_chose_is_on_the_run_in_inspect_and_the_contact_api(
    served: Served, api: httpx.AsyncClient, cli: Cli
) -> None:
    user = contact_id("split")
    await api.post("/v1/identify", json={"userId": user, "traits": {"email": f"{user}@x.org"}})
    await api.post("/v1/track", json={"userId": user, "event": "ab_tested"})
    await eventually(
        lambda: [r for r in served.stack.store.runs_for_contact(user) if r.ended_at],
        f"the ab run of {user} recorded as ended",
    )
    code, out, _ = await cli("inspect", user, "--json")
    assert code == 0, out
    (run,) = json.loads(out)["runs"]
    chosen = next(e["result"] for e in run["timeline"] if e["type"] == "split")
    assert chosen in ("a", "b") and run["variant"] == chosen
    code, out, _ = await cli("inspect", user)
    assert f"  split variant: {chosen}" in out.splitlines()
    contact = (await api.get(f"/v1/contacts/{user}")).json()
    assert [(r["journey"], r["variant"]) for r in contact["runs"]] == [("ab", chosen)]
