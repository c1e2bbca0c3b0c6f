"""Content experiments (`variants` on a send): each contact's variant is stable and recorded on
the run and in the ledger; a `winner` rule, once its test is significant, is recorded and every
later send uses the winner (docs/journeys.md, docs/metrics.md)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from runtime.simulator import SimulationError, forced_arms, simulate
from runtime.starter import ended_run
from settings import Settings
from store import Store
from store.records import ContactRecord
from tests.workflows.conftest import ROOT, START, compile_plan, contact, sample
from tests.workflows.harness import harness
from tests.workflows.test_guarantees import SPLIT, project
from workflows.contact_file import load_contact_file

SUBJECT_TEST = """\
name: Subject line test
trigger: manual
goal: order_placed
steps:
  - id: offer
    send: email
    category: transactional
    variants:
      a: {template: onboarding/welcome, weight: 1}
      b: {template: onboarding/tips, weight: 1}
"""

WITH_WINNER = SUBJECT_TEST + "    winner: {metric: clicked, after: 20, confidence: 95}\n"


async def test_each_contact_keeps_its_variant_and_the_ledger_records_it(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SUBJECT_TEST, "subject"), tmp_path / "templates")
    seen: dict[str, set[str]] = {}
    async with harness(env, tmp_path) as h:
        for entry in range(2):
            for n in range(8):
                who = f"c{n}"
                result = await ended_run(await h.start(plan, contact(who), key=str(entry)))
                (send,) = [e for e in result.timeline if e.type == "send"]
                seen.setdefault(who, set()).add(send.variant or "")
        ledger = {
            (m.contact_id, m.variant, m.template)
            for n in range(8)
            for m in h.store.ledger.messages_for_contact(f"c{n}")
        }
    assert all(len(arms) == 1 for arms in seen.values()), seen
    assert set().union(*seen.values()) == {"a", "b"}
    templates = {"a": "onboarding/welcome", "b": "onboarding/tips"}
    assert ledger == {(who, arm, templates[arm]) for who, (arm,) in seen.items()}


def _history(store: Store, arm: str, sent: int, clicked: int) -> None:
    """`sent` earlier sends of the experiment's variant `arm`, `clicked` of them clicked."""
    for n in range(sent):
        key = f"earlier-{arm}-{n}"
        store.ledger.claim(
            key,
            contact_id=f"past-{arm}-{n}",
            channel="email",
            journey="subject",
            step_id="offer",
            variant=arm,
            template="onboarding/welcome",
            status="sent",
        )
        if n < clicked:
            store.ledger.mark(key, "clicked")


async def test_a_significant_winner_is_recorded_and_every_later_send_uses_it(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, WITH_WINNER, "subject"), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        _history(h.store, "a", sent=20, clicked=2)
        _history(h.store, "b", sent=20, clicked=12)
        sends = []
        for n in range(6):
            result = await ended_run(await h.start(plan, contact(f"c{n}")))
            sends.extend(e for e in result.timeline if e.type == "send")
        decision = h.store.experiments.decision("subject", "offer")
        ledger = [m for n in range(6) for m in h.store.ledger.messages_for_contact(f"c{n}")]
    assert [send.variant for send in sends] == ["b"] * 6
    assert {(m.variant, m.template) for m in ledger} == {("b", "onboarding/tips")}
    assert decision is not None
    assert (decision.winner, decision.metric, decision.confidence) == ("b", "clicked", 95.0)
    assert decision.counts == {"a": {"sent": 20, "clicked": 2}, "b": {"sent": 20, "clicked": 12}}
    # 2/20 against 12/20: pooled 14/40, z = 0.5 / 0.1508 = 3.315, two-sided p = 0.0009165
    assert round(decision.p_value, 7) == 0.0009165
    assert decision.decided_by.startswith("winner rule, at a send of workflow journey:subject:c0")


async def test_no_winner_before_after_is_reached_even_when_one_variant_leads(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, WITH_WINNER, "subject"), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        _history(h.store, "a", sent=19, clicked=0)
        _history(h.store, "b", sent=20, clicked=15)
        result = await ended_run(await h.start(plan, contact("c2")))
        decision = h.store.experiments.decision("subject", "offer")
    assert decision is None
    (send,) = [e for e in result.timeline if e.type == "send"]
    assert send.variant in ("a", "b")


async def test_a_forced_variant_is_sent_even_after_a_winner(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, WITH_WINNER, "subject"), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        _history(h.store, "a", sent=20, clicked=2)
        _history(h.store, "b", sent=20, clicked=12)
        result = await ended_run(await h.start(plan, contact("c1"), arms={"offer": "a"}))
    (send,) = [e for e in result.timeline if e.type == "send"]
    assert (send.variant, send.subject) == ("a", "Welcome to Rapport Coffee Co., C1")


async def test_simulate_sends_the_forced_variant_of_the_win_back_offer(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = sample("win_back")
    person = load_contact_file(ROOT / "contacts" / "bruno.yaml")
    subjects = {}
    for arm in ("a", "b"):
        result = await simulate(
            plan,
            ContactRecord(**person.profile()),
            person.event_records(START),
            [],
            start=START,
            until=timedelta(days=1),
            settings=Settings(),
            work_dir=tmp_path / arm,
            arms=forced_arms(plan, [f"offer={arm}"]),
            env=env,
        )
        (send,) = [e for e in result.timeline if e.type == "send"]
        subjects[send.variant] = send.subject
    assert subjects == {
        "a": "We miss you, Bruno: here's 15% off your next bag",
        "b": "Bruno, code COMEBACK takes 15% off your next bag",
    }


async def test_a_forced_split_arm_is_taken_by_every_contact(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SPLIT, "split"), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        taken = []
        for n in range(4):
            result = await ended_run(await h.start(plan, contact(f"c{n}"), arms={"pick": "b"}))
            taken.extend(e.result for e in result.timeline if e.type == "split")
    assert taken == ["b"] * 4


def test_a_variant_that_the_step_does_not_have_is_refused_by_name() -> None:
    with pytest.raises(SimulationError) as refused:
        forced_arms(sample("win_back"), ["offer=c"])
    assert str(refused.value) == "--variant: step 'offer' has no arm 'c'; its arms: a, b"


def test_the_recorded_win_back_history_replays_a_send_with_a_variant() -> None:
    """tests/workflows/histories/win_back_orders.variants.json (test_replay.py replays it) is a
    run through the offer's experiment: its send request names the contact's variant."""
    history = json.loads(
        (ROOT / "tests/workflows/histories/win_back_orders.variants.json").read_text()
    )
    requests = [
        json.loads(base64.b64decode(payload["data"]))
        for event in history["events"]
        if (scheduled := event.get("activityTaskScheduledEventAttributes"))
        and scheduled["activityType"]["name"] == "send_email"
        for payload in scheduled["input"]["payloads"]
    ]
    assert [(r["step_id"], r["variant"]) for r in requests] == [("offer", "b")]
