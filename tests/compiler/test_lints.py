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
        "follows it, so it only delays the outcome"
    ]


def test_a_wait_just_before_an_exit_is_a_warning(project: Project) -> None:
    text = HEAD + SEND + '  - id: linger\n    wait_until: "09:00"\n  - exit: completed\n'
    assert project.diagnostics(text) == [
        "journeys/test.yaml:8:5: warning: step 'linger' waits at the end of the run: nothing "
        "follows it, so it only delays the outcome"
    ]


def test_an_unknown_contact_attribute_is_a_warning(project: Project) -> None:
    text = HEAD + SEND + "audience: contact.loyalty_tier == 'gold' and contact.first_name\n"
    assert project.diagnostics(text, attributes=True) == [
        "journeys/test.yaml:8:11: warning: contact.loyalty_tier is not an attribute of any "
        "contact in contacts/; check the spelling or use `is defined`"
    ]


def test_contact_fields_and_sample_attributes_are_known(project: Project) -> None:
    text = HEAD + SEND + "audience: contact.email and contact.timezone and contact.vip\n"
    assert project.diagnostics(text, attributes=True) == []


def test_a_marketing_email_without_unsubscribe_url_is_a_warning(project: Project) -> None:
    project.write("templates/promo/flash.email.j2", "---\nsubject: Sale\n---\n<p>50% off</p>\n")
    text = HEAD + "  - send: email\n    template: promo/flash\n"
    assert project.diagnostics(text) == [
        "templates/promo/flash.email.j2:1:1: warning: marketing email without an unsubscribe "
        "link: use {{ unsubscribe_url }} (or extend a layout that does)"
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
        "characters) for a sample contact; keep it within 3 segments"
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
