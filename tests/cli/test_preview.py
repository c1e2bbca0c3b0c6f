"""`rapport preview JOURNEY STEP --contact FILE`: one message, rendered as the contact gets it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import ExitCode, app, exit_code_for
from consent.tokens import read_unsubscribe_token
from errors import RapportError
from settings import get_settings
from tests.cli.conftest import Project

runner = CliRunner()
NOW = "2026-11-28T12:00:00+00:00"


def preview(*args: str) -> dict:
    result = runner.invoke(app, ["preview", *args, "--now", NOW, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def failure(*args: str) -> RapportError:
    result = runner.invoke(app, ["preview", *args, "--now", NOW])
    assert isinstance(result.exception, RapportError), result.output
    return result.exception


def test_preview_an_email(in_repo: Path, tmp_path: Path) -> None:
    html = tmp_path / "welcome.html"
    result = preview(
        "onboarding", "welcome", "--contact", "contacts/alice.yaml", "--html", str(html)
    )
    assert result["subject"] == "Welcome to Rapport Coffee Co., Alice"
    assert result["preheader"] == (
        "Fresh-roasted beans, ground the way you brew. Here's how to get started."
    )
    assert result["to"] == "alice@example.com"
    assert result["category"] == "transactional"
    assert result["text"].startswith("Welcome, Alice!\n")
    assert result["html_file"] == str(html)
    assert "<title>Welcome to Rapport Coffee Co., Alice</title>" in html.read_text("utf-8")


def test_preview_fills_in_links_and_brand(in_repo: Path, tmp_path: Path) -> None:
    result = preview(
        "onboarding", "tips", "-c", "contacts/alice.yaml", "--html", str(tmp_path / "x.html")
    )
    # The links carry a token signed with RAPPORT_SECRET for this contact; the footer the brand.
    [token] = set(re.findall(r"http://127\.0\.0\.1:8000/u/([\w.-]+)", result["text"]))
    assert read_unsubscribe_token(get_settings(), token).contact_id == "alice"
    assert f"Unsubscribe (http://127.0.0.1:8000/u/{token})" in result["text"]
    assert f"Email preferences (http://127.0.0.1:8000/u/{token}?view=preferences)" in result["text"]
    assert result["text"].endswith(
        "Rapport Coffee Co. · Rapport Coffee Co., 12 Harbour Street, Portsmouth PO1 2AB, "
        "United Kingdom\n"
    )


def test_preview_writes_the_html_to_a_temporary_file_by_default(in_repo: Path) -> None:
    result = runner.invoke(
        app, ["preview", "onboarding", "welcome", "--contact", "contacts/alice.yaml"]
    )
    assert result.exit_code == 0, result.output
    line = next(text for text in result.stdout.splitlines() if text.startswith("HTML:"))
    path = Path(line.removeprefix("HTML:").strip())
    try:
        assert path.read_text("utf-8").startswith("<!DOCTYPE html>")
    finally:
        path.unlink()
    assert "Subject:   Welcome to Rapport Coffee Co., Alice" in result.stdout


def test_preview_prints_the_html_with_a_dash(in_repo: Path) -> None:
    result = preview("onboarding", "welcome", "--contact", "contacts/alice.yaml", "--html", "-")
    assert result["html"].startswith("<!DOCTYPE html>")
    assert "html_file" not in result


def test_preview_an_sms_with_its_segments(in_repo: Path) -> None:
    result = preview("onboarding", "sms_offer", "--contact", "contacts/alice.yaml")
    assert result["body"] == (
        "Rapport Coffee Co.: Hi Alice, your first bag is waiting! Use code WELCOME10 for 10% off "
        "at https://rapport.example/shop\nReply STOP to opt out"
    )
    assert (result["segments"], result["encoding"], result["characters"]) == (1, "GSM-7", 141)
    assert result["to"] == "+12125550143"


def test_preview_sms_text_output(in_repo: Path) -> None:
    result = runner.invoke(
        app, ["preview", "onboarding", "sms_offer", "--contact", "contacts/alice.yaml"]
    )
    assert result.exit_code == 0
    assert "Segments:  1 (GSM-7, 141 characters)" in result.stdout


def test_preview_renders_the_version_for_the_contact_locale(in_repo: Path, tmp_path: Path) -> None:
    # Camille's locale is fr_CA; onboarding/welcome has a French version (fr-CA falls back to fr).
    result = preview(
        "onboarding", "welcome", "-c", "contacts/camille.yaml", "--html", str(tmp_path / "x.html")
    )
    assert (result["locale"], result["template_file"], result["template_locales"]) == (
        "fr_CA",
        "templates/onboarding/welcome.fr.email.j2",
        ["fr"],
    )
    assert result["subject"] == "Bienvenue chez Rapport Coffee Co., Camille"
    assert result["text"].startswith("Bienvenue, Camille !\n")


def test_preview_locale_option_shows_another_version(in_repo: Path) -> None:
    result = runner.invoke(
        app,
        ["preview", "onboarding", "welcome", "-c", "contacts/alice.yaml", "--locale", "fr",
         "--html", "/dev/null", "--now", NOW],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2:5] == [
        "Locale:    fr: templates/onboarding/welcome.fr.email.j2",
        "To:        alice@example.com",
        "Subject:   Bienvenue chez Rapport Coffee Co., Alice",
    ]


def test_preview_uses_the_contact_and_the_clock(in_repo: Path, tmp_path: Path) -> None:
    # Bruno last ordered 75 days before --now: the win-back email says so.
    result = preview(
        "win_back", "offer", "-c", "contacts/bruno.yaml", "--html", str(tmp_path / "x.html")
    )
    assert result["now"] == NOW
    assert result["subject"] == "We miss you, Bruno: here's 15% off your next bag"
    assert "It's been 75 days since your last order," in result["text"]
    later = runner.invoke(
        app,
        ["preview", "win_back", "offer", "-c", "contacts/bruno.yaml", "--json",
         "--html", str(tmp_path / "y.html"), "--now", "2026-12-08T12:00:00+00:00"],
    )  # fmt: skip
    assert "It's been 85 days since your last order," in json.loads(later.stdout)["text"]


def test_preview_takes_trigger_properties(in_repo: Path) -> None:
    result = preview(
        "feedback_follow_up",
        "survey_sms",
        "--contact",
        "contacts/eli.yaml",
        "--trigger-prop",
        "order_id=S-5120",
    )
    assert "how was order #S-5120?" in result["body"]


def test_preview_takes_step_results(in_repo: Path, tmp_path: Path) -> None:
    steps = tmp_path / "steps.yaml"
    steps.write_text(
        "await_score:\n  event:\n    name: nps_submitted\n"
        "    properties: {order_id: B-3318, score: 3, comment: Torn bag.}\n",
        encoding="utf-8",
    )
    result = preview(
        "feedback_follow_up",
        "staff_alert",
        "-c",
        "contacts/dana.yaml",
        "-p",
        "order_id=B-3318",
        "--steps",
        str(steps),
        "--html",
        str(tmp_path / "alert.html"),
    )
    assert result["subject"] == "[Detractor] dana scored 3/10 on order #B-3318"
    assert result["to"] == "care@rapport.example"


def test_preview_of_an_unknown_step_suggests_one(in_repo: Path) -> None:
    error = failure("onboarding", "welcom", "--contact", "contacts/alice.yaml")
    assert exit_code_for(error) is ExitCode.USAGE
    assert str(error) == (
        "journey 'onboarding' has no step 'welcom' (did you mean 'welcome'?); "
        "its send steps: welcome, tips, sms_offer"
    )


def test_preview_of_a_step_that_sends_nothing(in_repo: Path) -> None:
    error = failure("onboarding", "await_order", "--contact", "contacts/alice.yaml")
    assert exit_code_for(error) is ExitCode.USAGE
    assert str(error) == (
        "step 'await_order' of journey 'onboarding' sends nothing; "
        "its send steps: welcome, tips, sms_offer"
    )


def test_preview_render_error_names_the_template_line_and_a_hint(in_repo: Path) -> None:
    error = failure("feedback_follow_up", "apology", "--contact", "contacts/dana.yaml")
    assert exit_code_for(error) is ExitCode.INVALID
    assert str(error) == (
        "cannot render: templates/feedback/apology.email.j2:2: subject: 'dict object' has no "
        "attribute 'order_id'\n"
        "hint: give the trigger event's properties with --trigger-prop KEY=VALUE\n"
        "hint: give what earlier steps produced with --steps FILE"
    )


def test_preview_with_a_missing_contact_file(in_repo: Path) -> None:
    error = failure("onboarding", "welcome", "--contact", "contacts/nobody.yaml")
    assert exit_code_for(error) is ExitCode.USAGE
    assert str(error) == "contacts/nobody.yaml: no such contact file"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--now", "yesterday"], "--now expects an ISO 8601 timestamp such as "),
        (["--trigger-prop", "order"], "--trigger-prop expects KEY=VALUE, got 'order'"),
    ],
)
def test_preview_bad_options(in_repo: Path, option: list[str], message: str) -> None:
    result = runner.invoke(
        app, ["preview", "onboarding", "welcome", "-c", "contacts/alice.yaml", *option]
    )
    assert isinstance(result.exception, RapportError)
    assert str(result.exception).startswith(message)


def test_preview_errors_are_clean_on_the_command_line(project: Project) -> None:
    project.write("contacts/broken.yaml", "id: x\ntimezone: Mars/Base\nphone: 123\n")
    result = project.run("preview", "onboarding", "sms_offer", "--contact", "contacts/broken.yaml")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: contacts/broken.yaml:2:11: timezone: unknown time zone 'Mars/Base': use an IANA "
        "name such as Europe/Paris\n"
        'contacts/broken.yaml:3:8: phone: quote phone numbers, e.g. phone: "+123"\n'
    )


def test_preview_json_error_leaves_stdout_empty(project: Project) -> None:
    result = project.run(
        "preview", "onboarding", "nope", "--contact", "contacts/alice.yaml", "--json"
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
