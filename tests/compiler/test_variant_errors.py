"""Content experiments (`variants`, `winner` on a send): each misuse at its YAML node."""

from __future__ import annotations

from datetime import timedelta

from tests.compiler.conftest import HEAD, Project
from workflows.model import SendStep

GOAL = HEAD.replace("steps:\n", "goal: order_placed\nsteps:\n")
OFFER = "  - id: offer\n    send: email\n"
AB = (
    "    variants:\n"
    "      a: {template: onboarding/welcome, weight: 50}\n"
    "      b: {template: onboarding/tips, weight: 50}\n"
)


def test_variants_with_a_winner_rule_compile(project: Project) -> None:
    plan = project.plan(GOAL + OFFER + AB + "    winner: {metric: clicked, after: 3d}\n")
    step = plan.journey.steps[0]
    assert isinstance(step, SendStep) and step.winner is not None
    assert (step.winner.metric, step.winner.after, step.winner.confidence) == (
        "clicked",
        timedelta(days=3),
        95,
    )
    assert sorted(plan.templates) == ["email:onboarding/tips", "email:onboarding/welcome"]


def test_template_and_variants_both(project: Project) -> None:
    text = HEAD + OFFER + "    template: onboarding/welcome\n" + AB
    assert project.errors(text) == [
        "journeys/test.yaml:8:5: `template` and `variants` both given: a send has one template, "
        "or variants (each with its own template)"
    ]


def test_weights_that_add_up_to_zero(project: Project) -> None:
    text = HEAD + OFFER + AB.replace("weight: 50", "weight: 0")
    assert project.errors(text) == [
        "journeys/test.yaml:7:5: variants: the weights add up to 0; give at least one variant a "
        "positive weight"
    ]


def test_a_negative_weight(project: Project) -> None:
    text = HEAD + OFFER + AB.replace("weight: 50}\n      b", "weight: -5}\n      b")
    assert project.errors(text) == [
        "journeys/test.yaml:8:49: weight: input should be greater than or equal to 0"
    ]


def test_an_unknown_template_in_a_variant(project: Project) -> None:
    text = HEAD + OFFER + AB.replace("onboarding/tips", "onboarding/tipz")
    assert project.errors(text) == [
        "journeys/test.yaml:9:21: template 'onboarding/tipz' not found: expected "
        "templates/onboarding/tipz.email.j2 (did you mean 'onboarding/tips'?)"
    ]


def test_converted_without_a_goal(project: Project) -> None:
    text = HEAD + OFFER + AB + "    winner: {metric: converted, after: 1000}\n"
    assert project.errors(text) == [
        "journeys/test.yaml:10:22: metric: converted needs the journey's `goal` (what counts as "
        "converting)"
    ]


def test_clicks_on_an_sms(project: Project) -> None:
    text = (
        GOAL
        + "  - id: offer\n    send: sms\n"
        + AB.replace("onboarding/welcome", "onboarding/first_order_offer").replace(
            "onboarding/tips", "onboarding/first_order_offer"
        )
        + "    winner: {metric: clicked, after: 1000}\n"
    )
    assert project.errors(text) == [
        "journeys/test.yaml:11:22: metric: clicked cannot be measured for SMS (providers report "
        "no opens or clicks); use converted with the journey's `goal`"
    ]


def test_a_winner_without_variants(project: Project) -> None:
    text = GOAL + OFFER + "    template: onboarding/welcome\n"
    text += "    winner: {metric: opened, after: 5}\n"
    assert project.errors(text) == [
        "journeys/test.yaml:9:5: `winner` needs `variants`: there is nothing to choose from"
    ]


def test_bad_after_and_confidence(project: Project) -> None:
    text = GOAL + OFFER + AB + "    winner: {metric: opened, after: 0, confidence: 100}\n"
    assert project.errors(text) == [
        "journeys/test.yaml:11:37: after: needs at least 1 send per variant, got 0",
        "journeys/test.yaml:11:52: confidence: input should be less than 100",
    ]


def test_after_that_is_neither_a_count_nor_a_duration(project: Project) -> None:
    text = GOAL + OFFER + AB + "    winner: {metric: opened, after: soon}\n"
    assert project.errors(text) == [
        "journeys/test.yaml:11:37: after: expected sends per variant (e.g. 1000) or a duration "
        "(e.g. 3d), got 'soon'"
    ]


def test_a_variant_named_winner(project: Project) -> None:
    text = HEAD + OFFER + AB.replace("      b:", "      winner:")
    assert project.errors(text) == [
        "journeys/test.yaml:9:7: variants: 'winner' cannot name a variant (reports list the "
        "winner there)"
    ]


def test_a_typo_in_a_winner_rule_is_suggested_from_its_keys(project: Project) -> None:
    text = GOAL + OFFER + AB + "    winner: {metric: opened, after: 5, confidance: 90}\n"
    assert project.errors(text) == [
        "journeys/test.yaml:11:40: unknown key 'confidance' in a winner rule "
        "(did you mean 'confidence'?)"
    ]
