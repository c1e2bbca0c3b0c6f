"""`rapport validate` warns about two journeys that target the same contacts (issue 16 item 3):
alike triggers (the same event, or both segment schedules) that the samples do not tell apart."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from cli import app
from tests.cli.conftest import ROOT, Project

runner = CliRunner()


def on_sign_up(when: str | None = None, lint: str = "") -> str:
    condition = f"\n  when: {when}" if when else ""
    return (
        f"name: Sign-up perk\ntrigger:\n  event: signed_up{condition}\n{lint}steps:\n"
        "  - send: email\n    template: onboarding/welcome\n    category: transactional\n"
    )


@pytest.fixture
def here(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.chdir(project.root)
    return project


def validate(*paths: str) -> tuple[int, str]:
    result = runner.invoke(app, ["validate", *paths])
    return result.exit_code, result.stderr


def test_a_second_win_back_on_the_same_contacts_is_a_warning_naming_both(here: Project) -> None:
    shutil.copy(ROOT / "examples/journeys/win_back_60d.yaml", here.root / "journeys")
    shutil.copytree(ROOT / "examples/templates/win_back_60d", here.root / "templates/win_back_60d")
    assert validate("journeys/win_back.yaml", "journeys/win_back_60d.yaml") == (
        0,
        "journeys/win_back_60d.yaml:6:1: warning: targets the same contacts as "
        "journeys/win_back.yaml (a segment schedule; bruno enters both) with no exclusion: a "
        "contact can be in both at once; exclude one journey's contacts from the other in its "
        "`audience`, `segment` or `when` [overlapping-journeys]\n",
    )


def test_triggers_on_one_event_that_the_samples_tell_apart_are_fine(here: Project) -> None:
    # The sample signed_up events (simulations/onboarding_*.yaml) are on the starter plan.
    here.write("journeys/perk.yaml", on_sign_up('event.properties.plan == "pro"'))
    assert validate("journeys/onboarding.yaml", "journeys/perk.yaml") == (0, "")


def test_triggers_on_one_event_that_both_let_a_contact_in(here: Project) -> None:
    here.write("journeys/perk.yaml", on_sign_up('event.properties.plan == "starter"'))
    code, stderr = validate("journeys/onboarding.yaml", "journeys/perk.yaml")
    assert code == 0  # a warning
    assert stderr.startswith(
        "journeys/perk.yaml:2:1: warning: targets the same contacts as journeys/onboarding.yaml "
        "(the signed_up event; alice, bruno, camille, chen, dana enter both) with no exclusion"
    )


def test_lint_ignore_in_either_journey_silences_it(here: Project) -> None:
    lint = "lint: {ignore: [overlapping-journeys]}\n"
    here.write("journeys/perk.yaml", on_sign_up('event.properties.plan == "starter"', lint))
    assert validate("journeys/onboarding.yaml", "journeys/perk.yaml") == (0, "")


def test_without_samples_the_same_unfiltered_event_is_a_warning(here: Project) -> None:
    shutil.rmtree(here.root / "contacts")
    here.write("journeys/a.yaml", on_sign_up())
    here.write("journeys/b.yaml", on_sign_up())
    here.write("journeys/c.yaml", on_sign_up("event.properties.plan == 'pro'"))
    assert validate("journeys/a.yaml", "journeys/b.yaml", "journeys/c.yaml") == (
        0,
        "journeys/b.yaml:2:1: warning: targets the same contacts as journeys/a.yaml (the "
        "signed_up event; neither filters it) with no exclusion: a contact can be in both at "
        "once; exclude one journey's contacts from the other in its `audience`, `segment` or "
        "`when` [overlapping-journeys]\n",
    )
