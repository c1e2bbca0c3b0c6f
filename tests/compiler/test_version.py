"""A compiled journey's version is a hash of its content and its templates' sources."""

from __future__ import annotations

from tests.compiler.conftest import HEAD, Project

JOURNEY = HEAD + "  - id: welcome\n    send: email\n    template: onboarding/welcome\n"


def test_the_version_is_stable(project: Project) -> None:
    assert project.plan(JOURNEY).version == project.plan(JOURNEY).version


def test_a_yaml_comment_does_not_change_the_version(project: Project) -> None:
    before = project.plan(JOURNEY).version
    after = project.plan("# Sends the welcome email.\n" + JOURNEY + "  # the end\n").version
    assert after == before


def test_a_journey_change_changes_the_version(project: Project) -> None:
    before = project.plan(JOURNEY).version
    assert project.plan(JOURNEY + "    category: transactional\n").version != before


def test_a_template_change_changes_the_version(project: Project) -> None:
    before = project.plan(JOURNEY).version
    path = project.templates / "onboarding/welcome.email.j2"
    path.write_text(path.read_text(encoding="utf-8") + "<p>P.S.</p>\n", encoding="utf-8")
    assert project.plan(JOURNEY).version != before


def test_a_layout_change_changes_the_version(project: Project) -> None:
    before = project.plan(JOURNEY).version
    path = project.templates / "layouts/base.html.j2"
    path.write_text(path.read_text(encoding="utf-8") + "<!-- v2 -->\n", encoding="utf-8")
    assert project.plan(JOURNEY).version != before


def test_the_plan_carries_the_template_sources(project: Project) -> None:
    plan = project.plan(JOURNEY)
    bundle = plan.templates["email:onboarding/welcome"]
    assert set(bundle.files) >= {
        "onboarding/welcome.email.j2",
        "onboarding/welcome.text.j2",
        "layouts/base.html.j2",
    }


def test_a_localised_version_of_a_template_is_in_the_plan_and_the_version(
    project: Project,
) -> None:
    before = project.plan(JOURNEY).version
    project.write("templates/onboarding/welcome.de.email.j2", "---\nsubject: Willkommen\n---\nHi\n")
    plan = project.plan(JOURNEY)
    assert plan.version != before
    assert plan.templates["email:onboarding/welcome"].locales == ("de", "fr")
