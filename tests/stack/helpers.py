"""Helpers of the stack tests: ports, subprocess environments, settings, the shared stack."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from activities.journey_activities import JourneyActivities
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from runtime.temporal import venv_binary
from runtime.trait_activities import TraitActivities
from runtime.workers import build_worker
from settings import Settings
from store import Store
from store.records import ContactRecord, LedgerEntry, RunRecord
from tests.waiting import WaitTimeout, eventually
from workflows.contact_file import load_contact_file
from workflows.plan import JourneyPlan
from workflows.project import compile_project

ROOT = Path(__file__).resolve().parents[2]
RAPPORT = venv_binary("rapport")
SECOND_NAMESPACE = "rapport-second"


def daytime_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about noon at `now`: a contact in it is clear of every
    quiet-hours window (SMS marketing waits out 21:00-08:00 in the contact's zone, so a test
    on the real clock that sends one must not depend on the hour it runs at)."""
    offset = 12 - now.astimezone(UTC).hour
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX signs are inverted


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """A Prometheus page as {(name, sorted labels): value}."""
    text = httpx.get(url, timeout=10, trust_env=False).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: no provider credentials, keys or Temporal address from
    the developer's shell, no proxy for loopback, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RAPPORT_", "TEMPORAL_", "SENDGRID_", "TWILIO_"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def spawn_rapport(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`rapport ARGS` in the background, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(RAPPORT), *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> Iterator[int]:
    """Ctrl-C to each process still running, then each one's exit code (killed after 20 s)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            yield process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            yield process.wait()


def project_settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "journeys_dir": ROOT / "journeys",
        "templates_dir": ROOT / "templates",
        "contacts_dir": ROOT / "contacts",
        "temporal_address": None,
        "database_url": None,
        "write_keys": "",
        "sendgrid_api_key": None,
        "twilio_account_sid": None,
        "twilio_auth_token": None,
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


@dataclass
class Stack:
    settings: Settings
    client: Client
    store: Store
    outbox: Path
    plans: dict[str, JourneyPlan]

    @property
    def task_queue(self) -> str:
        return self.settings.temporal_task_queue

    def contact(self, like: str = "alice", **changes: Any) -> str:
        """A fresh contact with the profile of `contacts/<like>.yaml` under a unique id, email
        address and phone number (the session shares one store: another test's erasure or STOP
        suppresses the demo contact's own address)."""
        profile = load_contact_file(ROOT / "contacts" / f"{like}.yaml").profile()
        unique = uuid.uuid4()
        profile["id"] = f"{like}-{unique.hex[:8]}"
        if profile.get("email"):
            profile["email"] = f"{profile['id']}@{str(profile['email']).split('@')[1]}"
        if profile.get("phone"):
            profile["phone"] = f"+1646{unique.int % 10**7:07d}"
        profile.update(changes)
        self.store.upsert_contact(ContactRecord(**profile))
        return str(profile["id"])

    async def sent(
        self, contact_id: str, count: int = 1, timeout: float = 20.0
    ) -> list[LedgerEntry]:
        """Wait until the contact has `count` sent messages and return them (oldest first);
        `WaitTimeout` with the contact's ledger when they do not come."""

        def rows() -> list[LedgerEntry]:
            messages = self.store.ledger.messages_for_contact(contact_id)
            return sorted((r for r in messages if r.status == "sent"), key=lambda row: row.id)

        await eventually(
            lambda: len(rows()) >= count,
            f"{count} sent message(s) to {contact_id}",
            timeout=timeout,
            interval=0.01,
            seen=lambda _: self.ledger(contact_id),
        )
        return rows()

    async def recorded(
        self, contact_id: str, count: int = 1, timeout: float = 20.0
    ) -> list[RunRecord]:
        """Wait until the store has `count` runs of the contact and return them: a run records
        its entry with its first wait (or its end), just after a first send, not before it."""
        await eventually(
            lambda: len(self.store.runs_for_contact(contact_id)) >= count,
            f"{count} run(s) of {contact_id} recorded in the store",
            timeout=timeout,
            interval=0.01,
        )
        return self.store.runs_for_contact(contact_id)

    def ledger(self, contact_id: str) -> list[tuple[str, str, str | None]]:
        """The contact's messages as (template, status, reason), oldest first."""
        return [
            (row.template, row.status, row.reason or row.error)
            for row in sorted(
                self.store.ledger.messages_for_contact(contact_id), key=lambda row: row.id
            )
        ]


async def closed_status(
    client: Client, workflow_id: str, timeout: float = 20.0
) -> WorkflowExecutionStatus:
    """Wait for the workflow to close (however it ends) and return how it closed; `WaitTimeout`
    when it is still running after `timeout` seconds."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        await asyncio.wait_for(handle.result(), timeout)
    except TimeoutError:
        status = (await handle.describe()).status
        raise WaitTimeout(
            f"timed out after {timeout:g} s waiting for {workflow_id} to close; it is {status}"
        ) from None
    except WorkflowFailureError:
        pass  # cancelled, terminated, failed or timed out: the status says which
    status = (await handle.describe()).status
    assert status is not None
    return status


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain `text` (Linux /proc)."""
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except (OSError, IndexError):
            continue
        if state == "Z":
            continue  # a zombie already exited; it only waits to be reaped
        cmdline = raw.replace(b"\0", b" ").decode(errors="replace")
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


@contextmanager
def dev_server_process(port: int, db_file: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`temporal server start-dev` on 127.0.0.1:`port`, in memory or keeping its state in
    `db_file` (so it can be stopped and started again), stopped on exit."""
    storage = ["--db-filename", str(db_file)] if db_file is not None else []
    process = subprocess.Popen(
        [
            str(venv_binary("temporal")),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            *storage,
            "--namespace",  # besides `default`, for the tests of a non-default namespace
            SECOND_NAMESPACE,
            "--log-level",
            "error",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def start_stack(
    data_dir: Path,
    api: int,
    temporal: int,
    ui: int,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    new_session: bool = False,
    options: tuple[str, ...] = (),
) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    """`rapport run` on these ports and data dir (stderr to `log`), with more `options`, once
    it printed its URLs; `new_session`: in a process group of its own (to kill it whole)."""
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            str(RAPPORT),
            "run",
            "--api-port",
            str(api),
            "--temporal-port",
            str(temporal),
            "--ui-port",
            str(ui),
            "--data-dir",
            str(data_dir),
            *options,
            cwd=ROOT,
            env=env if env is not None else clean_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            start_new_session=new_session,
        )
    urls: dict[str, str] = {}
    assert process.stdout is not None
    while True:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
        except TimeoutError:
            process.kill()
            raise AssertionError(f"rapport run printed no URLs; log:\n{log.read_text()}") from None
        if not line:
            raise AssertionError(f"rapport run exited early; log:\n{log.read_text()}")
        text = line.decode()
        found = re.match(r"\s*(API|Temporal UI|Outbox|Dashboard|Metrics):\s+(\S+)", text)
        if found:
            urls[found[1]] = found[2]
        token = re.search(r"sign in with the token (\S+), generated for this run", text)
        if token:
            urls["admin token"] = token[1]
        if text.startswith("Try:"):
            return process, urls


@asynccontextmanager
async def worker_stack(settings: Settings, client: Client) -> AsyncIterator[Stack]:
    """The project's journeys, a worker in this process on the settings' task queue (with the
    traits schedule's activity), the SQLite store and the outbox of the settings' data dir."""
    store = Store.open(settings.database)
    activities = JourneyActivities(
        store=store,
        email=OutboxEmailProvider(settings.outbox_dir),
        sms=OutboxSmsProvider(settings.outbox_dir),
        settings=settings,
    )
    plans = compile_project(settings).plans
    traits = TraitActivities(store, client, settings)  # the nightly traits:rfm schedule's
    try:
        async with build_worker(
            client, activities, settings.temporal_task_queue, more_activities=traits.all()
        ):
            yield Stack(settings, client, store, settings.outbox_dir, plans)
    finally:
        store.close()
