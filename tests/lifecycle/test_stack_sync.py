"""`rapport run` syncs the segment schedules when it starts — a cron schedule, and a one-time
broadcast (`at`) that then fires and sends — and `rapport sync` finds nothing to change. Real
processes, free ports, a project of its own in a temporary directory."""

from __future__ import annotations

import contextlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runtime.schedules import latest_tick
from runtime.temporal import connect
from store import Store
from tests.stack.helpers import ROOT, clean_env, free_port, project_settings, start_stack
from tests.stack.test_processes import _cli, _interrupt
from tests.waiting import eventually
from workflows.segment_workflow import TickProgress

# Far enough ahead for `rapport run` to start and sync on a loaded machine (it must not be past
# when the schedule is created), near enough to keep the test short.
AT_LEAD = timedelta(seconds=25)
BROADCAST = """\
name: VIP preview night
trigger:
  segment: contact.vip | default(false)
  at: "{at}"
steps:
  - id: invitation
    send: email
    template: onboarding/welcome
    category: transactional
"""


@pytest.mark.timeout(180)
async def test_rapport_run_creates_the_schedules_fires_the_broadcast_and_sync_agrees(
    tmp_path: Path,
) -> None:
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    shutil.copy(ROOT / "journeys" / "win_back.yaml", journeys / "win_back.yaml")
    shutil.copy(ROOT / "journeys" / "onboarding.yaml", journeys / "onboarding.yaml")
    at = (datetime.now(UTC) + AT_LEAD).replace(microsecond=0)
    (journeys / "vip_preview.yaml").write_text(BROADCAST.format(at=at.isoformat()), "utf-8")
    data_dir = tmp_path / "data"
    ports = (free_port(), free_port(), free_port())
    log = tmp_path / "run.log"
    env = clean_env(
        TEMPORAL_ADDRESS=f"127.0.0.1:{ports[1]}",
        RAPPORT_DATA_DIR=str(data_dir),
        RAPPORT_JOURNEYS_DIR=str(journeys),
    )
    process, _ = await start_stack(
        data_dir, *ports, log, env=clean_env(RAPPORT_JOURNEYS_DIR=str(journeys))
    )
    settings = project_settings(data_dir=data_dir, temporal_address=f"127.0.0.1:{ports[1]}")
    store = Store.open(settings.database)
    try:
        started = log.read_text()
        assert "schedule segment:win_back created" in started
        assert "schedule segment:vip_preview created" in started, started
        code, out = await _cli("sync", "--json", env=env)
        assert code == 0, out
        report = json.loads(out)
        schedules = {change["journey"]: change for change in report["schedules"]}
        assert schedules["win_back"]["action"] == "unchanged"
        assert schedules["vip_preview"]["action"] == "unchanged"
        assert "onboarding" not in schedules  # an event journey has no schedule
        by_journey = {j["journey"]: j for j in report["journeys"]}
        assert by_journey["win_back"]["change"] == "unchanged"  # the schedule's version
        assert by_journey["onboarding"]["change"] == "added"  # no run yet

        # At `at`, the schedule fires once: the demo VIPs (bruno, chen) of the five seeded
        # contacts enter, and each gets the email.
        client = await connect(settings)

        async def tick_done() -> TickProgress | None:
            tick = await latest_tick(client, "vip_preview")
            return tick if tick is not None and tick.done else None

        tick = await eventually(
            tick_done, "the broadcast tick to run and finish", timeout=AT_LEAD.seconds + 60
        )
        assert tick.tick_at == at
        # Every sample contact is scanned (the stack loads contacts/); the two VIPs enrol.
        samples = len(list((ROOT / "contacts").glob("*.yaml")))
        assert (tick.scanned, tick.matched, tick.enrolled) == (samples, 2, 2)

        def sent(contact: str) -> list[tuple[str | None, str]]:
            return [
                (m.template, m.status)
                for m in store.ledger.messages_for_contact(contact)
                if m.journey == "vip_preview"
            ]

        for vip in ("bruno", "chen"):
            await eventually(
                lambda vip=vip: sent(vip) == [("onboarding/welcome", "sent")],
                f"the broadcast email to {vip}",
                seen=lambda _, vip=vip: sent(vip),
            )
        everyone = ("alice", "bruno", "chen", "dana", "eli")

        def entered() -> list[str]:
            return [c for c in everyone if store.runs_for_contact(c, "vip_preview")]

        # A run that sends and ends records itself at its end, just after its email.
        await eventually(
            lambda: entered() == ["bruno", "chen"],
            "the VIPs' runs recorded",
            seen=lambda _: entered(),
        )
        assert [sent(other) for other in ("alice", "dana", "eli")] == [[], [], []]
    finally:
        store.close()
        assert await _interrupt(process) == 0, log.read_text()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
