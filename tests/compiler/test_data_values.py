"""`data` values relative to the run's start: `{after_start: DURATION, at: "HH:MM"}`."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.compiler.conftest import Project
from tests.stack.helpers import ROOT
from workflows.compiler import compile_journey

JOURNEY = "name: Test\ntrigger:\n  event: signed_up\ndata:\n{data}steps:\n  - exit: completed\n"


def test_a_bad_duration_or_time_of_day_is_an_error_at_the_value(project: Project) -> None:
    text = JOURNEY.format(
        data='  starts: {after_start: soon}\n  ends: {after_start: 1d, at: "25:99"}\n'
    )
    assert project.errors(text) == [
        "journeys/test.yaml:5:11: starts: invalid duration 'soon': use 30m, 2h, 3d, 1w or ISO "
        "8601 such as P3D or PT2H",
        "journeys/test.yaml:6:9: ends: invalid time of day '25:99': use HH:MM, e.g. 09:00",
    ]


def test_the_vip_evening_is_ten_days_after_the_broadcast_at_seven() -> None:
    plan, diagnostics = compile_journey(ROOT / "journeys" / "vip_event.yaml", ROOT / "templates")
    assert plan is not None, diagnostics
    broadcast = datetime(2027, 3, 1, 17, 0, tzinfo=UTC)
    assert plan.start_data(broadcast) == {"event_starts_at": "2027-03-11T19:00:00+00:00"}
    assert plan.data_at(broadcast)["event_name"] == "Winter Reserve Tasting"
