"""The whole embedded stack SIGKILLed mid-broadcast and started again on the same data dir:
every contact gets its message exactly once, and the sends that were in flight go out soon after
the restart (they heartbeat, so Temporal notices the dead worker within seconds instead of
waiting out their start-to-close timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest

from store import Store
from store.records import ContactRecord
from tests.stack.helpers import (
    ROOT,
    clean_env,
    free_port,
    processes_mentioning,
    project_settings,
    start_stack,
)

CONTACTS = 150
# The runs start first, then all send at the same instant: the kill lands in that burst.
BROADCAST = """\
name: Broadcast
trigger:
  event: broadcast_invite
steps:
  - wait_until: "{{ trigger.properties.send_at }}"
  - id: invite
    send: email
    template: onboarding/welcome
    category: transactional
"""
# Generous, to stay clear of a loaded machine; the stall this guards against was ~116 s.
ALL_SENT_WITHIN = 90.0


def kill_stack(process: asyncio.subprocess.Process, data_dir: Path) -> None:
    """SIGKILL `rapport run`'s process group, then whatever of the stack outlives it (the dev
    server runs in a session of its own)."""
    os.killpg(process.pid, signal.SIGKILL)
    for line in processes_mentioning(str(data_dir)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)


async def until(check: object, timeout: float, what: str) -> float:
    """Poll `check` until true; the seconds it took. Fails after `timeout`."""
    began = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


@pytest.mark.timeout(300)
async def test_a_stack_killed_mid_broadcast_sends_every_message_once_soon_after_restart(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "broadcast.yaml").write_text(BROADCAST)
    (tmp_path / "contacts").mkdir()
    settings = project_settings(data_dir=data_dir)
    data_dir.mkdir()
    store = Store.open(settings.database)
    contacts = [f"guest-{n:03d}" for n in range(CONTACTS)]
    store.upsert_contacts(
        [ContactRecord(id=c, email=f"{c}@example.com", timezone="UTC") for c in contacts]
    )

    def sent() -> int:
        return sum(
            1
            for c in contacts
            for row in store.ledger.messages_for_contact(c)
            if row.status == "sent"
        )

    ports = (free_port(), free_port(), free_port())
    log = tmp_path / "run.log"
    env = clean_env(
        RAPPORT_JOURNEYS_DIR=str(tmp_path / "journeys"),
        RAPPORT_TEMPLATES_DIR=str(ROOT / "templates"),
        RAPPORT_CONTACTS_DIR=str(tmp_path / "contacts"),
    )
    running: list[asyncio.subprocess.Process] = []
    try:
        process, urls = await start_stack(data_dir, *ports, log, env=env, new_session=True)
        running.append(process)
        send_at = (datetime.now(UTC) + timedelta(seconds=15)).isoformat()
        async with httpx.AsyncClient(trust_env=False, timeout=60) as http:
            lanes = asyncio.Semaphore(8)

            async def start(contact: str) -> int:
                async with lanes:
                    answer = await http.post(
                        f"{urls['API']}/v1/track",
                        json={
                            "userId": contact,
                            "event": "broadcast_invite",
                            "messageId": f"invite-{contact}",
                            "properties": {"send_at": send_at},
                        },
                    )
                    return answer.status_code

            assert set(await asyncio.gather(*map(start, contacts))) == {200}

        await until(lambda: sent() >= CONTACTS // 5, 60, "the broadcast to be under way")
        kill_stack(process, data_dir)
        await process.wait()
        at_kill = sent()
        assert at_kill < CONTACTS, "the broadcast was over before the kill"
        await until(lambda: not processes_mentioning(str(data_dir)), 30, "the stack to be gone")

        restarted = time.monotonic()
        process, _ = await start_stack(data_dir, *ports, log, env=env, new_session=True)
        running.append(process)
        ready = time.monotonic() - restarted
        await until(lambda: sent() == CONTACTS, ALL_SENT_WITHIN, "every message after restart")
        took = time.monotonic() - restarted
        print(
            f"\n{at_kill}/{CONTACTS} sent at the kill; restart ready in {ready:.1f}s; "
            f"all sent {took:.1f}s after the restart"
        )

        rows = [row for c in contacts for row in store.ledger.messages_for_contact(c)]
        assert sorted(row.contact_id for row in rows) == contacts  # one message per contact
        assert {row.status for row in rows} == {"sent"}
        recipients = sorted(
            str(BytesParser(policy=policy.default).parsebytes(path.read_bytes())["To"])
            for path in (data_dir / "outbox").glob("*.eml")
        )
        assert recipients == [f"{c}@example.com" for c in contacts]  # each written once
    finally:
        for process in running:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    kill_stack(process, data_dir)
                    await process.wait()
        store.close()
