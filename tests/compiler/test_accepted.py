"""What the compiler accepts: every step kind, every trigger kind, the sample journeys."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from tests.compiler.conftest import HEAD, ROOT, Project
from workflows.compiler import compile_paths
from workflows.model import (
    BranchStep,
    EventTrigger,
    ExitStep,
    ManualTrigger,
    SegmentAtTrigger,
    SegmentScheduleTrigger,
    SendStep,
    SplitStep,
    UpdateStep,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
    WebhookStep,
)
from workflows.plan import JourneyPlan

EVERY_STEP = (
    HEAD
    + """\
  - id: welcome
    send: email
    template: onboarding/welcome
    category: transactional
  - id: staff_copy
    send: email
    template: onboarding/welcome
    to: "{{ journey.staff_inbox }}"
  - wait: 2d
  - id: morning
    wait_until: "09:00"
  - id: before_event
    wait_until: "{{ journey.starts_at }}"
    offset: -1d
  - id: fixed_moment
    wait_until: "2026-12-24T09:00:00+01:00"
  - id: await_order
    wait_for: order_placed
    timeout: 5d
    when: event.properties.total > 10
    match: [cart_id]
    on_timeout: nudge
  - id: ordered
    branch:
      - when: steps.await_order.event.properties.total >= 100
        goto: big_spender
      - when: count_events("order_placed", within="30d") > 1
        goto: regular
    else: done
  - id: nudge
    send: sms
    template: onboarding/first_order_offer
  - id: ab
    split: {variant_a: 50, variant_b: 50}
  - id: variant_a
    update:
      segment: a
      nudged_at: "{{ now().isoformat() }}"
    next: done
  - id: variant_b
    webhook: https://crm.example/hooks/nudged
    method: PUT
    body:
      contact: "{{ contact.id }}"
    headers:
      X-Source: rapport
    next: done
  - id: big_spender
    exit: converted
  - id: regular
    exit:
  - id: done
    exit: completed
"""
)

TRIGGERS = {
    "event": (
        "trigger:\n  event: order_delivered\n  when: event.properties.total > 0\n"
        "  key: properties.order_id\n",
        EventTrigger,
    ),
    "schedule": (
        'trigger:\n  segment: days_since(contact.last_order_at) > 60\n  schedule: "0 9 * * *"\n',
        SegmentScheduleTrigger,
    ),
    "at": (
        'trigger:\n  segment: contact.vip\n  at: "2026-12-01T17:00:00+00:00"\n',
        SegmentAtTrigger,
    ),
    "at_unquoted": (
        "trigger:\n  segment: contact.vip\n  at: 2026-12-01T17:00:00Z\n",
        SegmentAtTrigger,
    ),
    "manual": ("trigger: manual\n", ManualTrigger),
    "manual_mapping": ("trigger:\n  manual: true\n", ManualTrigger),
}


def test_every_step_kind_is_accepted(project: Project) -> None:
    plan = project.plan(EVERY_STEP)
    kinds = {type(step) for step in plan.journey.steps}
    assert kinds == {
        SendStep,
        WaitStep,
        WaitUntilStep,
        WaitForStep,
        BranchStep,
        SplitStep,
        UpdateStep,
        WebhookStep,
        ExitStep,
    }


def test_every_step_kind_round_trips_through_json(project: Project) -> None:
    plan = project.plan(EVERY_STEP)
    assert JourneyPlan.model_validate_json(plan.model_dump_json()) == plan


def test_step_values_are_parsed(project: Project) -> None:
    plan = project.plan(EVERY_STEP)
    steps = {sid: step for sid, step in zip(plan.step_ids, plan.journey.steps, strict=True)}
    assert steps["wait_3"] == WaitStep(wait=timedelta(days=2))
    before = steps["before_event"]
    assert isinstance(before, WaitUntilStep) and before.offset == timedelta(days=-1)
    regular = steps["regular"]
    assert isinstance(regular, ExitStep) and regular.exit == "completed"
    send = steps["nudge"]
    assert isinstance(send, SendStep) and send.category == "marketing"
    webhook = steps["variant_b"]
    assert isinstance(webhook, WebhookStep) and webhook.method == "PUT"


def test_steps_without_an_id_get_kind_and_position(project: Project) -> None:
    plan = project.plan(
        HEAD + "  - send: email\n    template: onboarding/welcome\n"
        "  - wait: 1d\n  - exit: completed\n"
    )
    assert plan.step_ids == ("send_1", "wait_2", "exit_3")


def test_an_auto_id_never_takes_a_declared_id(project: Project) -> None:
    plan = project.plan(
        HEAD + "  - id: wait_2_\n    send: email\n    template: onboarding/welcome\n"
        "  - wait: 1d\n  - id: wait_2\n    exit: completed\n"
    )
    assert plan.step_ids == ("wait_2_", "wait_2__", "wait_2")


@pytest.mark.parametrize("kind", sorted(TRIGGERS))
def test_every_trigger_kind_is_accepted(project: Project, kind: str) -> None:
    text, model = TRIGGERS[kind]
    plan = project.plan(f"name: Trigger {kind}\n{text}steps:\n  - exit: completed\n")
    assert isinstance(plan.journey.trigger, model)
    assert JourneyPlan.model_validate_json(plan.model_dump_json()) == plan


def test_an_unquoted_broadcast_time_keeps_its_offset(project: Project) -> None:
    text, _ = TRIGGERS["at_unquoted"]
    plan = project.plan(f"name: Broadcast\n{text}steps:\n  - exit: completed\n")
    trigger = plan.journey.trigger
    assert isinstance(trigger, SegmentAtTrigger)
    assert trigger.at == datetime(2026, 12, 1, 17, tzinfo=UTC)


def test_every_top_level_key_is_accepted(project: Project) -> None:
    plan = project.plan(
        """\
        name: Everything
        description: All the optional keys.
        status: paused
        trigger:
          event: signed_up
        audience: contact.email is defined
        reentry: 30d
        goal:
          event: order_placed
          when: event.properties.total > 0
        exit_on: [account_closed, {event: unsubscribed}]
        holdout: 10
        data:
          offer_code: WELCOME10
        settings:
          quiet_hours: "21:00-08:00"
          timezone: Europe/Paris
          frequency_cap: 3 per 7d
        steps:
          - exit: completed
        """
    )
    journey = plan.journey
    assert journey.reentry_after() == timedelta(days=30)
    assert journey.goal is not None and journey.goal.event == "order_placed"
    assert [spec.event for spec in journey.exit_on] == ["account_closed", "unsubscribed"]
    assert journey.settings.timezone == "Europe/Paris"
    assert JourneyPlan.model_validate_json(plan.model_dump_json()) == plan


def test_the_sample_journeys_compile_without_diagnostics(project: Project) -> None:
    shutil.rmtree(project.root / "journeys")
    shutil.copytree(ROOT / "journeys", project.root / "journeys")
    result = compile_paths([project.root / "journeys"], project.templates)
    assert [str(d) for d in result.diagnostics] == []
    assert sorted(result.plans) == [
        "birthday_reward",
        "feedback_follow_up",
        "loyalty_tier_upgrade",
        "onboarding",
        "referral_reward",
        "vip_event",
        "win_back",
    ]
    for plan in result.plans.values():
        assert JourneyPlan.model_validate_json(plan.model_dump_json()) == plan
