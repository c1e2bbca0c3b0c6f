"""An event starts the journeys it triggers and reaches the runs that wait for it — once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from runtime.router import EventIndex, route_event
from runtime.starter import ended_run
from store.records import EventRecord
from tests.stack.helpers import ROOT, Stack
from tests.waiting import eventually
from workflows.compiler import compile_journey
from workflows.journey_workflow import JourneyWorkflow

CART = """\
name: Abandoned cart
trigger:
  event: cart_started
  key: properties.cart_id
reentry: always
goal: account_closed
steps:
  - id: await_checkout
    wait_for: cart_checked_out
    match: [cart_id]
    timeout: 1h
    on_timeout: done
  - id: thanks
    send: email
    template: feedback/thanks
    category: transactional
  - id: done
    exit: completed
"""


def event(contact_id: str, name: str, **properties: object) -> EventRecord:
    return EventRecord(
        contact_id=contact_id,
        name=name,
        properties=properties,
        timestamp=datetime.now(UTC),
        message_id=str(uuid.uuid4()),
    )


async def test_a_sign_up_starts_onboarding_and_a_duplicate_starts_nothing(stack: Stack) -> None:
    index = EventIndex.build(stack.plans)
    alice = stack.contact("alice")
    signed_up = event(alice, "signed_up", plan="starter")
    first = await route_event(
        stack.client, stack.store, index, signed_up, task_queue=stack.task_queue
    )
    assert [r.journey for r in first.started if r.started] == ["onboarding"]
    assert [m.template for m in await stack.sent(alice)] == ["onboarding/welcome"]
    again = await route_event(
        stack.client, stack.store, index, signed_up, task_queue=stack.task_queue
    )
    assert not any(r.started for r in again.started)  # refused: in the journey already
    # Nothing more happened: the one run is the first one, past its email and in its 2-day wait.
    handle = stack.client.get_workflow_handle(first.started[0].workflow_id)
    assert (await handle.describe()).run_id == first.started[0].run_id
    status = await handle.query(JourneyWorkflow.status)
    assert (status.step, status.waiting_for) == ("wait_2", "time"), status
    assert stack.ledger(alice) == [("onboarding/welcome", "sent", None)]
    await handle.terminate("test done")


async def test_an_event_no_journey_names_touches_nothing(stack: Stack) -> None:
    index = EventIndex.build(stack.plans)
    alice = stack.contact("alice")
    result = await route_event(
        stack.client, stack.store, index, event(alice, "page_viewed"), task_queue=stack.task_queue
    )
    assert (result.started, result.signalled) == ([], [])


async def test_wait_for_wakes_on_the_matching_event_only(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "cart.yaml"
    path.write_text(CART)
    plan, diagnostics = compile_journey(path, ROOT / "templates")
    assert plan is not None, diagnostics
    index = EventIndex.build({"cart": plan})
    dana = stack.contact("dana")
    route = lambda e: route_event(  # noqa: E731
        stack.client, stack.store, index, e, task_queue=stack.task_queue
    )
    started = await route(event(dana, "cart_started", cart_id="c-1"))
    other = await route(event(dana, "cart_started", cart_id="c-2"))
    assert [r.workflow_id for r in started.started + other.started] == [
        f"journey:cart:{dana}:c-1",
        f"journey:cart:{dana}:c-2",
    ]
    handle = stack.client.get_workflow_handle_for(JourneyWorkflow.run, f"journey:cart:{dana}:c-1")
    await eventually(  # the runs record themselves in the store as they start
        lambda: len([r for r in stack.store.runs_for_contact(dana) if r.status == "running"]) == 2,
        f"two running cart runs of {dana} in the store",
        seen=lambda _: stack.store.runs_for_contact(dana),
    )
    await route(event(dana, "cart_checked_out", cart_id="c-1"))
    result = await ended_run(handle)
    assert [e.step for e in result.timeline if e.type == "send"] == ["thanks"]
    still = await stack.client.get_workflow_handle(f"journey:cart:{dana}:c-2").query(
        JourneyWorkflow.status
    )
    assert (still.step, still.waiting_for) == ("await_checkout", "cart_checked_out")
    goal = await route(event(dana, "account_closed"))
    assert goal.signalled == [f"journey:cart:{dana}:c-2"]
    closed = await stack.client.get_workflow_handle_for(
        JourneyWorkflow.run, f"journey:cart:{dana}:c-2"
    ).result()
    assert closed.outcome == "converted"


LOYAL_REWARD = """\
name: Loyal reward
trigger:
  event: order_placed
  when: count_events("order_placed") >= journey.orders_for_reward
data:
  orders_for_reward: 3
steps:
  - id: thanks
    send: email
    template: feedback/thanks
    category: transactional
"""


async def test_a_trigger_when_counts_the_whole_history_with_the_journey_data(
    stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "loyal_reward.yaml"
    path.write_text(LOYAL_REWARD)
    plan, diagnostics = compile_journey(path, ROOT / "templates")
    assert plan is not None, diagnostics
    index = EventIndex.build({"loyal_reward": plan})
    erin, fred = stack.contact("eli"), stack.contact("chen")
    for contact_id, orders in ((erin, 2), (fred, 1)):
        for n in range(orders):
            order = event(contact_id, "order_placed", order_id=f"{contact_id}-{n}")
            stack.store.record_event(
                order.model_copy(update={"timestamp": datetime(2026, 1, 1, tzinfo=UTC)})
            )
    for n in range(600):  # newer than the orders: the 500 newest events hold no order
        stack.store.record_event(event(erin, "email_opened", message=f"m-{n}"))
    results = {}
    for contact_id in (erin, fred):
        third = event(contact_id, "order_placed", order_id=f"{contact_id}-new")
        stack.store.record_event(third)  # the router routes stored events
        results[contact_id] = await route_event(
            stack.client, stack.store, index, third, task_queue=stack.task_queue
        )
    assert [r.workflow_id for r in results[erin].started if r.started] == [
        f"journey:loyal_reward:{erin}"
    ]
    assert results[fred].skipped == {"loyal_reward": "trigger `when` is false for this event"}
