"""Real processes: a `rapport worker` killed mid-run, and `rapport run` end to end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from runtime.starter import start_run
from runtime.temporal import connect
from store import Store
from store.records import ContactRecord
from tests.dashboard.conftest import sign_in
from tests.stack.helpers import (
    RAPPORT,
    ROOT,
    clean_env,
    free_port,
    processes_mentioning,
    project_settings,
    scrape,
    start_stack,
)
from tests.waiting import eventually
from workflows.compiler import compile_journey
from workflows.contracts import EventPayload
from workflows.ids import workflow_id_for
from workflows.journey_workflow import JourneyWorkflow

DURABLE_JOURNEY = """\
name: Durability check
trigger: manual
steps:
  - id: first
    send: email
    template: onboarding/welcome
    category: transactional
  - id: hold
    wait_for: go
    timeout: 1h
  - id: second
    send: email
    template: onboarding/welcome
    category: transactional
"""


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(RAPPORT), "worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_killing_the_worker_mid_run_loses_and_duplicates_nothing(
    dev_server: str, tmp_path: Path
) -> None:
    journey = tmp_path / "durable.yaml"
    journey.write_text(DURABLE_JOURNEY, encoding="utf-8")
    plan, diagnostics = compile_journey(journey, ROOT / "templates")
    assert plan is not None, diagnostics
    queue = f"durable-{uuid.uuid4().hex[:8]}"
    settings = project_settings(
        data_dir=tmp_path, temporal_address=dev_server, temporal_task_queue=queue
    )
    store = Store.open(settings.database)
    store.upsert_contact(ContactRecord(id="dora", email="dora@example.com"))
    env = clean_env(
        TEMPORAL_ADDRESS=dev_server, TEMPORAL_TASK_QUEUE=queue, RAPPORT_DATA_DIR=str(tmp_path)
    )
    log = tmp_path / "worker.log"
    outbox = settings.outbox_dir

    def sent() -> list[str]:
        rows = store.ledger.messages_for_contact("dora")
        return sorted(row.step_id or "" for row in rows if row.status == "sent")

    workers = [_worker(env, log)]
    try:
        client = await connect(settings)
        result = await start_run(client, store, plan, "dora", task_queue=queue)
        assert result.started
        await eventually(lambda: sent() == ["first"], "the first send", seen=lambda _: sent())
        workers[0].kill()  # SIGKILL: no graceful shutdown, the run is mid-wait
        workers[0].wait()
        assert sent() == ["first"]
        workers.append(_worker(env, log))
        handle = client.get_workflow_handle_for(JourneyWorkflow.run, result.workflow_id)

        async def holding() -> bool:  # the new worker has the run, past `first`, at its wait
            return (await handle.query(JourneyWorkflow.status)).waiting_for == "go"

        await eventually(holding, "the new worker to resume the run at its wait", timeout=60)
        go = EventPayload(id=uuid.uuid4().hex, name="go", timestamp=datetime.now(UTC))
        await handle.signal(JourneyWorkflow.on_event, go)
        outcome = await asyncio.wait_for(handle.result(), 60)
        assert outcome.outcome == "completed"
        assert sent() == ["first", "second"]
        assert len(store.ledger.messages_for_contact("dora")) == 2
        assert len(list(outbox.glob("*.eml"))) == 2
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGINT)
        for worker in workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
        store.close()
    assert workers[-1].returncode == 0, log.read_text()


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(RAPPORT),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def _sign_up(api: str, contact: str) -> None:
    """`contact` identified with an email, then `signed_up` (onboarding starts), over HTTP."""
    async with httpx.AsyncClient(trust_env=False) as http:
        for path, body in (
            ("identify", {"userId": contact, "traits": {"email": f"{contact}@example.com"}}),
            ("track", {"userId": contact, "event": "signed_up", "messageId": f"{contact}-1"}),
        ):
            answer = await http.post(f"{api}/v1/{path}", json=body)
            assert answer.status_code == 200, answer.text


def _worker_processes(pid: int) -> list[int]:
    """`rapport run`'s `rapport worker` children."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            if (Path("/proc") / child / "cmdline").read_bytes().endswith(b"cli\0worker\0"):
                found.append(int(child))
    return found


async def _interrupt(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGINT)
    return await asyncio.wait_for(process.wait(), 30)


ONBOARDING_STARTED = ("rapport_journey_runs_started_total", (("journey", "onboarding"),))


@pytest.mark.timeout(120)
async def test_rapport_run_smoke(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = (free_port(), free_port(), free_port())
    log = tmp_path / "run.log"
    env = clean_env(TEMPORAL_ADDRESS=f"127.0.0.1:{ports[1]}", RAPPORT_DATA_DIR=str(data_dir))
    metrics_port = free_port()
    running: list[asyncio.subprocess.Process] = []
    try:
        began = time.monotonic()
        # One process (--workers 0): its worker runs every run, its metrics count them all and
        # the API's starts are eager. The restart below runs the default, a worker process.
        options = ("--metrics-port", str(metrics_port), "--workers", "0")
        process, urls = await start_stack(data_dir, *ports, log, options=options)
        running.append(process)
        print(f"\nrapport run ready in {time.monotonic() - began:.1f}s")
        assert urls["API"] == f"http://127.0.0.1:{ports[0]}"
        assert urls["Metrics"] == f"http://127.0.0.1:{metrics_port}/metrics"
        assert urls["Temporal UI"] == f"http://127.0.0.1:{ports[2]}"
        assert Path(urls["Outbox"]) == (data_dir / "outbox").resolve()
        async with httpx.AsyncClient(trust_env=False) as http:
            health = await http.get(f"{urls['API']}/healthz")
            # The dashboard is on, with the token `rapport run` generated and printed.
            assert urls["Dashboard"] == f"{urls['API']}/dashboard"
            await sign_in(http, urls["Dashboard"], urls["admin token"])
            journeys = await http.get(urls["Dashboard"])
        assert health.status_code == 200 and "onboarding" in health.json()["journeys"]
        assert journeys.status_code == 200
        assert '<tr data-journey="onboarding">' in journeys.text

        code, out = await _cli("start", "onboarding", "--contact", "alice", env=env)
        assert code == 0, out
        outbox = data_dir / "outbox"
        await eventually(lambda: len(list(outbox.glob("*.eml"))) == 1, "the welcome email")
        # The worker's Prometheus metrics (--metrics-port), ours and the Temporal SDK's.
        samples = await eventually(
            lambda: (found := scrape(urls["Metrics"])).get(ONBOARDING_STARTED) and found,
            "the run counted as started",
        )
        assert samples[("rapport_sends_total", (("channel", "email"), ("status", "sent")))] == 1
        assert samples[ONBOARDING_STARTED] == 1
        assert any(name.startswith("temporal_") for name, _ in samples)

        # The API's starts are eager: the server hands the run's first workflow task to the
        # stack's own worker in the start's answer. `rapport start`, another process with no
        # worker, starts alice's run the ordinary way.
        await _sign_up(urls["API"], "eager")
        await eventually(lambda: len(list(outbox.glob("*.eml"))) == 2, "eager's welcome email")
        temporal = await connect(project_settings(), f"127.0.0.1:{ports[1]}")
        eager = {}
        for contact in ("alice", "eager"):
            history = await temporal.get_workflow_handle(
                workflow_id_for("onboarding", contact)
            ).fetch_history()
            started = history.events[0].workflow_execution_started_event_attributes
            eager[contact] = started.eager_execution_accepted
        assert eager == {"alice": False, "eager": True}

        assert await _interrupt(process) == 0, log.read_text()
        await eventually(
            lambda: processes_mentioning(str(data_dir)) == [],
            "every process of the stack to exit",
            seen=lambda _: processes_mentioning(str(data_dir)),
        )

        process, urls = await start_stack(data_dir, *ports, log)
        running.append(process)
        [worker] = _worker_processes(process.pid)  # the default: one `rapport worker` beside
        code, out = await _cli("inspect", "alice", "--journey", "onboarding", "--json", env=env)
        assert code == 0, out
        [run] = json.loads(out)["runs"]
        assert (run["status"], run["execution"], run["step"]) == ("running", "running", "wait_2")
        assert len(list(outbox.glob("*.eml"))) == 2  # resumed, not re-sent

        # With a worker process the API's starts go through the server's matching (not eager),
        # and the run is sent once, whichever worker takes it.
        await _sign_up(urls["API"], "shared")
        await eventually(lambda: len(list(outbox.glob("*.eml"))) == 3, "shared's welcome email")
        history = await temporal.get_workflow_handle(
            workflow_id_for("onboarding", "shared")
        ).fetch_history()
        assert not history.events[
            0
        ].workflow_execution_started_event_attributes.eager_execution_accepted
        assert await _interrupt(process) == 0, log.read_text()
        await eventually(lambda: not Path(f"/proc/{worker}").exists(), "the worker process to exit")
        await eventually(
            lambda: processes_mentioning(str(data_dir)) == [],
            "every process of the stack to exit",
            seen=lambda _: processes_mentioning(str(data_dir)),
        )
    finally:
        for process in running:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
