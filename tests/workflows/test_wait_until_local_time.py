"""`wait_until: "09:00"` is resolved when the run reaches it, in the contact's own time zone
(the journey's `settings.timezone` for a contact without one), daylight saving included — on the
time-skipping server, with the real workflow and activities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runtime.simulator import SimulationResult
from tests.workflows.conftest import START, Runner, compile_plan, contact

MORNING = """\
name: Morning hello
trigger: manual
settings:
  timezone: Asia/Kolkata
steps:
  - id: morning
    wait_until: "09:00"
  - id: hello
    send: email
    template: onboarding/welcome
    category: transactional
"""


def sent_at(result: SimulationResult) -> datetime:
    """When the wait ended (its `until`, exact), checked against the send right after it."""
    [wait] = [e for e in result.timeline if e.step == "morning"]
    [send] = [e for e in result.timeline if e.type == "send"]
    assert (send.step, send.status) == ("hello", "sent"), send
    until = datetime.fromisoformat(str(wait.until)).astimezone(UTC)
    sent = datetime.fromisoformat(str(send.at)).astimezone(UTC)
    assert timedelta(0) <= sent - until < timedelta(minutes=1), (until, sent)
    return until


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # START is Monday 2026-11-02 15:00 UTC.
        ("Europe/Paris", datetime(2026, 11, 3, 8, 0, tzinfo=UTC)),  # 16:00 there: tomorrow
        ("America/New_York", datetime(2026, 11, 3, 14, 0, tzinfo=UTC)),  # 10:00: tomorrow
        ("Asia/Tokyo", datetime(2026, 11, 3, 0, 0, tzinfo=UTC)),  # 00:00 Tuesday: today
        (None, datetime(2026, 11, 3, 3, 30, tzinfo=UTC)),  # the journey's zone, UTC+5:30
    ],
    ids=["paris", "new-york", "tokyo", "journey-zone"],
)
async def test_nine_am_is_the_next_nine_am_where_the_contact_lives(
    run: Runner, tmp_path: Path, zone: str | None, expected: datetime
) -> None:
    path = tmp_path / "morning.yaml"
    path.write_text(MORNING, encoding="utf-8")
    result = await run(compile_plan(path), contact("mo", timezone=zone), [], start=START)
    assert sent_at(result) == expected
    assert result.outcome == "completed"


async def test_nine_am_across_the_spring_forward_night(run: Runner, tmp_path: Path) -> None:
    # Saturday 2026-03-28 12:00 UTC is 13:00 in Paris; clocks go forward that night, so 09:00
    # on Sunday is 07:00 UTC, not 08:00.
    path = tmp_path / "morning.yaml"
    path.write_text(MORNING, encoding="utf-8")
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    result = await run(compile_plan(path), contact("mo", timezone="Europe/Paris"), [], start=start)
    assert sent_at(result) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


TWO_DAYS_LATER = """\
name: Two days later at ten
trigger: manual
steps:
  - id: morning
    wait_until: {WHEN}
  - id: hello
    send: email
    template: onboarding/welcome
    category: transactional
"""


@pytest.mark.parametrize("when", ['{time: "10:00", days: 2}', '"10:00 +2d"'], ids=["map", "short"])
async def test_ten_on_the_second_calendar_day_is_not_the_next_ten_plus_two_days(
    run: Runner, tmp_path: Path, when: str
) -> None:
    # START is Monday 15:00 UTC, 10:00 in New York: the next 10:00 is Tuesday's, plus 2d would
    # be Thursday; "10:00 +2d" is Wednesday 10:00 New York, 15:00 UTC.
    path = tmp_path / "two_days.yaml"
    path.write_text(TWO_DAYS_LATER.replace("{WHEN}", when), encoding="utf-8")
    result = await run(compile_plan(path), contact("mo", timezone="America/New_York"), [])
    assert sent_at(result) == datetime(2026, 11, 4, 15, 0, tzinfo=UTC)


async def test_offset_is_added_to_the_calendar_day_time(run: Runner, tmp_path: Path) -> None:
    text = TWO_DAYS_LATER.replace("{WHEN}", '"10:00 +1d"').replace(
        "  - id: hello", "    offset: -1h\n  - id: hello"
    )
    path = tmp_path / "two_days.yaml"
    path.write_text(text, encoding="utf-8")
    result = await run(compile_plan(path), contact("mo", timezone="Europe/Paris"), [])
    # Tuesday 10:00 in Paris is 09:00 UTC; an hour earlier, 08:00.
    assert sent_at(result) == datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
