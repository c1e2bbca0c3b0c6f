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
