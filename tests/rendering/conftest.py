"""Shared fixtures for the rendering tests: demo contacts, a fixed clock, journey data, contexts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.durations import parse_duration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
CONTACTS = ROOT / "contacts"

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BRAND = {
    "name": "Rapport Coffee Co.",
    "url": "https://rapport.example",
    "address": "118 Roastery Lane, Portland, OR 97209, USA",
}
# The data each journey passes to its templates as `journey.*` (mirroring the `data:` of
# journeys/*.yaml), keyed by template folder.
JOURNEY_DATA: dict[str, dict[str, Any]] = {
    "birthday": {"gift_code": "BIRTHDAY15", "discount_percent": 15},
    "onboarding": {"offer_code": "WELCOME10"},
    "loyalty": {"silver_discount_percent": 5, "gold_discount_percent": 10},
    "referral": {"reward_percent": 20},
    "win_back": {"offer_code": "COMEBACK", "discount_percent": 15, "vip_discount_percent": 25},
    "vip_event": {
        "event_name": "Winter Reserve Tasting",
        "event_starts_at": "2026-12-12T19:00:00+00:00",
        "venue": "Rapport Roastery, 12 Harbour Street",
        "rsvp_url": "https://rapport.example/events/winter-reserve/rsvp",
    },
    "feedback": {
        "staff_inbox": "care@rapport.example",
        "referral_url": "https://rapport.example/refer",
    },
}
# What earlier steps produced, as `steps.*` (the feedback journey waits for a score).
# What started the run, per template directory, where the default trigger does not fit.
TRIGGERS: dict[str, dict[str, Any]] = {
    "loyalty": {
        "name": "trait_changed",
        "properties": {"trait": "tier", "old": "silver", "new": "gold"},
        "timestamp": "2026-11-27T12:00:00+00:00",
    },
    "referral": {
        "name": "referral_completed",
        "properties": {"referral_id": "r-1042", "friend_name": "Sam"},
        "timestamp": "2026-11-27T12:00:00+00:00",
    },
}
STEPS: dict[str, dict[str, Any]] = {
    "feedback": {
        "await_score": {
            "result": "event",
            "event": {
                "name": "nps_submitted",
                "properties": {
                    "order_id": "B-3318",
                    "score": 3,
                    "comment": "The beans arrived a week after roasting and the bag was torn.",
                },
                "timestamp": "2026-11-27T18:20:00+00:00",
            },
        }
    }
}


def load_contact(contact_id: str) -> dict[str, Any]:
    data = yaml.safe_load((CONTACTS / f"{contact_id}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    text = str(value)
    if text.startswith("-"):
        return NOW + parse_duration(text, allow_negative=True)
    return datetime.fromisoformat(text)


def build_variables(
    contact_file: Mapping[str, Any],
    journey: str,
    *,
    trigger: Mapping[str, Any] | None = None,
    steps: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context a journey run would build for this contact (fixed clock)."""
    contact = {
        "id": contact_file["id"],
        "email": contact_file.get("email"),
        "phone": contact_file.get("phone"),
        "timezone": contact_file.get("timezone"),
        "locale": contact_file.get("locale"),
        **(contact_file.get("attributes") or {}),
    }
    history = [
        {
            "name": item["event"],
            "properties": item.get("properties") or {},
            "timestamp": _timestamp(item["at"]).isoformat(),
        }
        for item in contact_file.get("events") or []
    ]
    history.sort(key=lambda event: event["timestamp"])

    def now() -> datetime:
        return NOW

    def days_since(value: Any) -> float:
        return (NOW - _timestamp(value)).total_seconds() / 86400

    def count_events(name: str, within: str | None = None) -> int:
        since = NOW - parse_duration(within) if within else datetime.min.replace(tzinfo=UTC)
        return sum(1 for e in history if e["name"] == name and _timestamp(e["timestamp"]) >= since)

    def last_event(name: str) -> dict[str, Any] | None:
        matching = [e for e in history if e["name"] == name]
        return matching[-1] if matching else None

    orders = [e for e in history if e["name"] == "order_placed"]
    default_trigger = {
        "name": "order_delivered",
        "properties": {"order_id": orders[-1]["properties"]["order_id"] if orders else "1042"},
        "timestamp": (NOW - timedelta(days=1)).isoformat(),
    }
    trigger = trigger or TRIGGERS.get(journey) or default_trigger
    return {
        "contact": contact,
        "event": dict(trigger),
        "trigger": dict(trigger),
        "journey": dict(JOURNEY_DATA.get(journey, {})),
        "steps": dict(steps if steps is not None else STEPS.get(journey, {})),
        "now": now,
        "days_since": days_since,
        "count_events": count_events,
        "last_event": last_event,
        "unsubscribe_url": f"https://rapport.example/u/{contact['id']}/unsubscribe",
        "preferences_url": f"https://rapport.example/u/{contact['id']}/preferences",
        "brand": dict(BRAND),
    }


@pytest.fixture
def variables_for() -> Callable[..., dict[str, Any]]:
    """`variables_for("alice", "onboarding")`: the context for a demo contact in a journey."""

    def make(contact_id: str, journey: str, **kwargs: Any) -> dict[str, Any]:
        return build_variables(load_contact(contact_id), journey, **kwargs)

    return make


@pytest.fixture
def templates_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty `templates/` under a temporary working directory (paths show as templates/…)."""
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "templates"
    directory.mkdir()
    return directory


@pytest.fixture
def write_template(templates_dir: Path) -> Callable[[str, str], Path]:
    """Write `templates/<relative>` with the given source."""

    def write(relative: str, source: str) -> Path:
        path = templates_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
        return path

    return write
