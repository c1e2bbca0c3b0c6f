"""Expressions are parsed at compile time: syntax, names, `event` scope, `steps.ID` references."""

from __future__ import annotations

from tests.compiler.conftest import HEAD, Project

SEND = "  - id: welcome\n    send: email\n    template: onboarding/welcome\n"


def branch(condition: str) -> str:
    """A journey whose branch condition (line 7, column 15) is `condition`."""
    return (
        HEAD
        + (
            f"  - id: check\n    branch:\n      - when: {condition}\n        goto: welcome\n"
            "    else: done\n"
        )
        + SEND
        + "  - id: done\n    exit: completed\n"
    )


def test_an_incomplete_condition(project: Project) -> None:
    text = (
        HEAD.replace(
            "  event: signed_up\n", "  event: signed_up\n  when: event.properties.plan ==\n"
        )
        + SEND
    )
    assert project.errors(text) == [
        "journeys/test.yaml:4:9: invalid expression: incomplete, something is missing at the end "
        "(a value after an operator, or a closing bracket)"
    ]


def test_a_syntax_error_in_a_condition(project: Project) -> None:
    assert project.errors(branch("contact.vip ==== true")) == [
        "journeys/test.yaml:7:15: invalid expression: unexpected '=='"
    ]


def test_an_unclosed_string_in_a_condition(project: Project) -> None:
    assert project.errors(branch("contact.plan == 'gold")) == [
        'journeys/test.yaml:7:15: invalid expression: unexpected character "\'" '
        "(a string without its closing quote?)"
    ]


def test_a_syntax_error_in_a_templated_value(project: Project) -> None:
    text = HEAD + SEND + '    to: "{{ journey.staff_inbox }"\n'
    assert project.errors(text) == ["journeys/test.yaml:8:9: invalid expression: unexpected '}'"]


def test_an_unknown_name_lists_the_names_that_exist(project: Project) -> None:
    assert project.errors(branch("customer.vip")) == [
        "journeys/test.yaml:7:15: invalid expression: unknown name 'customer': expressions "
        "here may use contact, count_events, days_since, journey, last_event, now, steps, trigger"
    ]


def test_an_unknown_name_in_an_audience_lists_the_segment_names(project: Project) -> None:
    text = HEAD + SEND + "audience: trigger.properties.plan == 'pro'\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:11: invalid expression: unknown name 'trigger': expressions here "
        "may use contact, count_events, days_since, journey, last_event, now"
    ]


def test_event_in_a_branch_is_an_error_with_a_hint(project: Project) -> None:
    assert project.errors(branch('event.name == "order_placed"')) == [
        "journeys/test.yaml:7:15: invalid expression: 'event' is only defined in the `when` of "
        "a trigger, wait_for, goal or exit_on; use trigger.* or steps.ID.event.* here"
    ]


def test_event_in_a_wait_for_condition_is_fine(project: Project) -> None:
    project.plan(
        HEAD + "  - wait_for: order_placed\n    timeout: 3d\n"
        "    when: event.properties.total > 20\n" + SEND
    )


def test_braces_in_a_condition_are_an_error(project: Project) -> None:
    assert project.errors(branch('"{{ contact.vip }}"')) == [
        "journeys/test.yaml:7:15: invalid expression: write conditions bare, without {{ }}"
    ]


def test_steps_referring_to_a_missing_step(project: Project) -> None:
    assert project.errors(branch("steps.welcom.status == 'sent'")) == [
        "journeys/test.yaml:7:15: steps.welcom: no step has id 'welcom' (did you mean 'welcome'?)"
    ]


def test_steps_referring_to_a_missing_step_in_an_update(project: Project) -> None:
    text = HEAD + SEND + '  - update:\n      score: "{{ steps.survey.event.properties.score }}"\n'
    assert project.errors(text) == [
        "journeys/test.yaml:9:14: steps.survey: no step has id 'survey'"
    ]


def test_wait_until_that_is_no_time(project: Project) -> None:
    text = HEAD + '  - wait_until: "tomorrow"\n' + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:5:17: wait_until: 'tomorrow' is neither a time of day (09:00), a "
        "time on a later day (10:00 +2d), an ISO timestamp, nor '{{ expression }}'"
    ]


def test_wait_until_an_impossible_time_of_day(project: Project) -> None:
    text = HEAD + '  - wait_until: "25:00"\n' + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:5:17: wait_until: '25:00' is neither a time of day (09:00), a "
        "time on a later day (10:00 +2d), an ISO timestamp, nor '{{ expression }}'"
    ]


def test_wait_until_a_timestamp_without_an_offset(project: Project) -> None:
    text = HEAD + '  - wait_until: "2026-12-24T09:00:00"\n' + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:5:17: wait_until: '2026-12-24T09:00:00' needs a UTC offset, "
        "e.g. 2026-12-24T09:00:00+00:00"
    ]


def test_wait_until_with_an_unknown_name(project: Project) -> None:
    text = HEAD + '  - wait_until: "{{ jorney.starts_at }}"\n' + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:5:17: invalid expression: unknown name 'jorney': expressions here "
        "may use contact, count_events, days_since, journey, last_event, now, steps, trigger"
    ]


def test_a_trigger_key_is_checked_as_an_event_path(project: Project) -> None:
    text = HEAD.replace("  event: signed_up\n", "  event: signed_up\n  key: properties.\n") + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:4:8: invalid expression: incomplete, something is missing at the end "
        "(a value after an operator, or a closing bracket)"
    ]


def test_an_unknown_filter_suggests_the_closest(project: Project) -> None:
    assert project.errors(branch("contact.vip | defualt(false)")) == [
        "journeys/test.yaml:7:15: invalid expression: unknown filter 'defualt' "
        "(did you mean 'default'?)"
    ]


def test_an_unknown_test_suggests_the_closest(project: Project) -> None:
    assert project.errors(branch("contact.vip is defind")) == [
        "journeys/test.yaml:7:15: invalid expression: unknown test 'defind' "
        "(did you mean 'defined'?)"
    ]


def test_an_unknown_filter_in_a_templated_value(project: Project) -> None:
    text = HEAD + SEND + '    to: "{{ journey.staff_inbox | lowr }}"\n'
    assert project.errors(text) == [
        "journeys/test.yaml:8:9: invalid expression: unknown filter 'lowr' (did you mean 'lower'?)"
    ]


def test_event_functions_take_literal_arguments(project: Project) -> None:
    assert project.errors(branch("count_events(contact.favourite) > 0")) == [
        "journeys/test.yaml:7:15: invalid expression: count_events: the event name must be a "
        "quoted literal, so the events can be counted before the expression runs: "
        'count_events("order_placed") or count_events("order_placed", within="30d")'
    ]
    assert project.errors(branch('count_events("order_placed", within="3 weeks") > 0')) == [
        "journeys/test.yaml:7:15: invalid expression: count_events(within=…): invalid "
        "duration '3 weeks': use 30m, 2h, 3d, 1w or ISO 8601 such as P3D or PT2H"
    ]


def test_a_plan_carries_the_event_questions_of_all_its_expressions(project: Project) -> None:
    text = (
        HEAD.replace(
            "  event: signed_up\n", '  event: signed_up\n  when: last_event("a") is none\n'
        )
        + SEND
        + "    to: \"{{ count_events('b', within='7d') }}@example.com\"\n"
    )
    project.journey(text)
    plan, diagnostics = project.compile()
    assert plan is not None, diagnostics
    assert [question.call() for question in plan.event_questions] == [
        "count_events('b', within='7d')",
        "last_event('a')",
    ]


def test_wait_until_a_later_day_with_an_impossible_time(project: Project) -> None:
    text = HEAD + '  - wait_until: {time: "25:00", days: 2}\n' + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:5:24: time: invalid time of day '25:00': use HH:MM, e.g. 09:00"
    ]


def test_wait_until_a_negative_number_of_days(project: Project) -> None:
    text = HEAD + '  - wait_until: {time: "10:00", days: -1}\n' + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:5:39: days: input should be greater than or equal to 0"
    ]


def test_wait_until_days_without_a_time(project: Project) -> None:
    text = HEAD + "  - wait_until: {days: 2}\n" + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:5:17: missing required key 'time' in wait_until"
    ]


def test_goal_within_without_a_unit(project: Project) -> None:
    text = HEAD + SEND + "goal: {event: order_placed, within: 14}\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:37: within: a duration needs a unit: write 14d, 14h or 14m"
    ]


def test_a_dict_method_read_as_an_event_property_in_a_condition(project: Project) -> None:
    text = HEAD.replace(
        "  event: signed_up\n", "  event: signed_up\n  when: event.properties.values | length\n"
    )
    assert project.errors(text + SEND) == [
        "journeys/test.yaml:4:9: event.properties.values reads the dict method values(), not "
        "the property 'values': write event.properties[\"values\"]"
    ]
