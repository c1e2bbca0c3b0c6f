"""A date trigger's and a local-time schedule's tick page, without Temporal, on SQLite and
PostgreSQL: the SQL keeps only candidates, the hour decides who enters and when, and a contact
enters once per occurrence however often a tick covering it runs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import ScheduleOverlapPolicy

from activities.segment_activities import Moment, select_page
from runtime.schedules import build_schedule
from store import Store
from store.records import ContactRecord, RunRecord
from tests.stack.helpers import ROOT
from workflows.compiler import compile_journey
from workflows.dates import date_value
from workflows.plan import JourneyPlan
from workflows.segment_workflow import EnrolPageInput

BIRTHDAY = """\
name: Birthday
trigger:
  date: contact.birthday
  offset: -7d
  at: "09:00"
steps:
  - send: email
    template: onboarding/welcome
"""

LOCAL_MONDAY = """\
name: Monday nine local
trigger:
  segment: "true"
  schedule: "0 9 * * MON"
  local_time: true
settings:
  timezone: Europe/Paris
steps:
  - send: email
    template: onboarding/welcome
"""


def compiled(tmp_path: Path, text: str, name: str = "birthday") -> JourneyPlan:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    plan, diagnostics = compile_journey(path, ROOT / "templates")
    assert plan is not None, [str(d) for d in diagnostics]
    return plan


def person(contact_id: str, zone: str | None, **attributes: Any) -> ContactRecord:
    return ContactRecord(id=contact_id, timezone=zone, attributes=attributes)


def tick(store: Store, plan: JourneyPlan, at: datetime, tick_id: str = "t") -> Any:
    request = EnrolPageInput(
        journey=plan.journey_id, version=plan.version, tick_id=tick_id, tick_at=at
    )
    return select_page(store, plan, request, at)


def test_the_hour_of_an_occurrence_enrols_who_it_is_nine_for_a_week_before(
    store: Store, tmp_path: Path
) -> None:
    plan = compiled(tmp_path, BIRTHDAY)
    store.upsert_contacts(
        [
            person("paris", "Europe/Paris", birthday="1990-03-14"),  # 09:00 CET = 08:00 UTC
            person("tokyo", "Asia/Tokyo", birthday="1985-03-14"),  # 09:00 JST = 00:00 UTC
            person("later", "Europe/Paris", birthday="1990-03-15"),
            person("other", "Europe/Paris", birthday="1990-07-01"),
            person("none", "Europe/Paris"),
            person("text", "Europe/Paris", birthday="not a date"),
        ]
    )
    selection = tick(store, plan, datetime(2027, 3, 7, 8, 0, tzinfo=UTC))
    assert selection.to_start == ["paris"]
    assert selection.moments == {
        "paris": Moment(datetime(2027, 3, 7, 8, 0, tzinfo=UTC), "2027-03-14")
    }
    # The SQL read only the contacts whose birthday is near the day, not the others.
    assert selection.result["scanned"] == 3  # later, paris, tokyo


def test_a_moment_inside_the_hour_is_started_with_a_delay_to_it(
    store: Store, tmp_path: Path
) -> None:
    plan = compiled(tmp_path, BIRTHDAY)
    store.upsert_contact(person("delhi", "Asia/Kolkata", birthday="1990-03-14"))
    # 09:00 in Delhi (UTC+5:30) on 7 March is 03:30 UTC: the 03:00 tick starts it for 03:30.
    selection = tick(store, plan, datetime(2027, 3, 7, 3, 0, tzinfo=UTC))
    assert selection.moments == {
        "delhi": Moment(datetime(2027, 3, 7, 3, 30, tzinfo=UTC), "2027-03-14")
    }


def test_the_29th_of_february_is_the_28th_in_other_years(store: Store, tmp_path: Path) -> None:
    plan = compiled(tmp_path, BIRTHDAY.replace("  offset: -7d\n", ""))
    store.upsert_contact(person("leap", "UTC", birthday="2000-02-29"))
    common_year = tick(store, plan, datetime(2027, 2, 28, 9, 0, tzinfo=UTC))
    leap_year = tick(store, plan, datetime(2028, 2, 29, 9, 0, tzinfo=UTC))
    not_the_28th_in_a_leap_year = tick(store, plan, datetime(2028, 2, 28, 9, 0, tzinfo=UTC))
    assert common_year.moments == {
        "leap": Moment(datetime(2027, 2, 28, 9, tzinfo=UTC), "2027-02-28")
    }
    assert leap_year.moments == {"leap": Moment(datetime(2028, 2, 29, 9, tzinfo=UTC), "2028-02-29")}
    assert not_the_28th_in_a_leap_year.to_start == []


def test_an_occurrence_already_entered_is_not_entered_again(store: Store, tmp_path: Path) -> None:
    plan = compiled(tmp_path, BIRTHDAY)
    store.upsert_contact(person("paris", "Europe/Paris", birthday="1990-03-14"))
    store.record_run(
        RunRecord(
            workflow_id="journey:birthday:paris:2027-03-14",
            run_id="r1",
            contact_id="paris",
            journey="birthday",
            version="v",
            entered_at=datetime(2027, 3, 7, 8, 0, tzinfo=UTC),
            data={"segment_tick": "first", "occurrence": "2027-03-14"},
        )
    )
    again = tick(store, plan, datetime(2027, 3, 7, 8, 0, tzinfo=UTC), tick_id="second")
    next_year = tick(store, plan, datetime(2028, 3, 7, 8, 0, tzinfo=UTC), tick_id="third")
    assert again.to_start == [] and again.result["already_enrolled"] == 1
    assert next_year.moments == {
        "paris": Moment(datetime(2028, 3, 7, 8, 0, tzinfo=UTC), "2028-03-14")
    }


def test_a_birthday_held_by_a_trait_counts_too(store: Store, tmp_path: Path) -> None:
    plan = compiled(tmp_path, BIRTHDAY.replace("contact.birthday", "contact.first_order_at"))
    store.upsert_contact(person("ada", "UTC"))
    store.set_traits("ada", {"first_order_at": "2025-03-14T18:30:00+00:00"}, cause="test")
    selection = tick(store, plan, datetime(2026, 3, 7, 9, 0, tzinfo=UTC))
    assert selection.moments == {"ada": Moment(datetime(2026, 3, 7, 9, tzinfo=UTC), "2026-03-14")}


def test_a_local_time_schedule_reads_only_the_zones_where_it_is_nine_on_monday(
    store: Store, tmp_path: Path
) -> None:
    plan = compiled(tmp_path, LOCAL_MONDAY, "monday")
    store.upsert_contacts(
        [
            person("paris", "Europe/Paris"),
            person("nozone", None),  # the journey's zone, Paris
            person("london", "Europe/London"),
            person("kolkata", "Asia/Kolkata"),
        ]
    )
    # Monday 2026-11-02 08:00 UTC is 09:00 in Paris, 08:00 in London, 13:30 in Kolkata.
    selection = tick(store, plan, datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    assert selection.to_start == ["nozone", "paris"]
    assert selection.result["scanned"] == 2
    # 09:00 in Kolkata was 03:30 UTC: the 03:00 tick starts it with a delay to 03:30.
    kolkata = tick(store, plan, datetime(2026, 11, 2, 3, 0, tzinfo=UTC), tick_id="t3")
    assert kolkata.moments == {"kolkata": Moment(datetime(2026, 11, 2, 3, 30, tzinfo=UTC))}


def test_date_and_local_time_journeys_tick_hourly_and_never_skip_an_hour(tmp_path: Path) -> None:
    for plan in (compiled(tmp_path, BIRTHDAY), compiled(tmp_path, LOCAL_MONDAY, "monday")):
        schedule = build_schedule(plan, "queue")
        assert schedule.spec.cron_expressions == ["0 * * * *"]
        assert schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ALL


def test_a_timestamp_attribute_in_utc_with_z_is_its_date_in_the_contacts_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert date_value("2026-03-14T23:30:00Z", berlin) == date(2026, 3, 15)
    assert date_value("2026-03-14 23:30:00.5Z", ZoneInfo("UTC")) == date(2026, 3, 14)
    assert date_value("2026-03-14T23:30:00 nonsense", berlin) is None
