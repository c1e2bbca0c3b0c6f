"""`wait_for` with a list of alternatives (events, conditions) and `since`: what compiles, and
every misuse at FILE:LINE:COL."""

from __future__ import annotations

from tests.compiler.conftest import HEAD, Project

DONE = "  - id: read_reply\n    exit: replied\n  - id: gold_path\n    exit: gold\n"


def test_a_list_of_events_and_a_condition_compiles_with_a_path_each(project: Project) -> None:
    plan = project.plan(
        HEAD + "  - id: reply_or_gold\n"
        "    wait_for:\n"
        "      - event: sms_replied\n"
        "        next: read_reply\n"
        "      - event: survey_submitted\n"
        "        when: event.properties.score is defined\n"
        "        match: [order_id]\n"
        "      - condition: contact.vip\n"
        "        next: gold_path\n"
        "    timeout: 3d\n"
        "    since: trigger\n" + DONE
    )
    step_ids = [plan.step_ids[i] if i is not None else None for i in plan.successors(0)]
    # sms_replied, survey_submitted (the following step), the condition, the time-out.
    assert step_ids == ["read_reply", "read_reply", "gold_path", "read_reply"]


def test_event_names_alone_are_a_list_of_alternatives(project: Project) -> None:
    plan = project.plan(HEAD + "  - wait_for: [sms_replied, nps_submitted]\n    timeout: 1d\n")
    assert plan.journey.steps[0].waited_events() == {"sms_replied", "nps_submitted"}  # type: ignore[union-attr]


def test_an_empty_list(project: Project) -> None:
    assert project.errors(HEAD + "  - wait_for: []\n    timeout: 1d\n") == [
        "journeys/test.yaml:5:15: wait_for: an empty list: name at least one event or condition"
    ]


def test_an_alternative_with_both_an_event_and_a_condition(project: Project) -> None:
    text = (
        HEAD + "  - wait_for:\n      - event: a\n        condition: contact.vip\n    timeout: 1d\n"
    )
    assert project.errors(text) == [
        "journeys/test.yaml:6:9: wait_for: an alternative has exactly one of `event: NAME` or "
        "`condition: EXPR`"
    ]


def test_an_unknown_key_in_an_alternative(project: Project) -> None:
    text = HEAD + "  - wait_for:\n      - event: a\n        nxt: done\n    timeout: 1d\n"
    assert project.errors(text) == [
        "journeys/test.yaml:7:9: unknown key 'nxt' in a wait_for alternative (did you mean 'next'?)"
    ]


def test_a_next_that_does_not_exist(project: Project) -> None:
    text = (
        HEAD
        + "  - wait_for:\n      - event: a\n        next: read_reploy\n    timeout: 1d\n"
        + DONE
    )
    assert project.errors(text) == [
        "journeys/test.yaml:7:15: next: no step has id 'read_reploy' (did you mean 'read_reply'?)"
    ]


def test_a_next_that_does_not_exist_is_found_beside_other_errors(project: Project) -> None:
    text = HEAD + "  - wait_for:\n      - event: a\n        next: nowhere\n    timeout: 5\n" + DONE
    assert project.errors(text) == [
        "journeys/test.yaml:7:15: next: no step has id 'nowhere'",
        "journeys/test.yaml:8:14: timeout: a duration needs a unit: write 5d, 5h or 5m",
    ]


def test_one_event_keys_beside_a_list(project: Project) -> None:
    text = (
        HEAD + "  - wait_for: [a, b]\n    when: event.properties.x\n    match: [order_id]\n"
        "    timeout: 1d\n"
    )
    assert project.errors(text) == [
        "journeys/test.yaml:6:5: when: with a list of alternatives, write `when` on the event it "
        "applies to (`- event: NAME` then `when: …`)",
        "journeys/test.yaml:7:5: match: with a list of alternatives, write `match` on the event "
        "it applies to (`- event: NAME` then `match: …`)",
    ]


def test_a_condition_on_an_unknown_attribute(project: Project) -> None:
    text = HEAD + '  - wait_for:\n      - condition: contact.teir == "gold"\n    timeout: 1d\n'
    assert project.diagnostics(text, attributes=True) == [
        "journeys/test.yaml:6:20: condition: contact.teir is no attribute of any contact in "
        "contacts/ nor a trait"
    ]


def test_a_condition_that_reads_nothing_about_the_contact(project: Project) -> None:
    text = HEAD + "  - wait_for:\n      - condition: journey.ready\n    timeout: 1d\n"
    assert project.errors(text) == [
        "journeys/test.yaml:6:20: condition: reads nothing about the contact (contact.*, "
        "count_events, last_event), so no change can make it true"
    ]


def test_a_condition_cannot_read_the_event(project: Project) -> None:
    text = HEAD + "  - wait_for:\n      - condition: event.properties.x\n    timeout: 1d\n"
    assert project.errors(text) == [
        "journeys/test.yaml:6:20: invalid expression: 'event' is only defined in the `when` of a "
        "trigger, wait_for, goal or exit_on; use trigger.* or steps.ID.event.* here"
    ]


def test_since_a_bad_value(project: Project) -> None:
    text = HEAD + "  - wait_for: a\n    timeout: 1d\n    since: yesterday\n"
    assert project.errors(text) == [
        "journeys/test.yaml:7:12: since: expected trigger, entry or a duration such as 7d, "
        "got 'yesterday'"
    ]


def test_since_without_an_event_to_look_back_for(project: Project) -> None:
    text = HEAD + "  - wait_for:\n      - condition: contact.vip\n    timeout: 1d\n    since: 2d\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:5: since: looks back for events, and this wait_for has only "
        "conditions"
    ]


def test_wait_for_neither_a_name_nor_a_list(project: Project) -> None:
    assert project.errors(HEAD + "  - wait_for: 5\n    timeout: 1d\n") == [
        "journeys/test.yaml:5:15: wait_for: expected an event name, or a list of alternatives "
        "(`- event: NAME` or `- condition: EXPR`)"
    ]


def test_adding_since_keeps_the_version_of_journeys_without_it(project: Project) -> None:
    one = project.plan(HEAD + "  - wait_for: a\n    timeout: 1d\n", name="one")
    dumped = one.journey.model_dump(mode="json", by_alias=True)
    assert "since" not in dumped["steps"][0]
