"""Lints are warnings (`FILE:LINE:COL: warning: …`); they fail validate only with --strict."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli import app
from tests.compiler.conftest import HEAD, Project

SEND = "  - id: welcome\n    send: email\n    template: onboarding/welcome\n"


def test_a_trailing_wait_is_a_warning(project: Project) -> None:
    text = HEAD + SEND + "  - wait: 3d\n"
    assert project.diagnostics(text) == [
        "journeys/test.yaml:8:5: warning: step 'wait_2' waits at the end of the run: nothing "
        "follows it, so it only delays the outcome [wait-at-end]"
    ]


def test_a_wait_just_before_an_exit_is_a_warning(project: Project) -> None:
    text = HEAD + SEND + '  - id: linger\n    wait_until: "09:00"\n  - exit: completed\n'
    assert project.diagnostics(text) == [
        "journeys/test.yaml:8:5: warning: step 'linger' waits at the end of the run: nothing "
        "follows it, so it only delays the outcome [wait-at-end]"
    ]


def test_an_unknown_contact_attribute_is_a_warning(project: Project) -> None:
    text = HEAD + SEND + "audience: contact.loyalty_tier == 'gold' and contact.first_name\n"
    assert project.diagnostics(text, attributes=True) == [
        "journeys/test.yaml:8:11: warning: contact.loyalty_tier is not an attribute of any "
        "contact in contacts/; check the spelling or use `is defined` [unknown-attribute]"
    ]


def test_contact_fields_and_sample_attributes_are_known(project: Project) -> None:
    text = HEAD + SEND + "audience: contact.email and contact.timezone and contact.vip\n"
    assert project.diagnostics(text, attributes=True) == []


def test_a_marketing_email_without_unsubscribe_url_is_a_warning(project: Project) -> None:
    project.write("templates/promo/flash.email.j2", "---\nsubject: Sale\n---\n<p>50% off</p>\n")
    text = HEAD + "  - send: email\n    template: promo/flash\n"
    assert project.diagnostics(text) == [
        "templates/promo/flash.email.j2:1:1: warning: marketing email without an unsubscribe "
        "link: use {{ unsubscribe_url }} (or extend a layout that does) [unsubscribe-link]"
    ]


def test_a_transactional_email_needs_no_unsubscribe_url(project: Project) -> None:
    project.write("templates/promo/receipt.email.j2", "---\nsubject: Receipt\n---\n<p>Hi</p>\n")
    text = HEAD + "  - send: email\n    template: promo/receipt\n    category: transactional\n"
    assert project.diagnostics(text) == []


def test_an_sms_over_three_segments_is_a_warning(project: Project) -> None:
    project.write("templates/promo/long.sms.j2", "Hello " + "coffee " * 80 + "\n")
    text = HEAD + "  - send: sms\n    template: promo/long\n"
    assert project.diagnostics(text) == [
        "templates/promo/long.sms.j2:1:1: warning: SMS renders to 4 segments (GSM-7, 587 "
        "characters) for a sample contact; keep it within 3 segments [sms-segments]"
    ]


def test_warnings_leave_a_plan(project: Project) -> None:
    project.journey(HEAD + SEND + "  - wait: 3d\n")
    plan, diagnostics = project.compile()
    assert plan is not None
    assert [d.severity.value for d in diagnostics] == ["warning"]


@pytest.mark.parametrize(("strict", "exit_code"), [(False, 0), (True, 1)])
def test_warnings_fail_validate_only_with_strict(
    project: Project, strict: bool, exit_code: int
) -> None:
    project.journey(HEAD + SEND + "  - wait: 3d\n")
    arguments = ["validate", "journeys", *(["--strict"] if strict else [])]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == exit_code
    assert (
        "journeys/test.yaml:8:5: warning: step 'wait_2' waits at the end of the run"
        in result.stderr
    )


# ---------------------------------------------------------------------------------------------
# Silencing one lint where it is wanted (issue 16 item 10)


def test_lint_ignore_on_a_step_silences_that_lint_there(project: Project) -> None:
    text = HEAD + SEND + "  - wait: 3d\n    lint: {ignore: [wait-at-end]}\n"
    assert project.diagnostics(text) == []


def test_an_ignore_comment_on_the_step_silences_that_lint(project: Project) -> None:
    text = HEAD + SEND + "  - wait: 3d  # rapport: ignore[wait-at-end]\n"
    assert project.diagnostics(text) == []


def test_an_ignore_comment_on_the_line_above_a_step_counts_for_that_step(
    project: Project,
) -> None:
    text = HEAD + SEND + "  # rapport: ignore[wait-at-end]\n  - wait: 3d\n"
    assert project.diagnostics(text) == []


def test_an_ignore_covers_its_own_step_only(project: Project) -> None:
    text = HEAD + (
        "  - branch: [{when: contact.vip, goto: second}]\n    else: first\n"
        "  - id: first\n    wait: 1d\n    lint: {ignore: [wait-at-end]}\n    next: done\n"
        "  - id: second\n    wait: 2d\n  - id: done\n    exit: completed\n"
    )
    assert project.diagnostics(text) == [
        "journeys/test.yaml:11:5: warning: step 'second' waits at the end of the run: nothing "
        "follows it, so it only delays the outcome [wait-at-end]"
    ]


def test_an_ignore_of_another_code_leaves_the_lint(project: Project) -> None:
    text = HEAD + SEND + "  - wait: 3d  # rapport: ignore[sms-segments]\n"
    assert project.diagnostics(text) == [
        "journeys/test.yaml:8:5: warning: step 'wait_2' waits at the end of the run: nothing "
        "follows it, so it only delays the outcome [wait-at-end]"
    ]


def test_lint_ignore_at_the_top_silences_it_in_the_whole_journey(project: Project) -> None:
    text = HEAD + SEND + "  - wait: 3d\naudience: contact.loyalty_tier\nlint:\n"
    text += "  ignore: [wait-at-end, unknown-attribute]\n"
    assert project.diagnostics(text, attributes=True) == []


def test_a_send_step_silences_the_lints_of_its_template(project: Project) -> None:
    project.write("templates/promo/flash.email.j2", "---\nsubject: Sale\n---\n<p>50% off</p>\n")
    text = (
        HEAD + "  - send: email  # rapport: ignore[unsubscribe-link]\n    template: promo/flash\n"
    )
    assert project.diagnostics(text) == []


def test_a_template_lint_stays_while_another_step_sending_it_does_not_ignore_it(
    project: Project,
) -> None:
    project.write("templates/promo/flash.email.j2", "---\nsubject: Sale\n---\n<p>50% off</p>\n")
    text = HEAD + (
        "  - send: email\n    template: promo/flash\n    lint: {ignore: [unsubscribe-link]}\n"
        "  - wait: 1d\n    next: again\n  - id: again\n    send: email\n    template: promo/flash\n"
    )
    assert project.diagnostics(text) == [
        "templates/promo/flash.email.j2:1:1: warning: marketing email without an unsubscribe "
        "link: use {{ unsubscribe_url }} (or extend a layout that does) [unsubscribe-link]"
    ]


def test_an_unknown_lint_code_is_an_error_with_a_suggestion(project: Project) -> None:
    text = HEAD + SEND + "  - wait: 3d\n    lint: {ignore: [wait-at-ends]}\n"
    assert project.errors(text) == [
        "journeys/test.yaml:9:21: ignore: unknown lint code 'wait-at-ends' (did you mean "
        "'wait-at-end'?); the codes: wait-at-end, unknown-attribute, unknown-property, "
        "unsubscribe-link, sms-segments, front-matter-key, unchecked-key, overlapping-journeys"
    ]


def test_an_unknown_lint_code_in_a_comment_is_an_error_at_the_code(project: Project) -> None:
    text = HEAD + SEND + "  - wait: 3d  # rapport: ignore[wait-at-end, smss-segments]\n"
    assert project.errors(text) == [
        "journeys/test.yaml:8:46: rapport: ignore: unknown lint code 'smss-segments' (did you "
        "mean 'sms-segments'?); the codes: wait-at-end, unknown-attribute, unknown-property, "
        "unsubscribe-link, sms-segments, front-matter-key, unchecked-key, overlapping-journeys"
    ]


def test_lint_settings_leave_the_version_alone(project: Project) -> None:
    plain = project.plan(HEAD + SEND + "  - wait: 3d\n")
    quiet = project.plan(HEAD + SEND + "  - wait: 3d\n    lint: {ignore: [wait-at-end]}\n")
    assert quiet.version == plain.version


def test_json_diagnostics_carry_the_lint_code(project: Project) -> None:
    project.journey(HEAD + SEND + "  - wait: 3d\n")
    _, diagnostics = project.compile()
    assert [d.as_dict() for d in diagnostics] == [
        {
            "file": "journeys/test.yaml",
            "line": 8,
            "col": 5,
            "severity": "warning",
            "message": "step 'wait_2' waits at the end of the run: nothing follows it, so it "
            "only delays the outcome",
            "code": "wait-at-end",
        }
    ]
