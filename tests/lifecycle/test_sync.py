"""`rapport sync`: what changed against the store's runs and the schedules, then the schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from runtime.lifecycle import sync_project
from runtime.schedules import describe_schedule
from store.records import RunRecord
from tests.lifecycle.conftest import Cli
from tests.segments.conftest import Segments
from workflows.plan import JourneyPlan

MANUAL = """\
name: Manual {n}
trigger: manual
steps:
  - send: email
    template: onboarding/welcome
"""
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def run(segments: Segments, journey: str, version: str, n: int, *, ended: bool = False) -> None:
    segments.store.record_run(
        RunRecord(
            workflow_id=f"journey:{journey}:c{n}",
            run_id=f"{journey}-{version}-{n}",
            contact_id=f"c{n}",
            journey=journey,
            version=version,
            entered_at=T0 + timedelta(hours=n),
            status="completed" if ended else "running",
            ended_at=T0 + timedelta(hours=n, minutes=5) if ended else None,
        )
    )


async def test_sync_reports_versions_in_flight_runs_and_syncs_schedules(
    segments: Segments,
) -> None:
    changed = segments.write_journey(MANUAL.format(n=1))
    unchanged = segments.write_journey(MANUAL.format(n=2))
    added = segments.write_journey(MANUAL.format(n=3))
    segment = segments.journey()
    removed = "gone_journey"
    run(segments, changed.journey_id, "old1", 1)
    run(segments, changed.journey_id, "old1", 2)
    run(segments, changed.journey_id, "old2", 3)
    run(segments, changed.journey_id, "old2", 4, ended=True)
    run(segments, unchanged.journey_id, "u0", 1)
    run(segments, unchanged.journey_id, unchanged.version, 2)  # deployed already
    run(segments, removed, "vgone", 1)
    plans = {p.journey_id: p for p in (changed, unchanged, added, segment)}

    report = await sync_project(segments.client, segments.store, plans, segments.queue)
    by_journey = {j.journey: j for j in report.journeys}
    assert report.of("changed") == [changed.journey_id]
    assert sorted(report.of("added")) == sorted([added.journey_id, segment.journey_id])
    assert report.of("removed") == [removed]
    assert report.of("unchanged") == [unchanged.journey_id]
    assert by_journey[changed.journey_id].previous_version == "old2"
    assert by_journey[changed.journey_id].version == changed.version
    assert by_journey[changed.journey_id].in_flight_old == {"old1": 2, "old2": 1}
    assert by_journey[removed].in_flight_old == {"vgone": 1}
    assert by_journey[unchanged.journey_id].in_flight_old == {"u0": 1}
    assert by_journey[unchanged.journey_id].in_flight == {"u0": 1, unchanged.version: 1}
    assert report.schedules is not None and report.schedules.created == [segment.journey_id]
    assert by_journey[segment.journey_id].schedule is not None

    again = await sync_project(segments.client, segments.store, plans, segments.queue)
    assert segment.journey_id in again.of("unchanged")  # its schedule carries the version
    # Every synced version's plan is in the store, where its runs' activities read it.
    for plan in plans.values():
        document = segments.store.plans.document(plan.journey_id, plan.version)
        assert document is not None and JourneyPlan.model_validate(document) == plan


async def test_previous_version_comes_from_the_latest_run(segments: Segments) -> None:
    journey = segments.write_journey(MANUAL.format(n=1))
    run(segments, journey.journey_id, journey.version, 1)
    run(segments, journey.journey_id, "newer", 2, ended=True)
    report = await sync_project(
        segments.client, segments.store, {journey.journey_id: journey}, segments.queue, apply=False
    )
    [change] = report.journeys
    assert change.change == "changed" and change.previous_version == "newer"
    assert change.in_flight_old == {} and report.schedules is None


async def test_sync_command_json_dry_run_and_invalid_journeys(segments: Segments, cli: Cli) -> None:
    segment = segments.journey()
    code, out, _ = await cli("sync", "--dry-run", "--json")
    assert code == 0, out
    dry = json.loads(out)
    assert dry["dry_run"] is True and dry["added"] == [segment.journey_id]
    assert dry["schedules"] is None
    assert await describe_schedule(segments.client, segment.journey_id) is None

    code, out, _ = await cli("sync", "--json")
    assert code == 0, out
    done = json.loads(out)
    [entry] = done["journeys"]
    assert entry["journey"] == segment.journey_id and entry["change"] == "added"
    assert entry["trigger"] == "schedule" and entry["in_flight"] == 0
    assert entry["schedule"]["action"] == "created"
    assert entry["schedule"]["schedule_id"] == f"segment:{segment.journey_id}"

    # The journey's file breaks: it is reported, not treated as removed; its schedule stays.
    path = segments.journeys / f"{segment.journey_id}.yaml"
    path.write_text(path.read_text().replace("steps:", "stepz:"))
    code, out, err = await cli("sync")
    assert code == 1
    assert f"{segment.journey_id}: does not compile" in err
    assert "0 added, 0 changed, 0 removed, 0 unchanged" in err
    assert await describe_schedule(segments.client, segment.journey_id) is not None

    path.unlink()
    code, out, err = await cli("sync")
    assert code == 0
    assert out.split()[:2] == [segment.journey_id, "removed"]
    assert "deleted (journey removed)" in out
    assert await describe_schedule(segments.client, segment.journey_id) is None
