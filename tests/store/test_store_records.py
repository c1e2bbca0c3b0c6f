"""Validation of the records: bad input is refused with a message naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from store import ContactRecord, EventRecord


def only_error(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple[str | int, ...], str]:
    errors = exc.value.errors()
    assert len(errors) == 1
    return errors[0]["loc"], errors[0]["msg"]


def test_invalid_phone_rejected_with_exact_message() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactRecord(id="u1", phone="0612345678")
    assert only_error(exc) == (
        ("phone",),
        "phone must be in E.164 format, '+' then 7 to 15 digits (e.g. +14155550123), "
        "got '0612345678'",
    )


def test_invalid_timezone_rejected_with_exact_message() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactRecord(id="u1", timezone="Mars/Olympus_Mons")
    assert only_error(exc) == (
        ("timezone",),
        "timezone must be an IANA time zone name (e.g. Europe/Paris), got 'Mars/Olympus_Mons'",
    )


def test_invalid_email_rejected_with_exact_message() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactRecord(id="u1", email="ada.example.com")
    assert only_error(exc) == (
        ("email",),
        "email must be an address like name@example.com, got 'ada.example.com'",
    )


def test_error_text_names_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactRecord(id="u1", phone="+1 415 555 0123")
    assert "phone\n" in str(exc.value)
    assert "E.164" in str(exc.value)


def test_valid_contact_fields_accepted() -> None:
    record = ContactRecord(
        id="u1",
        email="ada@example.com",
        phone="+14155550123",
        timezone="America/Los_Angeles",
        locale="en-US",
    )
    assert record.phone == "+14155550123"
    assert record.timezone == "America/Los_Angeles"


def test_blank_strings_mean_no_value() -> None:
    record = ContactRecord(id="u1", email="  ", phone="", timezone=" ", locale="")
    assert (record.email, record.phone, record.timezone, record.locale) == (None,) * 4


def test_empty_contact_id_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactRecord(id="")
    assert exc.value.errors()[0]["loc"] == ("id",)


def test_records_are_frozen() -> None:
    record = ContactRecord(id="u1")
    with pytest.raises(ValidationError):
        record.email = "ada@example.com"  # type: ignore[misc]


def test_event_timestamps_normalised_to_utc() -> None:
    paris_summer = timezone(timedelta(hours=2))
    event = EventRecord(
        contact_id="u1", name="x", timestamp=datetime(2026, 6, 1, 12, 0, tzinfo=paris_summer)
    )
    assert event.timestamp == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC
    naive = EventRecord(contact_id="u1", name="x", timestamp=datetime(2026, 6, 1, 12, 0))
    assert naive.timestamp == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@given(st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z"))
def test_every_e164_number_accepted(phone: str) -> None:
    assert ContactRecord(id="u1", phone=phone).phone == phone


@given(st.text(min_size=1, max_size=20))
def test_phone_outside_e164_rejected(phone: str) -> None:
    stripped = phone.strip()
    valid = (
        stripped.startswith("+")
        and 8 <= len(stripped) <= 16
        and stripped[1] in "123456789"
        and all(c in "0123456789" for c in stripped[1:])
    )
    if valid or not stripped:
        return
    with pytest.raises(ValidationError):
        ContactRecord(id="u1", phone=phone)


def test_phone_with_non_ascii_digits_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactRecord(id="u1", phone="+\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668")
    assert only_error(exc)[0] == ("phone",)


def test_attributes_must_be_json_values() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactRecord(id="u1", attributes={"signed_up": datetime(2026, 1, 1)})
    assert exc.value.errors()[0]["loc"][:2] == ("attributes", "signed_up")
