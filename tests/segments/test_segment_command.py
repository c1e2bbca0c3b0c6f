"""`rapport segment JOURNEY`: which contacts in the store a segment trigger matches, and how many
(issue 16 item 6), judged by the tick's own evaluation. The examples' 60-day win-back, over a
store seeded with the examples' five contacts, of whom only lena last ordered more than 60 days
ago (75; maya 40, sam 18, omar 9, noor never)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import app
from errors import InvalidInputError
from runtime.stack import seed_contacts
from settings import get_settings
from store import Store
from store.records import RunRecord
from tests.stack.helpers import ROOT

EXAMPLES = ROOT / "examples"
AT = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
SEGMENT = (
    'count_events("order_placed") > 0 and days_since(last_event("order_placed").timestamp) > 60'
)


@pytest.fixture
def examples_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A store of the examples' contacts, and `rapport` pointed at it and at examples/."""
    for name, value in {
        "RAPPORT_DATA_DIR": str(tmp_path),
        "RAPPORT_JOURNEYS_DIR": str(EXAMPLES / "journeys"),
        "RAPPORT_TEMPLATES_DIR": str(EXAMPLES / "templates"),
        "RAPPORT_CONTACTS_DIR": str(EXAMPLES / "contacts"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    opened = Store.open(get_settings().database)
    seed_contacts(opened, EXAMPLES / "contacts", now=AT)
    yield opened
    opened.close()
    get_settings.cache_clear()


def segment(*args: str) -> Result:
    return CliRunner().invoke(app, ["segment", *args, "--at", AT.isoformat()])


def test_segment_prints_how_many_contacts_match_and_who(examples_store: Store) -> None:
    result = segment("win_back_60d")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "win_back_60d: 1 of 5 contact(s) match at 2026-11-02T15:00:00+00:00 (0 of them inside "
        "already or kept out by reentry; 0 could not be evaluated)",
        f"  segment: {SEGMENT}",
        "  audience: contact.email is defined and contact.email",
        "lena    lena.vogel@example.de   +4915112345678  Europe/Berlin",
    ]


def test_count_prints_only_the_number(examples_store: Store) -> None:
    result = segment("win_back_60d", "--count")
    assert (result.exit_code, result.stdout) == (0, "1\n")


def test_a_contact_already_inside_is_counted_apart(examples_store: Store) -> None:
    examples_store.record_run(
        RunRecord(
            workflow_id="journey:win_back_60d:lena",
            run_id="r-1",
            contact_id="lena",
            journey="win_back_60d",
            version="v1",
            entered_at=AT - timedelta(days=3),
        )
    )
    result = json.loads(segment("win_back_60d", "--json").stdout)
    assert (result["matched"], result["kept_out"]) == (1, 1)
    assert [contact["id"] for contact in result["sample"]] == ["lena"]


def test_a_journey_without_a_segment_trigger_is_refused(
    examples_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAPPORT_JOURNEYS_DIR", str(ROOT / "journeys"))
    monkeypatch.setenv("RAPPORT_TEMPLATES_DIR", str(ROOT / "templates"))
    get_settings.cache_clear()
    result = segment("onboarding")
    assert isinstance(result.exception, InvalidInputError)
    assert str(result.exception) == (
        "journey 'onboarding' has no segment trigger: rapport segment counts the contacts a "
        "segment: trigger matches"
    )
