"""The step graph: jumps resolve, ids are unique, every step is reachable, loops wait."""

from __future__ import annotations

import pytest

from tests.compiler.conftest import HEAD, Project

SEND = "  - id: welcome\n    send: email\n    template: onboarding/welcome\n"
DONE = "  - id: done\n    exit: completed\n"


def test_next_to_a_missing_step_suggests_the_closest_id(project: Project) -> None:
    text = HEAD + SEND + "    next: dnoe\n  - wait: 1d\n" + DONE
    assert project.errors(text) == [
        "journeys/test.yaml:8:11: next: no step has id 'dnoe' (did you mean 'done'?)"
    ]


def test_goto_to_a_missing_step(project: Project) -> None:
    text = (
        HEAD
        + ("  - id: check\n    branch:\n      - when: contact.vip\n        goto: vip_offer\n")
        + SEND
    )
    assert project.errors(text) == ["journeys/test.yaml:8:15: goto: no step has id 'vip_offer'"]


def test_else_to_a_missing_step(project: Project) -> None:
    text = (
        HEAD
        + (
            "  - id: check\n    branch:\n      - when: contact.vip\n        goto: welcome\n"
            "    else: welcom\n"
        )
        + SEND
    )
    assert project.errors(text) == [
        "journeys/test.yaml:9:11: else: no step has id 'welcom' (did you mean 'welcome'?)"
    ]


def test_on_timeout_to_a_missing_step(project: Project) -> None:
    text = (
        HEAD + ("  - wait_for: order_placed\n    timeout: 5d\n    on_timeout: sms_offer\n") + DONE
    )
    assert project.errors(text) == [
        "journeys/test.yaml:7:17: on_timeout: no step has id 'sms_offer'"
    ]


def test_split_to_a_missing_step_points_at_the_target(project: Project) -> None:
    text = (
        HEAD
        + "  - split:\n      welcome: 50\n      tipps: 50\n"
        + SEND
        + ("  - id: tips\n    send: email\n    template: onboarding/tips\n")
    )
    assert project.errors(text) == [
        "journeys/test.yaml:7:7: split: no step has id 'tipps' (did you mean 'tips'?)"
    ]


def test_a_jump_to_a_missing_step_is_found_even_when_the_model_fails(project: Project) -> None:
    text = HEAD + SEND + "    next: nowhere\n  - wait: 3x\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:11: next: no step has id 'nowhere'",
        "journeys/test.yaml:9:11: wait: invalid duration '3x': use 30m, 2h, 3d, 1w or ISO 8601 "
        "such as P3D or PT2H",
    ]


def test_a_duplicate_step_id_points_at_the_second(project: Project) -> None:
    text = HEAD + SEND + "  - id: welcome\n    wait: 1d\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:9: duplicate step id 'welcome' (first used at step 1)"
    ]


def test_a_step_after_an_exit_is_unreachable(project: Project) -> None:
    text = HEAD + DONE + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:7:5: step 'welcome' is unreachable: no step leads to it "
        "(give the step before it a `next`, or jump to it)"
    ]


def test_a_step_skipped_by_next_is_unreachable(project: Project) -> None:
    text = HEAD + SEND + "    next: done\n  - wait: 1d\n" + DONE
    assert project.errors(text) == [
        "journeys/test.yaml:9:5: step 'wait_2' is unreachable: no step leads to it "
        "(give the step before it a `next`, or jump to it)"
    ]


def test_a_step_reached_only_by_a_jump_is_reachable(project: Project) -> None:
    project.plan(
        HEAD
        + "  - id: check\n    branch:\n      - when: contact.vip\n        goto: vip\n"
        + "    else: done\n"
        + "  - id: vip\n    send: email\n    template: onboarding/welcome\n"
        + DONE
    )


def test_a_loop_without_a_wait(project: Project) -> None:
    text = (
        HEAD
        + SEND
        + ("  - id: again\n    branch:\n      - when: contact.vip\n        goto: welcome\n")
    )
    assert project.errors(text) == [
        "journeys/test.yaml:8:5: loop without a wait: welcome -> again -> welcome would repeat "
        "forever; add a wait to the loop"
    ]


def test_a_step_that_jumps_to_itself_is_a_loop(project: Project) -> None:
    text = HEAD + "  - id: spin\n    update: {spins: 1}\n    next: spin\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:5: loop without a wait: spin -> spin would repeat forever; "
        "add a wait to the loop"
    ]


@pytest.mark.parametrize(
    "wait",
    [
        "  - wait: 1d\n",
        '  - wait_until: "09:00"\n',
        "  - wait_for: order_placed\n    timeout: 7d\n",
    ],
    ids=["wait", "wait_until", "wait_for"],
)
def test_a_loop_with_a_wait_is_fine(project: Project, wait: str) -> None:
    plan = project.plan(
        HEAD
        + SEND
        + wait
        + "  - id: again\n    branch:\n      - when: count_events('order_placed') == 0\n"
        + "        goto: welcome\n"
    )
    assert plan.step_ids[0] == "welcome"
