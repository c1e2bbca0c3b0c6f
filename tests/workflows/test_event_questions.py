"""`count_events`/`last_event` inside a run see the contact's whole history (answered by the
store), and the run's history carries the answers, never the contact's events (issue 8 item 3)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from runtime.starter import ended_run
from store.records import ContactRecord, EventRecord
from tests.workflows.conftest import ROOT, START, compile_plan, contact
from tests.workflows.harness import harness
from workflows.contracts import JourneyResult

LOYALTY = """\
name: Loyalty
trigger: manual
steps:
  - id: loyal_yet
    branch:
      - when: count_events("order_placed") >= 3 and count_events("order_placed", within="15d") == 1
        goto: loyal
    else: regular
  - id: loyal
    update:
      loyal_since_order: "{{ last_event('order_placed').properties.order_id }}"
  - id: thanks
    send: sms
    template: loyalty/thanks
    category: transactional
    next: done
  - id: regular
    exit: completed
  - id: done
    exit: completed
"""


def engaged_history(contact_id: str) -> list[EventRecord]:
    """3 orders (the latest ten days ago), then 600 email opens — all newer than the orders."""
    orders = [
        EventRecord(
            contact_id=contact_id,
            name="order_placed",
            timestamp=START - timedelta(days=days),
            properties={"order_id": f"O-{days}"},
        )
        for days in (30, 20, 10)
    ]
    opens = [
        EventRecord(
            contact_id=contact_id,
            name="email_opened",
            timestamp=START - timedelta(days=5) + timedelta(minutes=n),
            properties={"message": f"m-{n}"},
        )
        for n in range(600)
    ]
    return orders + opens


@dataclass
class EngagedRun:
    result: JourneyResult
    history: WorkflowHistory
    contact: ContactRecord | None


async def run_engaged_customer(env: WorkflowEnvironment, tmp_path: Path) -> EngagedRun:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    (tmp_path / "templates" / "loyalty").mkdir(exist_ok=True)  # the sample has one too
    (tmp_path / "templates" / "loyalty" / "thanks.sms.j2").write_text(
        "Thanks for order {{ count_events('order_placed') }}, "
        "{{ last_event('order_placed').properties.order_id }}!\n"
    )
    path = tmp_path / "loyalty.yaml"
    path.write_text(LOYALTY)
    plan = compile_plan(path, tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        h.store.upsert_contact(contact())
        for event in engaged_history("alice"):
            h.store.record_event(event)
        handle = await h.start(plan, contact(), at=START)
        result = await ended_run(handle)
        return EngagedRun(result, await handle.fetch_history(), h.store.get_contact("alice"))


async def test_an_engaged_customer_with_three_orders_takes_the_loyal_branch(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    run = await run_engaged_customer(env, tmp_path)
    branches = [(e.step, e.result) for e in run.result.timeline if e.type == "branch"]
    assert branches == [("loyal_yet", "loyal")]
    assert [e.reason for e in run.result.timeline if e.type == "error"] == []
    assert run.contact is not None and run.contact.attributes["loyal_since_order"] == "O-10"
    sent = [(e.step, e.status, e.body) for e in run.result.timeline if e.type == "send"]
    assert sent == [("thanks", "sent", "Thanks for order 3, O-10!")]


async def test_the_run_history_carries_answers_not_the_contacts_events(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    run = await run_engaged_customer(env, tmp_path)
    # Every payload the run wrote into Temporal (JSON inside the protobuf events).
    written = b"".join(event.SerializeToString() for event in run.history.events)
    assert b"email_opened" not in written
    assert b'"count:order_placed":3' in written
    assert b"O-20" not in written  # an older order's properties: only the latest is carried
