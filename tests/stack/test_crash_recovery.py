"""The whole embedded stack SIGKILLed mid-broadcast and started again on the same data dir:
every contact gets its message exactly once, and the sends that were in flight go out after the
restart (they heartbeat, so Temporal notices the dead worker within seconds instead of waiting
out their start-to-close timeout). How soon is measured by `bench/crash_restart.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack.crash import crash_mid_broadcast

CONTACTS = 150


@pytest.mark.timeout(300)
async def test_a_stack_killed_mid_broadcast_sends_every_message_once_after_restart(
    tmp_path: Path,
) -> None:
    # The wait is generous, to stay clear of a loaded machine; the stall this guards against
    # (sends waiting out a 2-minute timeout) took ~116 s.
    crash = await crash_mid_broadcast(tmp_path, CONTACTS, all_sent_within=90.0)
    print(f"\n{crash.line()}")
    assert sorted(row.contact_id for row in crash.rows) == crash.contacts  # one message each
    assert {row.status for row in crash.rows} == {"sent"}
    assert crash.recipients == [f"{c}@example.com" for c in crash.contacts]  # each written once
