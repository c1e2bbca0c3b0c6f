"""The whole embedded stack SIGKILLed mid-broadcast and started again on the same data dir.

One scenario, two users: `tests/stack/test_crash_recovery.py` asserts that every contact gets
its message exactly once; `bench/crash_restart.py` reports how long after the restart the last
message went out (issue 8's 30 s target), which a test must not assert on a shared machine.

`rapport run` (dev server on its SQLite file, worker and API in one process group) starts one
run per contact over `POST /v1/track`; the runs wait until a common instant, then all send at
once; once a fifth of the messages are out the process group and the dev server are SIGKILLed,
and `rapport run` is started again on the same data dir and ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
from sqlalchemy import text

from store import Store
from store.records import ContactRecord, LedgerEntry
from tests.stack.helpers import (
    ROOT,
    clean_env,
    free_port,
    processes_mentioning,
    project_settings,
    start_stack,
)

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


COUNT_SENT = text("SELECT count(*) FROM messages WHERE status = 'sent'")


@dataclass
class CrashRestart:
    """What a crash and restart left: timings (seconds) and the messages as recorded."""

    contacts: list[str]
    sent_at_kill: int
    ready_after: float  # restart → `rapport run` printed its URLs
    first_sent_after: float  # restart → the first message sent after it
    all_sent_after: float  # restart → the last message `sent` in the ledger
    rows: list[LedgerEntry]  # every ledger row of the contacts
    recipients: list[str]  # the `To:` of every outbox file, sorted

    def line(self) -> str:
        return (
            f"{self.sent_at_kill}/{len(self.contacts)} sent at the kill; restart ready in "
            f"{self.ready_after:.1f}s; first send {self.first_sent_after:.1f}s and all sent "
            f"{self.all_sent_after:.1f}s after the restart"
        )


def kill_stack(process: asyncio.subprocess.Process, data_dir: Path) -> None:
    """SIGKILL `rapport run`'s process group, then whatever of the stack outlives it (the dev
    server runs in a session of its own)."""
    os.killpg(process.pid, signal.SIGKILL)
    for line in processes_mentioning(str(data_dir)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)


async def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check` until true; the seconds it took. Fails after `timeout`."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def crash_mid_broadcast(
    tmp_path: Path, contacts: int = 150, *, send_in: float = 15.0, all_sent_within: float = 90.0
) -> CrashRestart:
    """The scenario above in `tmp_path`; the runs send `send_in` seconds after the first start
    (time enough to start them all). Leaves no process behind."""
    data_dir = tmp_path / "data"
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "broadcast.yaml").write_text(BROADCAST)
    (tmp_path / "contacts").mkdir()
    settings = project_settings(data_dir=data_dir)
    data_dir.mkdir()
    store = Store.open(settings.database)
    guests = [f"guest-{n:04d}" for n in range(contacts)]
    store.upsert_contacts(
        [ContactRecord(id=c, email=f"{c}@example.com", timezone="UTC") for c in guests]
    )

    def sent() -> int:
        return sum(
            1
            for c in guests
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
        send_at = (datetime.now(UTC) + timedelta(seconds=send_in)).isoformat()
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

            assert set(await asyncio.gather(*map(start, guests))) == {200}

        await until(lambda: sent() >= contacts // 5, 60 + send_in, "the broadcast to be under way")
        kill_stack(process, data_dir)
        await process.wait()
        at_kill = sent()
        assert at_kill < contacts, "the broadcast was over before the kill"
        await until(lambda: not processes_mentioning(str(data_dir)), 30, "the stack to be gone")

        restarted, restarted_at = time.monotonic(), datetime.now(UTC)
        process, _ = await start_stack(data_dir, *ports, log, env=env, new_session=True)
        running.append(process)
        ready = time.monotonic() - restarted
        await until(lambda: sent() == contacts, all_sent_within, "every message after restart")
        took = time.monotonic() - restarted
        rows = [row for c in guests for row in store.ledger.messages_for_contact(c)]
        resumed = min(row.updated_at for row in rows if row.updated_at > restarted_at)
        first = (resumed - restarted_at).total_seconds()
        recipients = sorted(
            str(BytesParser(policy=policy.default).parsebytes(path.read_bytes())["To"])
            for path in (data_dir / "outbox").glob("*.eml")
        )
        return CrashRestart(guests, at_kill, ready, first, took, rows, recipients)
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
