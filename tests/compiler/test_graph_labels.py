"""`rapport graph` names the v2 constructs as they are written."""

from __future__ import annotations

from tests.compiler.conftest import Project
from workflows.graph import to_mermaid


def test_a_wait_until_a_later_day_is_drawn_with_its_days(project: Project) -> None:
    plan = project.plan(
        'name: Later\ntrigger: manual\nsteps:\n  - id: later\n    wait_until: "10:00 +2d"\n'
        "    offset: -1h\n  - exit:\n"
    )
    assert '    n_later["later: wait until 10:00 +2d -1h"]' in to_mermaid(plan).splitlines()


def test_a_date_trigger_is_drawn_with_its_offset_and_local_time(project: Project) -> None:
    plan = project.plan(
        'name: Birthday\ntrigger:\n  date: contact.birthday\n  offset: -7d\n  at: "09:30"\n'
        "steps:\n  - exit:\n"
    )
    start = '    n_start(["on contact.birthday -7d, each year, at 09:30 local"])'
    assert start in to_mermaid(plan).splitlines()


def test_a_local_time_schedule_says_so(project: Project) -> None:
    plan = project.plan(
        'name: Monday\ntrigger:\n  segment: "true"\n  schedule: "0 9 * * MON"\n'
        "  local_time: true\nsteps:\n  - exit:\n"
    )
    start = '    n_start(["segment, cron 0 9 * * MON, contact\'s local time"])'
    assert start in to_mermaid(plan).splitlines()
