"""The shipped templates and demo contacts: clean, lint-free, and well-formed."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from babel import Locale

from rendering.bundle import collect_template, template_names
from rendering.lints import lint_template
from rendering.render import render_email

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
CONTACTS = ROOT / "contacts"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

EMAILS = template_names(TEMPLATES, "email")
SMSES = template_names(TEMPLATES, "sms")
CONTACT_FILES = sorted(CONTACTS.glob("*.yaml"))
# Internal or service messages whose footer leaves out the unsubscribe link on purpose.
TRANSACTIONAL_ONLY = {"feedback/apology", "feedback/staff_alert"}


def test_the_sample_journeys_have_their_templates() -> None:
    assert EMAILS == [
        "birthday/gift",
        "birthday/happy_birthday",
        "birthday/last_call",
        "feedback/apology",
        "feedback/nps_survey",
        "feedback/review_ask",
        "feedback/staff_alert",
        "feedback/thanks",
        "loyalty/tier_upgrade",
        "onboarding/tips",
        "onboarding/welcome",
        "referral/thank_you",
        "vip_event/confirmation",
        "vip_event/follow_up",
        "vip_event/invitation",
        "win_back/vip_offer",
        "win_back/we_miss_you",
        "win_back/we_miss_you_code",
    ]
    assert SMSES == [
        "feedback/nps_survey",
        "loyalty/gold_welcome",
        "onboarding/first_order_offer",
        "vip_event/reminder",
        "win_back/last_chance",
    ]


@pytest.mark.parametrize("name", EMAILS)
def test_sample_email_collects_without_problems(name: str) -> None:
    bundle, diagnostics = collect_template(TEMPLATES, name, "email")
    assert diagnostics == []
    assert bundle is not None and "layouts/base.html.j2" in bundle.files


@pytest.mark.parametrize("name", sorted(set(EMAILS) - TRANSACTIONAL_ONLY))
def test_sample_email_passes_the_marketing_lint(name: str) -> None:
    bundle, _ = collect_template(TEMPLATES, name, "email")
    assert bundle is not None
    assert lint_template(bundle, marketing=True) == []


@pytest.mark.parametrize("name", SMSES)
def test_sample_sms_is_clean_and_within_three_segments_as_marketing(name: str) -> None:
    bundle, diagnostics = collect_template(TEMPLATES, name, "sms")
    assert diagnostics == []
    assert bundle is not None
    assert lint_template(bundle, marketing=True) == []


@pytest.mark.parametrize("name", sorted(set(EMAILS) - TRANSACTIONAL_ONLY))
def test_marketing_html_has_unsubscribe_preferences_and_postal_address(
    name: str, variables_for: Callable[..., dict[str, Any]]
) -> None:
    bundle, _ = collect_template(TEMPLATES, name, "email")
    assert bundle is not None
    variables = variables_for("dana", name.split("/")[0])

    email = render_email(bundle, variables, locale="de_DE")

    assert f'href="{variables["unsubscribe_url"]}"' in email.html
    assert f'href="{variables["preferences_url"]}"' in email.html
    assert variables["brand"]["address"] in email.html
    assert '<html lang="de-DE">' in email.html
    assert variables["unsubscribe_url"] in email.text


def test_email_fallbacks_cover_a_contact_without_a_first_name(
    variables_for: Callable[..., dict[str, Any]],
) -> None:
    variables = variables_for("alice", "onboarding")
    del variables["contact"]["first_name"]
    bundle, _ = collect_template(TEMPLATES, "onboarding/welcome", "email")
    assert bundle is not None

    email = render_email(bundle, variables, locale=None)

    assert email.subject == "Welcome to Rapport Coffee Co., friend"
    assert email.text.startswith("Welcome, there!\n")


@pytest.mark.parametrize("path", CONTACT_FILES, ids=[p.stem for p in CONTACT_FILES])
def test_demo_contact_file_is_well_formed(path: Path) -> None:
    contact = yaml.safe_load(path.read_text(encoding="utf-8"))

    assert contact["id"] == path.stem
    assert set(contact) <= {"id", "email", "phone", "timezone", "locale", "attributes", "events"}
    assert contact.get("email") or contact.get("phone")
    if "phone" in contact:
        assert E164.match(contact["phone"])
    ZoneInfo(contact["timezone"])
    Locale.parse(contact["locale"])
    assert isinstance(contact["attributes"]["first_name"], str)
    for event in contact.get("events", []):
        assert set(event) <= {"event", "at", "properties"}
        assert re.match(r"^-\d+[mhdw]$", str(event["at"])) or datetime.fromisoformat(event["at"])


def test_demo_contacts_cover_the_journeys() -> None:
    assert [p.stem for p in CONTACT_FILES] == ["alice", "bruno", "camille", "chen", "dana", "eli"]
    contacts = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in CONTACT_FILES}
    bruno = contacts["bruno"]["attributes"]
    last_order = datetime.fromisoformat(bruno["last_order_at"])
    assert (datetime.fromisoformat("2026-11-28T00:00:00+00:00") - last_order).days in range(73, 78)
    assert bruno["lifetime_value"] == 1240.5 and bruno["vip"] is True
    assert contacts["chen"]["attributes"]["vip"] is True
    assert "phone" not in contacts["dana"]
    assert "email" not in contacts["eli"] and contacts["eli"]["phone"]
    assert contacts["camille"]["locale"] == "fr_CA"  # onboarding/welcome has a French version
