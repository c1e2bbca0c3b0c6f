"""Golden previews: every sample template rendered for a demo contact with a fixed context.

The subject, preheader and plain text of each email and the body of each SMS are compared with
`tests/rendering/golden/`. After an intended change, rewrite them with
`UPDATE_GOLDEN=1 pytest tests/rendering`, read the diff and commit it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rendering.bundle import collect_template
from rendering.render import render_email, render_sms

GOLDEN = Path(__file__).parent / "golden"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

# (template, channel, demo contact, marketing): each journey's messages for a contact it targets.
CASES = [
    ("onboarding/welcome", "email", "alice", False),
    ("onboarding/tips", "email", "alice", True),
    ("onboarding/first_order_offer", "sms", "alice", True),
    ("win_back/we_miss_you", "email", "alice", True),  # no last order: the fallback sentence
    ("win_back/we_miss_you", "email", "bruno", True),
    ("win_back/vip_offer", "email", "bruno", True),
    ("win_back/last_chance", "sms", "bruno", True),
    ("vip_event/invitation", "email", "chen", True),
    ("vip_event/invitation", "email", "bruno", True),
    ("vip_event/confirmation", "email", "chen", False),
    ("vip_event/reminder", "sms", "chen", False),
    ("vip_event/follow_up", "email", "chen", True),
    ("feedback/nps_survey", "email", "dana", True),
    ("feedback/nps_survey", "sms", "eli", True),
    ("feedback/apology", "email", "dana", False),
    ("feedback/staff_alert", "email", "dana", False),
    ("feedback/review_ask", "email", "dana", True),
    ("feedback/thanks", "email", "dana", False),
]


def preview(
    name: str, channel: str, contact: str, marketing: bool, variables: dict[str, Any]
) -> str:
    bundle, diagnostics = collect_template(TEMPLATES, name, channel)  # type: ignore[arg-type]
    assert bundle is not None and diagnostics == []
    locale = variables["contact"]["locale"]
    if channel == "email":
        email = render_email(bundle, variables, locale=locale)
        return f"Subject: {email.subject}\nPreheader: {email.preheader}\n\n{email.text}"
    sms = render_sms(bundle, variables, locale=locale, marketing=marketing)
    return f"Segments: {sms.segments}\n\n{sms.body}\n"


@pytest.mark.parametrize(
    ("name", "channel", "contact", "marketing"),
    CASES,
    ids=[f"{name}.{channel}@{contact}" for name, channel, contact, _ in CASES],
)
def test_golden_preview(
    name: str,
    channel: str,
    contact: str,
    marketing: bool,
    variables_for: Callable[..., dict[str, Any]],
) -> None:
    variables = variables_for(contact, name.split("/")[0])
    actual = preview(name, channel, contact, marketing, variables)
    golden = GOLDEN / f"{name}.{channel}.{contact}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}: run UPDATE_GOLDEN=1 pytest tests/rendering"
    assert actual == golden.read_text(encoding="utf-8")


def test_every_sample_template_has_a_golden_preview() -> None:
    covered = {(name, channel) for name, channel, _, _ in CASES}
    on_disk = {
        (str(path.relative_to(TEMPLATES)).rsplit(".", 2)[0], path.name.rsplit(".", 2)[1])
        for path in TEMPLATES.rglob("*.j2")
        if path.name.endswith((".email.j2", ".sms.j2"))
    }
    assert on_disk - covered == set()
