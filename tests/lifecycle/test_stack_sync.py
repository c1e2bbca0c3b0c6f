"""`rapport run` syncs the segment schedules when it starts; `rapport sync` then finds nothing
to change. Real processes, free ports."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from tests.stack.helpers import clean_env, free_port, start_stack
from tests.stack.test_processes import _cli, _interrupt


@pytest.mark.timeout(120)
async def test_rapport_run_creates_the_schedules_and_sync_agrees(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = (free_port(), free_port(), free_port())
    log = tmp_path / "run.log"
    env = clean_env(TEMPORAL_ADDRESS=f"127.0.0.1:{ports[1]}", RAPPORT_DATA_DIR=str(data_dir))
    process, _ = await start_stack(data_dir, *ports, log)
    try:
        assert "schedule segment:win_back created" in log.read_text()
        code, out = await _cli("sync", "--json", env=env)
        assert code == 0, out
        report = json.loads(out)
        schedules = {change["journey"]: change for change in report["schedules"]}
        assert schedules["win_back"]["action"] == "unchanged"
        assert schedules["vip_event"]["action"] in ("unchanged", "skipped")  # `at` may be past
        assert "onboarding" not in schedules  # an event journey has no schedule
        by_journey = {j["journey"]: j for j in report["journeys"]}
        assert by_journey["win_back"]["change"] == "unchanged"  # the schedule's version
        assert by_journey["onboarding"]["change"] == "added"  # no run yet
    finally:
        assert await _interrupt(process) == 0, log.read_text()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
