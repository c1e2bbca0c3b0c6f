"""The birthday_reward sample on the time-skipping server: a date trigger simulated across a
year enters at the occurrence (a week before, 09:00 local), 29 February is 28 February in other
years, and an order within the goal's 14 days converts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store.records import ContactRecord
from tests.workflows.conftest import Runner, at, contact, sample, sends

NEW_YEAR = datetime(2027, 1, 1, tzinfo=UTC)
A_YEAR = timedelta(days=365)


def born(contact_id: str, birthday: str, zone: str) -> ContactRecord:
    return contact(
        contact_id,
        timezone=zone,
        attributes={"first_name": contact_id.title(), "birthday": birthday},
    )


async def test_the_gift_goes_a_week_before_at_nine_local_and_the_note_on_the_day(
    run: Runner,
) -> None:
    who = born("dana", "1988-03-14", "Europe/Berlin")
    result = await run(sample("birthday_reward"), who, [], start=NEW_YEAR, until=A_YEAR)
    assert result.occurrence == "2027-03-14"
    assert result.started_at == datetime(2027, 3, 7, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    assert sends(result) == [
        ("gift", "email", "sent"),
        ("happy_birthday", "email", "sent"),
        ("last_call", "email", "sent"),
    ]
    [on_the_day] = [e for e in result.timeline if e.step == "on_the_day"]
    assert on_the_day.until == datetime(2027, 3, 14, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert result.outcome == "completed"


async def test_a_leap_day_birthday_is_the_28th_in_other_years(run: Runner) -> None:
    who = born("bruno", "1984-02-29", "UTC")
    result = await run(sample("birthday_reward"), who, [], start=NEW_YEAR, until=A_YEAR)
    assert result.occurrence == "2027-02-28"
    assert result.started_at == datetime(2027, 2, 21, 9, 0, tzinfo=UTC)


async def test_an_order_within_fourteen_days_converts(run: Runner) -> None:
    who = born("dana", "1988-03-14", "Europe/Berlin")
    # The gift is sent 65 days and 8 hours after new year; the order two days after the birthday.
    order = at("74d", "order_placed", order_id="B-4102")
    result = await run(sample("birthday_reward"), who, [order], start=NEW_YEAR, until=A_YEAR)
    assert result.outcome == "converted"
    assert [step for step, _, _ in sends(result)] == ["gift", "happy_birthday"]
