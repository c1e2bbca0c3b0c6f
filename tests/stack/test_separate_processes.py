"""A deployment as the README describes it: `rapport api` and two `rapport worker` processes on
one Temporal server (the session's dev server) and one PostgreSQL database. Events go in over
HTTP; journeys start, send and wake on an email open and a click reported by SendGrid's signed
Event Webhook; the two workers share the work."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL
from temporalio.client import Client

from runtime.temporal import connect
from store import Store
from tests.compliance.helpers import SendGridSigner, sendgrid_body, sendgrid_event
from tests.stack.helpers import (
    clean_env,
    free_port,
    project_settings,
    spawn_rapport,
    stop_processes,
)
from tests.waiting import eventually
from workflows.ids import workflow_id_for

WRITE_KEY = "processes-write-key"
ENGAGED = """\
name: Engaged
trigger:
  event: joined
steps:
  - id: hello
    send: email
    template: onboarding/welcome
    category: transactional
  - id: await_open
    wait_for: email_opened
    timeout: 1h
    on_timeout: done
  - id: opened
    send: email
    template: onboarding/welcome
    category: transactional
  - id: await_click
    wait_for: email_clicked
    timeout: 1h
    on_timeout: done
  - id: clicked
    send: email
    template: onboarding/welcome
    category: transactional
  - id: done
    exit: completed
"""
CONTACTS = 8


@pytest.mark.timeout(240)
async def test_api_and_two_workers_on_postgresql_run_journeys_woken_by_opens_and_clicks(
    dev_server: str, tmp_path: Path, postgres_url: URL
) -> None:
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "engaged.yaml").write_text(ENGAGED, encoding="utf-8")
    signer = SendGridSigner()
    database = postgres_url.render_as_string(hide_password=False)
    queue = f"processes-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = clean_env(
        TEMPORAL_ADDRESS=dev_server,
        TEMPORAL_TASK_QUEUE=queue,
        RAPPORT_DATABASE_URL=database,
        RAPPORT_DATA_DIR=str(tmp_path / "data"),
        RAPPORT_JOURNEYS_DIR=str(journeys),
        RAPPORT_WRITE_KEYS=WRITE_KEY,
        SENDGRID_WEBHOOK_PUBLIC_KEY=signer.public_key,
    )
    log = tmp_path / "processes.log"
    store = Store.open(database)  # migrates the new database, as the processes would
    worker_logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    processes = [
        spawn_rapport(["api", "--port", str(port)], env, log),
        *(spawn_rapport(["worker"], env, worker_log) for worker_log in worker_logs),
    ]
    settings = project_settings(temporal_address=dev_server, temporal_task_queue=queue)
    client = await connect(settings)
    users = [f"eng-{n}-{uuid.uuid4().hex[:6]}" for n in range(CONTACTS)]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", auth=(WRITE_KEY, ""), timeout=30, trust_env=False
        ) as api:

            async def healthy() -> bool:
                try:
                    return (await api.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    assert processes[0].poll() is None, log.read_text()
                    return False

            await eventually(healthy, "rapport api to answer /healthz", timeout=60)
            for worker_log in worker_logs:  # both workers polling before the work arrives
                await eventually(
                    lambda worker_log=worker_log: (
                        "worker polling task queue" in worker_log.read_text()
                    ),
                    f"the worker of {worker_log.name} to poll",
                    timeout=60,
                )
            batch = [
                message
                for user in users
                for message in (
                    {"type": "identify", "userId": user, "traits": {"email": f"{user}@ex.com"}},
                    {"type": "track", "userId": user, "event": "joined"},
                )
            ]
            response = await api.post("/v1/batch", json={"batch": batch})
            assert response.json() == {"success": True}, response.text

            def steps_sent(user: str) -> list[str]:
                rows = store.ledger.messages_for_contact(user)
                return sorted(row.step_id or "" for row in rows if row.status == "sent")

            for user in users:
                await eventually(
                    lambda user=user: steps_sent(user) == ["hello"],
                    f"the hello email to {user}",
                    timeout=60,
                    seen=lambda _, user=user: (steps_sent(user), log.read_text()[-2000:]),
                )

            # Two pollers on one queue share the starts; should one worker have taken them
            # all, it stops (gracefully) and the other must take over the runs from here.
            pids = {str(process.pid): process for process in processes[1:]}
            if len(busy := await worker_pids(client, users)) == 1:
                [only] = busy
                pids[only].send_signal(signal.SIGINT)
                assert pids[only].wait(20) == 0

            # SendGrid reports that users[0] opened the email, then clicked in it.
            [hello] = store.ledger.messages_for_contact(users[0])
            custom_args = {"rapport_message": hello.idempotency_key, "rapport_journey": "engaged"}
            reports = [("open", "opened", {}), ("click", "clicked", {"url": "https://x.example/"})]
            for kind, step, more in reports:
                event = sendgrid_event(kind, f"{users[0]}@ex.com", **custom_args, **more)
                body = sendgrid_body(event)
                response = await api.post(
                    "/webhooks/sendgrid", content=body, headers=signer.headers(body)
                )
                assert response.status_code == 200, response.text
                await eventually(
                    lambda step=step: step in steps_sent(users[0]),
                    f"the {step!r} email after the {kind}",
                    seen=lambda _: [
                        (row.step_id, row.status)
                        for row in store.ledger.messages_for_contact(users[0])
                    ],
                )
            first = client.get_workflow_handle(workflow_id_for("engaged", users[0]))
            assert (await first.result())["outcome"] == "completed"
            ledger = store.ledger.messages_for_contact(users[0])
            assert sorted((row.step_id, row.status) for row in ledger) == [
                ("clicked", "sent"),
                ("hello", "clicked"),  # the furthest a message got
                ("opened", "sent"),
            ]
            # A forged report changes nothing.
            body = sendgrid_body(sendgrid_event("open", f"{users[1]}@ex.com", rapport_message="x"))
            forged = await api.post(
                "/webhooks/sendgrid", content=body, headers=SendGridSigner().headers(body)
            )
            assert forged.status_code == 403
            assert [steps_sent(user) for user in users[1:]] == [["hello"]] * (CONTACTS - 1)

        # Both workers ran workflow and activity tasks.
        assert await worker_pids(client, users) == set(pids)
        for user in users[1:]:
            await client.get_workflow_handle(workflow_id_for("engaged", user)).terminate("done")
    finally:
        codes = list(stop_processes(processes))
        store.close()
    assert codes == [0, 0, 0], "\n".join(path.read_text() for path in [log, *worker_logs])


async def worker_pids(client: Client, users: list[str]) -> set[str]:
    """The processes (pid of `pid@host`) that ran tasks of the users' runs."""
    identities: set[str] = set()
    for user in users:
        handle = client.get_workflow_handle(workflow_id_for("engaged", user))
        async for event in handle.fetch_history_events():
            for attributes in (
                event.activity_task_started_event_attributes,
                event.workflow_task_started_event_attributes,
            ):
                if attributes.identity:
                    identities.add(attributes.identity.split("@")[0])
    return identities
