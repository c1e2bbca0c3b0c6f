"""Contact files (SPEC §8) for preview and simulate: checked with FILE:LINE:COL, times resolved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.contact_context import scratch_snapshot
from store.records import ContactRecord
from tests.cli.conftest import ROOT
from workflows.contact_file import ContactFile, ContactFileError, HistoryEvent, load_contact_file
from workflows.event_questions import EventQuestion
from workflows.expressions import evaluate_condition

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SAMPLES = sorted((ROOT / "contacts").glob("*.yaml"))


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    monkeypatch.chdir(tmp_path)

    def make(text: str) -> Path:
        path = Path("contact.yaml")
        path.write_text(text, encoding="utf-8")
        return path

    return make


def errors(path: Path) -> str:
    with pytest.raises(ContactFileError) as caught:
        load_contact_file(path)
    return caught.value.message


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_the_sample_contacts_load(path: Path) -> None:
    contact = load_contact_file(path)
    assert contact.id == path.stem


def test_contact_variables_flatten_the_attributes() -> None:
    alice = load_contact_file(ROOT / "contacts" / "alice.yaml")
    assert alice.variables() == {
        "id": "alice",
        "email": "alice@example.com",
        "phone": "+12125550143",
        "timezone": "America/New_York",
        "locale": "en_US",
        "first_name": "Alice",
        "last_name": "Martin",
        "plan": "starter",
        "orders_count": 0,
        "lifetime_value": 0,
        "currency": "USD",
        "vip": False,
    }


def test_unset_profile_fields_are_left_out() -> None:
    eli = load_contact_file(ROOT / "contacts" / "eli.yaml")
    assert "email" not in eli.variables()
    assert eli.profile()["email"] is None


def test_relative_event_times_count_back_from_now() -> None:
    bruno = load_contact_file(ROOT / "contacts" / "bruno.yaml")
    history = bruno.history(NOW)
    assert [event.timestamp for event in history] == [
        NOW - timedelta(days=161),
        NOW - timedelta(days=118),
        NOW - timedelta(days=75),
    ]
    assert history[-1].properties["order_id"] == "F-2291"


def test_the_history_feeds_the_expression_functions() -> None:
    bruno = load_contact_file(ROOT / "contacts" / "bruno.yaml")
    questions = [
        EventQuestion(kind="count", name="order_placed"),
        EventQuestion(kind="count", name="order_placed", within="90d"),
    ]
    snapshot = scratch_snapshot(
        ContactRecord(**bruno.profile()), bruno.event_records(NOW), questions, NOW
    )
    context = snapshot.context(NOW)
    assert evaluate_condition('count_events("order_placed") == 3', context)
    assert evaluate_condition('count_events("order_placed", within="90d") == 1', context)


def test_absolute_times_are_kept_and_naive_ones_are_utc(write: Callable[[str], Path]) -> None:
    path = write(
        "id: x\nevents:\n"
        "  - {event: a, at: '2026-11-01T09:00:00+01:00'}\n"
        "  - {event: b, at: 2026-11-02T09:00:00}\n"
        "  - {event: c, at: 2026-11-03}\n"
    )
    history = load_contact_file(path).history(NOW)
    assert history == (
        HistoryEvent("a", datetime(2026, 11, 1, 8, 0, tzinfo=UTC)),
        HistoryEvent("b", datetime(2026, 11, 2, 9, 0, tzinfo=UTC)),
        HistoryEvent("c", datetime(2026, 11, 3, tzinfo=UTC)),
    )


def test_a_numeric_id_becomes_text(write: Callable[[str], Path]) -> None:
    assert load_contact_file(write("id: 1042\n")) == ContactFile(id="1042")


def test_every_problem_is_reported_with_file_line_and_field(write: Callable[[str], Path]) -> None:
    path = write(
        "id: x\n"
        "phone: '555-0143'\n"
        "timezone: Mars/Base\n"
        "first_name: X\n"
        "events:\n"
        "  - event: order placed\n"
        "    at: 30d\n"
        "  - event: b\n"
        "    at: yesterday\n"
        "    props: {}\n"
    )
    assert errors(path).splitlines() == [
        "contact.yaml:2:8: phone: phone '555-0143' is not in E.164 form: write it as "
        '+<country code><number>, quoted, e.g. "+12125550143"',
        "contact.yaml:3:11: timezone: unknown time zone 'Mars/Base': use an IANA name such as "
        "Europe/Paris",
        "contact.yaml:4:1: first_name: unknown key: a contact file has id, email, phone, timezone, "
        "locale, attributes and events; put custom fields under attributes",
        "contact.yaml:6:12: events[0].event: invalid event name 'order placed'",
        "contact.yaml:7:9: events[0].at: a relative time is in the past: write -30d for 30d ago",
        "contact.yaml:9:9: events[1].at: 'yesterday' is neither an ISO timestamp "
        "(2026-11-01T09:00:00+00:00) nor a negative duration such as -30d (30 days before now)",
        "contact.yaml:10:5: events[1].props: unknown key: an event has event, at and properties",
    ]


def test_an_unquoted_phone_number(write: Callable[[str], Path]) -> None:
    assert errors(write("id: x\nphone: +12125550143\n")) == (
        'contact.yaml:2:8: phone: quote phone numbers, e.g. phone: "+12125550143"'
    )


def test_a_missing_id(write: Callable[[str], Path]) -> None:
    assert errors(write("email: a@example.com\n")) == "contact.yaml:1:1: id: this key is required"


def test_yaml_errors_in_a_contact_file(write: Callable[[str], Path]) -> None:
    assert errors(write("id: x\nattributes:\n  a: 1\n b: 2\n")) == (
        "contact.yaml:4:2: YAML syntax error: expected <block end>, but found "
        "'<block mapping start>' (while parsing a block mapping)"
    )


def test_a_contact_file_that_is_no_mapping(write: Callable[[str], Path]) -> None:
    assert errors(write("- alice\n")) == (
        "contact.yaml:1:1: a contact file is a mapping with at least `id` (and email, phone, "
        "timezone, locale, attributes, events)"
    )


def test_a_missing_contact_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert errors(Path("contacts/zoe.yaml")) == "contacts/zoe.yaml: no such contact file"
