"""Errors against the journey language: each at the YAML node that is wrong, in plain words."""

from __future__ import annotations

from datetime import timedelta

from tests.compiler.conftest import HEAD, Project

SEND = "  - id: welcome\n    send: email\n    template: onboarding/welcome\n"


def test_unknown_top_level_key_points_at_the_key_with_a_suggestion(project: Project) -> None:
    text = HEAD + SEND + "descripton: typo\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:1: unknown key 'descripton' (did you mean 'description'?)"
    ]


def test_unknown_key_in_a_step_names_the_step_kind(project: Project) -> None:
    text = HEAD + SEND + "    catgory: transactional\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:5: unknown key 'catgory' of a send step (did you mean 'category'?)"
    ]


def test_unknown_key_in_settings_is_suggested_from_the_settings(project: Project) -> None:
    text = HEAD + SEND + 'settings:\n  quiet_hour: "21:00-08:00"\n'
    assert project.errors(text) == [
        "journeys/test.yaml:9:3: unknown key 'quiet_hour' in settings (did you mean 'quiet_hours'?)"
    ]


def test_a_typo_in_a_step_kind_points_at_it_with_a_suggestion(project: Project) -> None:
    text = HEAD + "  - id: welcome\n    sned: email\n    template: onboarding/welcome\n"
    assert project.errors(text) == [
        "journeys/test.yaml:6:5: unknown step kind 'sned' (did you mean 'send'?)"
    ]


def test_a_step_with_two_action_keys_points_at_the_second(project: Project) -> None:
    text = HEAD + "  - send: email\n    template: onboarding/welcome\n    wait: 2d\n"
    assert project.errors(text) == [
        "journeys/test.yaml:7:5: a step has one action, this one has 2 (send, wait); "
        "split it into separate steps"
    ]


def test_a_step_without_an_action_lists_the_kinds(project: Project) -> None:
    text = HEAD + "  - id: lonely\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:5: a step needs one action key: send, wait, wait_until, wait_for, "
        "branch, split, update, webhook, exit"
    ]


def test_a_missing_required_key_points_at_the_step(project: Project) -> None:
    text = HEAD + "  - id: welcome\n    send: email\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:5: missing required key 'template' of a send step (or `variants`)"
    ]


def test_a_missing_timeout_points_at_the_step(project: Project) -> None:
    text = HEAD + "  - wait_for: order_placed\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:5: missing required key 'timeout' of a wait_for step"
    ]


def test_missing_top_level_keys_point_at_the_document(project: Project) -> None:
    assert project.errors("description: nothing else\n") == [
        "journeys/test.yaml:1:1: missing required key 'name'",
        "journeys/test.yaml:1:1: missing required key 'steps'",
        "journeys/test.yaml:1:1: missing required key 'trigger'",
    ]


def test_a_bad_channel_lists_the_choices(project: Project) -> None:
    text = HEAD + "  - send: fax\n    template: onboarding/welcome\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:11: send: expected 'email' or 'sms', got 'fax'"
    ]


def test_a_bad_category_lists_the_choices(project: Project) -> None:
    text = HEAD + SEND + "    category: promo\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:15: category: expected 'marketing' or 'transactional', got 'promo'"
    ]


def test_a_duration_with_an_unknown_unit(project: Project) -> None:
    assert project.errors(HEAD + "  - wait: 3x\n") == [
        "journeys/test.yaml:5:11: wait: invalid duration '3x': use 30m, 2h, 3d, 1w or ISO 8601 "
        "such as P3D or PT2H"
    ]


def test_a_duration_without_a_unit(project: Project) -> None:
    assert project.errors(HEAD + "  - wait: 5\n") == [
        "journeys/test.yaml:5:11: wait: a duration needs a unit: write 5d, 5h or 5m"
    ]


def test_a_negative_wait(project: Project) -> None:
    assert project.errors(HEAD + "  - wait: -2d\n") == [
        "journeys/test.yaml:5:11: wait: invalid duration '-2d': must not be negative here"
    ]


def test_a_wrong_typed_field_within_a_step_points_at_that_field(project: Project) -> None:
    text = HEAD + "  - wait_for: order_placed\n    timeout: 5\n"
    assert project.errors(text) == [
        "journeys/test.yaml:6:14: timeout: a duration needs a unit: write 5d, 5h or 5m"
    ]


def test_a_wrong_typed_optional_field_points_at_that_field(project: Project) -> None:
    text = HEAD + SEND + "    to: 42\n"
    assert project.errors(text) == ["journeys/test.yaml:8:9: to: expected text, got 42"]


def test_a_bad_cron_schedule(project: Project) -> None:
    text = (
        "name: Daily\ntrigger:\n  segment: contact.vip\n  schedule: every morning\n"
        "steps:\n  - exit: completed\n"
    )
    assert project.errors(text) == [
        "journeys/test.yaml:4:13: schedule: invalid cron schedule 'every morning': use five "
        "fields, e.g. '0 9 * * *'"
    ]


def test_a_broadcast_time_without_an_offset(project: Project) -> None:
    text = (
        'name: Once\ntrigger:\n  segment: contact.vip\n  at: "2026-12-01T17:00:00"\n'
        "steps:\n  - exit: completed\n"
    )
    assert project.errors(text) == [
        "journeys/test.yaml:4:7: at: needs a UTC offset, e.g. 2026-12-01T17:00:00+00:00"
    ]


def test_a_broadcast_time_that_is_no_timestamp(project: Project) -> None:
    text = (
        "name: Once\ntrigger:\n  segment: contact.vip\n  at: next tuesday\n"
        "steps:\n  - exit: completed\n"
    )
    assert project.errors(text) == [
        "journeys/test.yaml:4:7: at: expected an ISO 8601 timestamp with a UTC offset, "
        "e.g. 2026-12-01T17:00:00+00:00, or a duration after deployment such as 10m, "
        "got 'next tuesday'"
    ]


def test_a_misspelled_manual_trigger(project: Project) -> None:
    text = "name: Manual\ntrigger: manuel\nsteps:\n  - exit: completed\n"
    assert project.errors(text) == [
        "journeys/test.yaml:2:10: unknown trigger 'manuel' (did you mean 'manual'?): a trigger "
        "is one of: event: NAME; segment: EXPR with schedule: CRON; segment: EXPR with "
        "at: ISO-8601; date: contact.ATTRIBUTE; or manual"
    ]


def test_a_bad_timezone(project: Project) -> None:
    text = HEAD + SEND + "settings:\n  timezone: Europe/Pariss\n"
    assert project.errors(text) == [
        "journeys/test.yaml:9:13: timezone: unknown time zone 'Europe/Pariss': use an IANA name "
        "such as Europe/Paris"
    ]


def test_bad_quiet_hours(project: Project) -> None:
    text = HEAD + SEND + 'settings:\n  quiet_hours: "21-8"\n'
    assert project.errors(text) == [
        "journeys/test.yaml:9:16: quiet_hours: invalid quiet hours '21-8': use HH:MM-HH:MM in "
        '24-hour time, e.g. "21:00-08:00"'
    ]


def test_quiet_hours_that_start_when_they_end(project: Project) -> None:
    text = HEAD + SEND + 'settings:\n  quiet_hours: "08:00-08:00"\n'
    assert project.errors(text) == [
        "journeys/test.yaml:9:16: quiet_hours: invalid quiet hours '08:00-08:00': start and end "
        "are the same"
    ]


def test_a_bad_frequency_cap(project: Project) -> None:
    text = HEAD + SEND + "settings:\n  frequency_cap: three a week\n"
    assert project.errors(text) == [
        "journeys/test.yaml:9:18: frequency_cap: invalid frequency cap 'three a week': use "
        "'N per DURATION', e.g. 3 per 7d"
    ]


def test_an_unquoted_time_of_day_gets_a_quoting_hint(project: Project) -> None:
    text = HEAD + "  - wait_until: 21:00\n" + SEND
    assert project.errors(text) == [
        "journeys/test.yaml:5:17: wait_until: YAML reads an unquoted 21:00 as the number 1260; "
        'quote times of day: "21:00"'
    ]


def test_unquoted_quiet_hours_get_a_quoting_hint(project: Project) -> None:
    text = HEAD + SEND + "settings:\n  quiet_hours: 21:00\n"
    assert project.errors(text) == [
        "journeys/test.yaml:9:16: quiet_hours: YAML reads an unquoted 21:00 as the number 1260; "
        'quote times of day: "21:00"'
    ]


def test_a_bad_step_id(project: Project) -> None:
    text = HEAD + "  - id: 2nd step\n    exit: completed\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:9: id: invalid step id '2nd step': use letters, digits, '_' or "
        "'-', starting with a letter"
    ]


def test_a_bad_split_target_points_at_the_key(project: Project) -> None:
    text = HEAD + "  - split: {a b: 1}\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:13: split: invalid step id 'a b': use letters, digits, '_' or "
        "'-', starting with a letter",
    ]


def test_a_bad_holdout(project: Project) -> None:
    text = HEAD + SEND + "holdout: 150\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:10: holdout: input should be less than 100"
    ]


def test_a_bad_reentry(project: Project) -> None:
    text = HEAD + SEND + "reentry: sometimes\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:10: reentry: invalid duration 'sometimes': use 30m, 2h, 3d, 1w or "
        "ISO 8601 such as P3D or PT2H"
    ]


def test_a_webhook_that_is_no_url(project: Project) -> None:
    text = HEAD + "  - webhook: crm.example/hook\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:14: webhook: expected an http:// or https:// URL, "
        "got 'crm.example/hook'"
    ]


def test_steps_that_are_not_a_list(project: Project) -> None:
    text = "name: Test\ntrigger: manual\nsteps:\n  send: email\n"
    assert project.errors(text) == [
        "journeys/test.yaml:4:3: steps: expected a list, got {'send': 'email'}"
    ]


def test_an_unquoted_yes_or_no_gets_a_quoting_hint(project: Project) -> None:
    text = HEAD + "  - exit: no\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:11: exit: expected text, got false: YAML reads unquoted "
        'yes/no/on/off/true/false as booleans; quote the text, e.g. "no"'
    ]


def test_a_key_valid_elsewhere_says_where_it_belongs_not_did_you_mean_itself(
    project: Project,
) -> None:
    text = HEAD + '  - wait_until: "09:00"\n    timezone: Europe/Paris\n'
    assert project.errors(text) == [
        "journeys/test.yaml:6:5: unknown key 'timezone' of a wait_until step "
        "('timezone' is a key of settings)"
    ]


def test_a_key_of_several_places_lists_them(project: Project) -> None:
    text = HEAD + SEND + "    when: contact.vip\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:5: unknown key 'when' of a send step ('when' is a key of a "
        "wait_for step, an event trigger, a branch case, goal/exit_on, a wait_for event "
        "alternative)"
    ]


def test_a_wait_of_zero_is_refused_but_an_offset_of_zero_is_the_moment_itself(
    project: Project,
) -> None:
    assert project.errors(HEAD + "  - wait: 0m\n") == [
        "journeys/test.yaml:5:11: wait: invalid duration '0m': must be longer than zero"
    ]
    plan = project.plan(HEAD + '  - wait_until: "09:00"\n    offset: 0m\n')
    assert [step.offset for step in plan.journey.steps] == [timedelta(0)]  # type: ignore[union-attr]


DATED = "name: Birthday\ntrigger:\n  date: {date}\n{more}steps:\n  - exit:\n"


def test_a_date_trigger_names_an_attribute(project: Project) -> None:
    assert project.errors(DATED.format(date="birthday", more="")) == [
        "journeys/test.yaml:3:9: date: expected contact.ATTRIBUTE, an attribute or trait holding "
        "a date (e.g. contact.birthday), got 'birthday'"
    ]


def test_a_date_trigger_on_a_profile_field(project: Project) -> None:
    assert project.errors(DATED.format(date="contact.email", more="")) == [
        "journeys/test.yaml:3:9: date: contact.email is a profile field; a date trigger reads "
        "an attribute or trait holding a date (e.g. contact.birthday)"
    ]


def test_a_date_trigger_on_an_unknown_attribute(project: Project) -> None:
    project.journey(DATED.format(date="contact.birthdy", more=""))
    _, found = project.compile(known_attributes=frozenset({"birthday", "first_name"}))
    assert [str(d) for d in found] == [
        "journeys/test.yaml:3:9: date: contact.birthdy is not an attribute of any contact in "
        "contacts/ nor a trait (did you mean 'birthday'?)"
    ]


def test_a_date_trigger_with_a_bad_every_offset_and_at(project: Project) -> None:
    more = '  every: month\n  offset: -7h\n  at: "9am"\n'
    assert project.errors(DATED.format(date="contact.birthday", more=more)) == [
        "journeys/test.yaml:4:10: every: expected 'year' or 'once', got 'month'",
        "journeys/test.yaml:5:11: offset: use whole days, e.g. -7d (the time of day is `at`), "
        "got -7h",
        "journeys/test.yaml:6:7: at: invalid time of day '9am': use HH:MM, e.g. 09:00",
    ]


def test_local_time_belongs_to_a_segment_schedule(project: Project) -> None:
    more = "  local_time: true\n"
    assert project.errors(DATED.format(date="contact.birthday", more=more)) == [
        "journeys/test.yaml:4:3: unknown key 'local_time' in the trigger ('local_time' is a key "
        "of a segment + schedule trigger)"
    ]
