"""The Temporal dev server SIGKILLed while runs are mid-send, and started again on its SQLite file
(as `rapport run` starts it): a `rapport worker` process rides it out, every run reaches its
outcome, and no message is sent twice — counted in the ledger and at the provider stand-in,
which the real SendGrid and Twilio SDKs call."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from runtime.stack import ChildProcess, dev_server_command, wait_for_temporal
from runtime.starter import start_run
from store import Store
from store.records import ContactRecord
from tests.provider_standin import ProviderStandIn
from tests.stack.helpers import RAPPORT, ROOT, clean_env, free_port, project_settings
from tests.waiting import eventually
from workflows.project import compile_project

TWO_SENDS = """\
name: Two sends
trigger: manual
data:
  offer_code: WELCOME10
steps:
  - id: welcome
    send: email
    template: onboarding/welcome
    category: transactional
  - id: offer
    send: sms
    template: onboarding/first_order_offer
    category: transactional
"""
CONTACTS = 12


@pytest.mark.timeout(180)
async def test_the_dev_server_killed_mid_send_and_restarted_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "two_sends.yaml").write_text(TWO_SENDS, encoding="utf-8")
    port, ui_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    settings = project_settings(
        data_dir=tmp_path / "data",
        journeys_dir=journeys,
        temporal_address=address,
        temporal_task_queue=queue,
    )
    (tmp_path / "temporal").mkdir()
    server = ChildProcess(
        "dev server",
        dev_server_command(tmp_path / "temporal", port, ui_port),
        tmp_path / "temporal.log",
    )
    store = Store.open(settings.database)
    people = [f"guest-{n:02d}" for n in range(CONTACTS)]
    store.upsert_contacts(
        [
            ContactRecord(id=p, email=f"{p}@example.com", phone=f"+1212555{n:04d}")
            for n, p in enumerate(people)
        ]
    )
    log = tmp_path / "worker.log"
    with ProviderStandIn() as standin:
        env = clean_env(
            TEMPORAL_ADDRESS=address,
            TEMPORAL_TASK_QUEUE=queue,
            RAPPORT_DATA_DIR=str(settings.data_dir),
            RAPPORT_JOURNEYS_DIR=str(journeys),
            **standin.env(),
        )
        worker: subprocess.Popen[bytes] | None = None
        try:
            server.start()
            client = await wait_for_temporal(settings, address, server, timeout=60)
            plan = compile_project(settings).plans["two_sends"]
            runs = [await start_run(client, store, plan, p, task_queue=queue) for p in people]
            assert all(run.started for run in runs), [run.reason for run in runs]
            # The worker comes up to runs waiting for it: the welcome emails reach the provider
            # about together and wait there, unanswered, while the server is killed: those
            # sends are mid-call (the others mid-run, or not yet handed to the worker).
            standin.hold()
            with log.open("ab") as out:
                worker = subprocess.Popen(
                    [str(RAPPORT), "worker"], cwd=ROOT, env=env, stdout=out, stderr=out
                )
            await eventually(
                lambda: standin.held,
                "a welcome email held at the provider",
                timeout=60,
                seen=lambda _: log.read_text()[-2000:],
            )
            assert server.process is not None
            server.process.kill()  # SIGKILL: the dev server alone, mid-send
            server.process.wait()
            held = standin.held
            standin.release()  # the provider accepts them; the worker can't tell Temporal

            def sent(step: str) -> list[str]:
                return sorted(
                    row.contact_id
                    for p in people
                    for row in store.ledger.messages_for_contact(p)
                    if row.step_id == step and row.status == "sent"
                )

            await eventually(
                lambda: len(sent("welcome")) >= held,
                "the held welcomes recorded while Temporal is down",
                seen=lambda _: (sent("welcome"), log.read_text()[-2000:]),
            )
            server.stop()
            server.start()  # the same SQLite file, the same port
            client = await wait_for_temporal(settings, address, server, timeout=60)
            results = await asyncio.wait_for(
                asyncio.gather(*(client.get_workflow_handle(r.workflow_id).result() for r in runs)),
                120,
            )

            assert {result["outcome"] for result in results} == {"completed"}
            assert sent("welcome") == sent("offer") == people
            for p in people:  # one row per send, nothing else
                assert len(store.ledger.messages_for_contact(p)) == 2
            emails = sorted(
                str(r.data["personalizations"][0]["to"][0]["email"]) for r in standin.emails
            )
            texts = sorted(str(r.data["To"]) for r in standin.sms)
            assert emails == [f"{p}@example.com" for p in people]  # each accepted once
            assert texts == [f"+1212555{n:04d}" for n in range(CONTACTS)]
            assert sorted(r.status for r in standin.requests) == [201] * CONTACTS + [202] * CONTACTS
            assert worker.poll() is None, log.read_text()  # the worker rode it out
        finally:
            standin.release()
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGINT)
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
            server.stop()
            store.close()
        standin.assert_valid()
