"""`rapport graph`: the onboarding journey as Mermaid and as DOT."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from tests.cli.conftest import Project

runner = CliRunner()

ONBOARDING_MERMAID = """\
flowchart TD
    n_start(["on signed_up"])
    n_welcome["welcome: send email: onboarding/welcome"]
    n_wait_2["wait_2: wait 2d"]
    n_ordered_yet["ordered_yet: branch"]
    n_tips["tips: send email: onboarding/tips"]
    n_await_order["await_order: wait for order_placed (up to 5d)"]
    n_sms_offer["sms_offer: send sms: onboarding/first_order_offer"]
    n_done["done: exit: completed"]
    n_start --> n_welcome
    n_welcome --> n_wait_2
    n_wait_2 --> n_ordered_yet
    n_ordered_yet -->|"count_events(#quot;order_placed#quot;) > 0"| n_done
    n_ordered_yet -->|"else"| n_tips
    n_tips --> n_await_order
    n_await_order -->|"order_placed"| n_done
    n_await_order -->|"timeout"| n_sms_offer
    n_sms_offer --> n_done
"""


def test_graph_prints_mermaid_by_default(in_repo: Path) -> None:
    result = runner.invoke(app, ["graph", "onboarding"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ONBOARDING_MERMAID


def test_graph_prints_dot(in_repo: Path) -> None:
    result = runner.invoke(app, ["graph", "onboarding", "--format", "dot"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == 'digraph "onboarding" {'
    assert lines[-1] == "}"
    assert '    "start" [label="on signed_up", shape=oval];' in lines
    assert '    "ordered_yet" -> "done" [label="count_events(\\"order_placed\\") > 0"];' in lines
    assert '    "await_order" -> "sms_offer" [label="timeout"];' in lines


def test_graph_accepts_a_path(in_repo: Path) -> None:
    result = runner.invoke(app, ["graph", "journeys/onboarding.yaml"])
    assert result.exit_code == 0
    assert result.stdout == ONBOARDING_MERMAID


def test_graph_of_an_unknown_journey_lists_the_journeys(project: Project) -> None:
    result = project.run("graph", "onbording")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: no journey named 'onbording' in journeys/ (journeys: birthday_reward, "
        "feedback_follow_up, loyalty_tier_upgrade, onboarding, referral_reward, vip_event, "
        "win_back)\n"
    )


def test_graph_of_a_broken_journey_lists_its_errors(project: Project) -> None:
    project.write(
        "journeys/broken.yaml",
        "name: Broken\ntrigger: manual\nsteps:\n  - wait: 5\n  - exit: done\n",
    )
    result = project.run("graph", "broken")
    assert result.returncode == 1
    assert result.stderr == (
        "error: journey 'broken' does not compile (run `rapport validate`):\n"
        "journeys/broken.yaml:4:11: wait: a duration needs a unit: write 5d, 5h or 5m\n"
    )


def test_graph_draws_an_edge_for_each_alternative_of_a_wait_for(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write(
        "journeys/reply.yaml",
        "name: Reply\ntrigger: manual\nsteps:\n"
        "  - id: reply_or_gold\n"
        "    wait_for:\n"
        "      - event: sms_replied\n"
        "        next: thanks\n"
        "      - event: survey_submitted\n"
        "        when: event.properties.score is defined\n"
        "      - condition: contact.vip\n"
        "        next: gold\n"
        "    timeout: 3d\n"
        "    since: entry\n"
        "  - id: thanks\n    exit: thanked\n"
        "  - id: gold\n    exit: gold\n",
    )
    monkeypatch.chdir(project.root)
    result = runner.invoke(app, ["graph", "reply"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "flowchart TD\n"
        '    n_start(["manual start"])\n'
        '    n_reply_or_gold["reply_or_gold: wait for the first of sms_replied, '
        'survey_submitted, a condition (up to 3d, since entry)"]\n'
        '    n_thanks["thanks: exit: thanked"]\n'
        '    n_gold["gold: exit: gold"]\n'
        "    n_start --> n_reply_or_gold\n"
        '    n_reply_or_gold -->|"sms_replied"| n_thanks\n'
        '    n_reply_or_gold -->|"survey_submitted: event.properties.score is defined"| n_thanks\n'
        '    n_reply_or_gold -->|"condition: contact.vip"| n_gold\n'
        '    n_reply_or_gold -->|"timeout"| n_thanks\n'
    )


def test_graph_labels_a_content_experiment_with_its_variants_and_winner_rule(
    in_repo: Path,
) -> None:
    result = runner.invoke(app, ["graph", "win_back"])
    assert result.exit_code == 0, result.output
    assert (
        '    n_offer["offer: send email: a win_back/we_miss_you (weight 50); '
        'b win_back/we_miss_you_code (weight 50); winner by clicked after 500 sends each at 95%"]'
    ) in result.stdout.splitlines()
