"""A run waiting on a condition over the contact hears when the contact changes: an identify
(`route_contact_change`) or a `trait_changed` event; nothing else is touched."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client

from api.ingest import ingest_identify
from runtime.router import EventIndex, route_contact_change, route_event
from store.records import ContactRecord
from tests.routing.test_route_event import event
from tests.stack.helpers import ROOT, Stack
from tests.waiting import eventually
from workflows.compiler import compile_journey
from workflows.journey_workflow import JourneyWorkflow
from workflows.plan import JourneyPlan

GOLD_WAIT = """\
name: Gold wait
trigger:
  event: order_delivered
steps:
  - id: reply_or_gold
    wait_for:
      - event: sms_replied
      - condition: contact.tier | default("bronze") == "gold"
        next: gold
    timeout: 3d
    on_timeout: done
  - id: done
    exit: completed
  - id: gold
    exit: gold
"""


def gold_wait(tmp_path: Path) -> JourneyPlan:
    path = tmp_path / "gold_wait.yaml"
    path.write_text(GOLD_WAIT)
    plan, diagnostics = compile_journey(path, ROOT / "templates")
    assert plan is not None, diagnostics
    return plan


async def waiting_run(stack: Stack, index: EventIndex, contact_id: str) -> str:
    started = await route_event(
        stack.client,
        stack.store,
        index,
        event(contact_id, "order_delivered"),
        task_queue=stack.task_queue,
    )
    workflow_id = started.started[0].workflow_id
    handle = stack.client.get_workflow_handle(workflow_id)

    async def waiting() -> bool:
        status = await handle.query(JourneyWorkflow.status)
        return status.waiting_for == "sms_replied or a condition"

    await eventually(waiting, f"{workflow_id} waiting for sms_replied or a condition")
    return workflow_id


async def outcome(stack: Stack, workflow_id: str) -> str:
    handle = stack.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id)
    return str((await asyncio.wait_for(handle.result(), 20)).outcome)  # else it waits 3 days


async def test_an_identify_wakes_a_run_waiting_on_a_condition(stack: Stack, tmp_path: Path) -> None:
    index = EventIndex.build({"gold_wait": gold_wait(tmp_path)})
    dana = stack.contact("dana")
    workflow_id = await waiting_run(stack, index, dana)

    async def client() -> Client:
        return stack.client

    gold = ContactRecord(id=dana, attributes={"tier": "gold"})
    await ingest_identify(stack.store, index, gold, client=client, task_queue=stack.task_queue)
    assert await outcome(stack, workflow_id) == "gold"


async def test_a_trait_changed_event_reaches_a_run_waiting_on_a_condition(
    stack: Stack, tmp_path: Path
) -> None:
    index = EventIndex.build({"gold_wait": gold_wait(tmp_path)})
    assert index.listens["trait_changed"] == frozenset({"gold_wait"})
    eli = stack.contact("eli")
    workflow_id = await waiting_run(stack, index, eli)
    stack.store.upsert_contact(ContactRecord(id=eli, attributes={"tier": "gold"}))
    changed = event(eli, "trait_changed", trait="tier", value="gold")
    routed = await route_event(stack.client, stack.store, index, changed, task_queue="unused")
    assert routed.signalled == [workflow_id]
    assert await outcome(stack, workflow_id) == "gold"


async def test_without_a_condition_an_identify_contacts_nobody(stack: Stack) -> None:
    index = EventIndex.build(stack.plans)
    assert index.watch == frozenset()

    async def no_client() -> Client:
        raise AssertionError("Temporal was contacted")

    assert await route_contact_change(no_client, stack.store, index, stack.contact("dana")) == []
