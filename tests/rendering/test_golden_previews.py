"""Golden previews: every send step of the sample journeys rendered for a demo contact by
`rapport preview` itself — the product's context (`rendering.context.message_variables`, the
function the send activity uses), the journey's own `data:`, the contact file's history — with a
fixed clock, secret and public URL, so the signed unsubscribe links are stable.

The subject, preheader and plain text of each email and the body of each SMS are compared with
`tests/rendering/golden/`. After an intended change, rewrite them with
`UPDATE_GOLDEN=1 pytest tests/rendering`, read the diff and commit it (refused when `CI` is set:
CI checks the files, it never writes them).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from cli import app
from consent.tokens import InvalidTokenError, read_unsubscribe_token
from settings import get_settings
from tests.stack.helpers import ROOT, project_settings
from workflows.model import SendStep
from workflows.project import compile_project

GOLDEN = Path(__file__).parent / "golden"
CONTACTS = ROOT / "contacts"
NOW = "2026-11-28T12:00:00+00:00"
SECRET = "golden-preview-secret"
PUBLIC_URL = "https://rapport.example"
UNSUBSCRIBE = re.compile(re.escape(PUBLIC_URL) + r"/u/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")

DETRACTOR = {"await_score": {"result": "event", "event": {"name": "nps_submitted", "properties": {
    "order_id": "B-3318", "score": 3,
    "comment": "The beans arrived a week after roasting and the bag was torn."}}}}  # fmt: skip
PROMOTER = {"await_score": {"result": "event", "event": {"name": "nps_submitted", "properties": {
    "order_id": "B-3318", "score": 10}}}}  # fmt: skip
PASSIVE = {"await_score": {"result": "event", "event": {"name": "nps_submitted", "properties": {
    "order_id": "B-3318", "score": 8}}}}  # fmt: skip


@dataclass(frozen=True)
class Case:
    journey: str
    step: str
    contact: str
    trigger: dict[str, str] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None  # a send with variants: which one (default: the first)

    @property
    def id(self) -> str:
        variant = f".{self.variant}" if self.variant else ""
        return f"{self.journey}.{self.step}{variant}@{self.contact}"

    @property
    def golden(self) -> Path:
        variant = f".{self.variant}" if self.variant else ""
        return GOLDEN / self.journey / f"{self.step}{variant}.{self.contact}.txt"


# Each journey's messages for a contact it targets.
CASES = [
    Case("onboarding", "welcome", "alice"),
    Case("onboarding", "welcome", "camille"),  # fr_CA: the French version
    Case("onboarding", "tips", "alice"),
    Case("onboarding", "sms_offer", "alice"),
    Case("win_back", "offer", "alice"),  # no last order: the fallback sentence
    Case("win_back", "offer", "bruno"),
    Case("win_back", "offer", "bruno", variant="b"),  # the other subject line
    Case("win_back", "vip_offer", "bruno"),
    Case("win_back", "last_chance", "bruno"),
    Case("vip_event", "invitation", "chen"),
    Case("vip_event", "invitation", "bruno"),
    Case("vip_event", "confirmation", "chen"),
    Case("vip_event", "reminder", "chen"),
    Case("vip_event", "follow_up", "chen"),
    Case("feedback_follow_up", "survey_email", "dana", {"order_id": "B-3318"}),
    Case("feedback_follow_up", "survey_sms", "eli", {"order_id": "S-5120"}),
    Case("feedback_follow_up", "apology", "dana", {"order_id": "B-3318"}, DETRACTOR),
    Case("feedback_follow_up", "staff_alert", "dana", {"order_id": "B-3318"}, DETRACTOR),
    Case("feedback_follow_up", "review_ask", "dana", {"order_id": "B-3318"}, PROMOTER),
    Case("feedback_follow_up", "thanks", "dana", {"order_id": "B-3318"}, PASSIVE),
    # bruno's three orders in contacts/bruno.yaml (256.90) make him silver (traits/loyalty.yaml).
    Case("loyalty_tier_upgrade", "congratulate", "bruno", {"trait": "tier", "new": "silver"}),
    Case("loyalty_tier_upgrade", "gold_sms", "bruno", {"trait": "tier", "new": "gold"}),
    Case(
        "referral_reward",
        "thank_referrer",
        "dana",
        {"referral_id": "r-1042", "friend_name": "Sam"},
    ),
    Case("birthday_reward", "gift", "dana"),
    Case("birthday_reward", "happy_birthday", "dana"),
    Case("birthday_reward", "last_call", "bruno"),
]
PLANS = compile_project(project_settings()).plans


@pytest.fixture
def preview_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """This repository's journeys and templates, with a fixed secret and public URL and nothing
    from the developer's environment or `.env` (the working directory is empty)."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("RAPPORT_", "SENDGRID_", "TWILIO_", "TEMPORAL_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAPPORT_JOURNEYS_DIR", str(ROOT / "journeys"))
    monkeypatch.setenv("RAPPORT_TEMPLATES_DIR", str(ROOT / "templates"))
    monkeypatch.setenv("RAPPORT_TRAITS_DIR", str(ROOT / "traits"))
    monkeypatch.setenv("RAPPORT_SECRET", SECRET)
    monkeypatch.setenv("RAPPORT_PUBLIC_URL", PUBLIC_URL)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def preview(case: Case, tmp_path: Path) -> dict[str, Any]:
    args = ["preview", case.journey, case.step, "--contact", str(CONTACTS / f"{case.contact}.yaml")]
    args += ["--now", NOW, "--json", "--html", str(tmp_path / "preview.html")]
    if case.variant:
        args += ["--variant", case.variant]
    for key, value in case.trigger.items():
        args += ["--trigger-prop", f"{key}={value}"]
    if case.steps:
        steps_file = tmp_path / "steps.yaml"
        steps_file.write_text(yaml.safe_dump(case.steps), encoding="utf-8")
        args += ["--steps", str(steps_file)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.stdout, result.exception)
    shown: dict[str, Any] = json.loads(result.stdout)
    if shown["channel"] == "email":
        shown["html"] = (tmp_path / "preview.html").read_text(encoding="utf-8")
    return shown


def golden_text(shown: dict[str, Any]) -> str:
    head = f"Template: {shown['template']} ({shown['category']})\nTo: {shown['to']}\n"
    if shown["channel"] == "email":
        head += f"Subject: {shown['subject']}\nPreheader: {shown['preheader']}\n"
        return f"{head}\n{shown['text']}"
    segments = f"{shown['segments']} ({shown['encoding']}, {shown['characters']} characters)"
    return f"{head}Segments: {segments}\n\n{shown['body']}\n"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_golden_preview(case: Case, preview_env: None, tmp_path: Path) -> None:
    actual = golden_text(preview(case, tmp_path))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        if os.environ.get("CI"):
            pytest.fail("UPDATE_GOLDEN=1 is refused when CI is set: golden files are only checked")
        case.golden.parent.mkdir(parents=True, exist_ok=True)
        case.golden.write_text(actual, encoding="utf-8")
    assert case.golden.is_file(), (
        f"no golden file {case.golden}: run UPDATE_GOLDEN=1 pytest tests/rendering"
    )
    assert actual == case.golden.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if case.step in {"tips", "offer", "invitation", "review_ask"}],
    ids=lambda case: case.id,
)
def test_marketing_preview_links_a_signed_unsubscribe_token_for_the_contact(
    case: Case, preview_env: None, tmp_path: Path
) -> None:
    shown = preview(case, tmp_path)
    tokens = set(UNSUBSCRIBE.findall(shown["text"])) | set(UNSUBSCRIBE.findall(shown["html"]))
    assert len(tokens) == 1, tokens  # the link and the preferences link carry one token
    (token,) = tokens
    settings = get_settings()
    assert read_unsubscribe_token(settings, token).contact_id == case.contact
    with pytest.raises(InvalidTokenError):
        read_unsubscribe_token(settings.model_copy(update={"secret": SecretStr("another")}), token)


def test_update_golden_is_refused_under_ci(
    preview_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = CASES[0].golden
    before = golden.read_bytes()
    monkeypatch.setenv("UPDATE_GOLDEN", "1")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="UPDATE_GOLDEN=1 is refused when CI is set"):
        test_golden_preview(CASES[0], None, tmp_path)
    assert golden.read_bytes() == before


def test_every_send_step_of_the_sample_journeys_has_a_golden_preview() -> None:
    covered = {(case.journey, case.step, case.variant) for case in CASES}
    sends = {
        (journey, step_id, variant if n else None)  # the first variant is the default
        for journey, plan in PLANS.items()
        for step_id, step in zip(plan.step_ids, plan.journey.steps, strict=True)
        if isinstance(step, SendStep)
        for n, variant in enumerate(step.variants or [None])
    }
    assert sends - covered == set()
