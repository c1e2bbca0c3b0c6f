"""`rapport validate`: exit 0 on the samples, 1 with FILE:LINE:COL on stderr, the `ok` lines and
the summary on stdout, --json alone."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from tests.cli.conftest import Project

runner = CliRunner()

BROKEN = """\
name: Broken
trigger:
  event: signed_up
steps:
  - id: welcome
    send: email
    template: onboarding/welcome
  - wait: 3x
"""


def test_validate_accepts_the_sample_journeys(in_repo: Path) -> None:
    result = runner.invoke(app, ["validate", "journeys"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "7 journey(s) valid, 0 error(s), 0 warning(s)"
    assert result.stderr == ""


def test_validate_defaults_to_the_journeys_directory(in_repo: Path) -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "ok onboarding (version " in result.stdout


def test_validate_reports_a_broken_journey_on_stderr_and_exits_1(project: Project) -> None:
    project.write("journeys/broken.yaml", BROKEN)
    result = project.run("validate")
    assert result.returncode == 1
    assert result.stderr == (
        "journeys/broken.yaml:8:11: wait: invalid duration '3x': use 30m, 2h, 3d, 1w or ISO 8601 "
        "such as P3D or PT2H\n"
    )
    assert result.stdout.splitlines()[-1] == "7 journey(s) valid, 1 error(s), 0 warning(s)"


def test_validate_one_file(project: Project) -> None:
    project.write("journeys/broken.yaml", BROKEN)
    result = project.run("validate", "journeys/onboarding.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("ok onboarding (version ")
    assert result.stdout.splitlines()[-1] == "1 journey(s) valid, 0 error(s), 0 warning(s)"


def test_validate_json_prints_only_json_on_stdout(project: Project) -> None:
    project.write("journeys/broken.yaml", BROKEN)
    result = project.run("validate", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert sorted(report["journeys"]) == [
        "birthday_reward",
        "feedback_follow_up",
        "loyalty_tier_upgrade",
        "onboarding",
        "referral_reward",
        "vip_event",
        "win_back",
    ]
    assert report["diagnostics"] == [
        {
            "file": "journeys/broken.yaml",
            "line": 8,
            "col": 11,
            "severity": "error",
            "message": "wait: invalid duration '3x': use 30m, 2h, 3d, 1w or ISO 8601 such as P3D "
            "or PT2H",
        }
    ]


def test_validate_json_on_the_samples(in_repo: Path) -> None:
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["diagnostics"] == []
    assert report["journeys"]["onboarding"]["steps"] == 7


def test_validate_a_missing_path(project: Project) -> None:
    result = project.run("validate", "journeys/nope.yaml")
    assert result.returncode == 1
    assert "journeys/nope.yaml:1:1: no such file" in result.stderr


def test_a_wait_condition_may_read_an_attribute_a_simulation_identifies(project: Project) -> None:
    project.write(
        "journeys/opt_in.yaml",
        "name: Opt in\ntrigger: manual\nsteps:\n"
        "  - wait_for:\n      - condition: contact.survey_opt_in | default(false)\n"
        "    timeout: 3d\n",
    )
    refused = project.run("validate", "journeys/opt_in.yaml")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[0] == (
        "journeys/opt_in.yaml:5:20: condition: contact.survey_opt_in is no attribute of any "
        "contact in contacts/ nor a trait"
    )
    project.write("simulations/opt_in.yaml", "- after: 1d\n  identify: {survey_opt_in: true}\n")
    assert project.run("validate", "journeys/opt_in.yaml").returncode == 0
