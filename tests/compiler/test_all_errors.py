"""One run reports every error: several in one file, and errors in several files."""

from __future__ import annotations

from pathlib import Path

from tests.compiler.conftest import HEAD, Project
from workflows.compiler import compile_paths


def test_several_errors_in_one_file_are_all_reported(project: Project) -> None:
    text = """\
    name: Broken
    trigger:
      event: signed_up
      when: event.properties.plan ==
    nmae: typo
    settings:
      timezone: Mars/Olympus
    steps:
      - id: welcome
        sned: email
        template: onboarding/welcome
      - wait: 3x
      - id: tips
        send: email
        template: onboarding/tipz
      - id: check
        branch:
          - when: event.name == "x"
            goto: tips
        else: finish
      - id: done
        exit: completed
    """
    assert project.errors(text) == [
        "journeys/test.yaml:4:9: invalid expression: incomplete, something is missing at the end "
        "(a value after an operator, or a closing bracket)",
        "journeys/test.yaml:5:1: unknown key 'nmae' (did you mean 'name'?)",
        "journeys/test.yaml:7:13: timezone: unknown time zone 'Mars/Olympus': use an IANA name "
        "such as Europe/Paris",
        "journeys/test.yaml:10:5: unknown step kind 'sned' (did you mean 'send'?)",
        "journeys/test.yaml:12:11: wait: invalid duration '3x': use 30m, 2h, 3d, 1w or ISO 8601 "
        "such as P3D or PT2H",
        "journeys/test.yaml:15:15: template 'onboarding/tipz' not found: expected "
        "templates/onboarding/tipz.email.j2 (did you mean 'onboarding/tips'?)",
        "journeys/test.yaml:18:15: invalid expression: 'event' is only defined in the `when` of a "
        "trigger, wait_for, goal or exit_on; use trigger.* or steps.ID.event.* here",
        "journeys/test.yaml:20:11: else: no step has id 'finish'",
    ]


def test_errors_in_two_files_are_reported_in_one_run(project: Project) -> None:
    project.journey(HEAD + "  - wait: 5\n", name="first")
    project.journey(HEAD + "  - send: fax\n    template: onboarding/welcome\n", name="second")
    project.journey(HEAD + "  - exit: completed\n", name="third")
    result = compile_paths([Path("journeys")], project.templates)
    assert [str(d) for d in sorted(result.diagnostics)] == [
        "journeys/first.yaml:5:11: wait: a duration needs a unit: write 5d, 5h or 5m",
        "journeys/second.yaml:5:11: send: expected 'email' or 'sms', got 'fax'",
    ]
    assert not result.ok
    assert sorted(result.plans) == ["third"]


def test_yaml_files_with_either_suffix_are_compiled(project: Project) -> None:
    project.write("journeys/short.yml", HEAD + "  - exit: completed\n")
    project.journey(HEAD + "  - exit: completed\n", name="long")
    result = compile_paths([Path("journeys")], project.templates)
    assert sorted(result.plans) == ["long", "short"]
