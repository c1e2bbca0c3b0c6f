"""Benchmark: start → first send of a journey run, against the raw Temporal yardstick (SPEC §2).

Method. A Temporal dev server is started on free ports with a temporary data dir, with the
command `rapport run` uses (`runtime.stack.dev_server_command`, UI included) adapted to `--mode`:

    wal      --db-filename <tmp>/temporal.db --sqlite-pragma journal_mode=wal
             --sqlite-pragma synchronous=normal          (what `rapport run` uses; the default)
    default  --db-filename <tmp>/temporal.db             (no pragmas: SQLite defaults)
    memory   no --db-filename                            (the dev server's in-memory SQLite)

and the script waits until it answers (`runtime.stack.wait_for_temporal`, whose client comes from
`runtime.temporal.connect`). Then, in this process as in the embedded stack: a temporary SQLite
store, the activities from `build_activities` (no provider credentials, so the outbox providers)
and a worker from `build_worker`; N + W contacts are seeded (alice's profile under fresh ids).
One addition: the client carries an interceptor that notes, with `time.perf_counter()`, when each
activity starts (first attempt, by workflow id and activity type); a client interceptor that is
also a worker interceptor is used by every worker built from that client. Client, worker and
activities share this process and its clock. Two phases run one after the other, each with only
its own worker polling:

(a) raw — the SPEC's yardstick: a hand-written workflow defined here (activity → 1 s sleep →
    activity, the activities doing nothing) on its own task queue, with the engine worker's
    sandboxed runner and options. Timed from just before `client.start_workflow` to the start of
    its first activity. Completed runs/s = N / (first measured start → the last measured run's
    close time, read afterwards from the server; both on this machine's wall clock): it includes
    the last runs' 1 s sleep.
(b) engine — `runtime.starter.start_run` of the real `onboarding` journey (journeys/onboarding.yaml;
    its first step is the transactional welcome email, so holdout, quiet hours and the frequency
    cap do not hold it). Timed from just before `start_run` (which reads the store — paused flag,
    contact, earlier runs — then starts the workflow) to the commit of the welcome email's ledger
    row as `sent` (this store's `ledger.mark_sent`, wrapped on the instance, takes the time when
    it returns). On the way: `start_run` returned, the first activity started (`open_run`,
    comparable to (a)), `send_email` started (after `record_run_started`), the wrapped outbox
    provider accepted the email (rendered, policy-checked, `.eml` written and fsynced).

Load, in both phases: `--concurrency` C lanes, each starting a run, waiting for that run's mark
(first activity / ledger row sent), then starting the next: at most C runs between start and mark.
Runs/s = N / (first measured start → last mark), the start rate sustained to the mark. Runs past
their mark stay on the server: the raw ones sleep 1 s and run their second activity while later
runs are measured; the onboarding ones wait 2 days. Each phase first does W warm-up runs (default
2·C, at least 10) through the same lanes, excluded from every figure. p50/p99 are over the N
measured runs (`statistics.quantiles`, inclusive method).

Run: `.venv/bin/python bench/start_latency.py [--runs 200] [--concurrency 8] [--mode wal]`.
Not a test: the figures depend on the machine. Network: 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

# The sandbox runs this file again (as `__temporal_main__`) to load the raw workflow: there, the
# path set-up is skipped and the project's modules come from the host, as in the engine's worker.
if not workflow.unsafe.in_sandbox():
    ROOT = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(ROOT))

with workflow.unsafe.imports_passed_through():
    from temporalio import client as temporal_client
    from temporalio import worker as temporal_worker
    from temporalio.client import Client
    from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Worker

    from providers.messages import OutgoingEmail, SendResult
    from runtime.stack import ChildProcess, dev_server_command, wait_for_temporal
    from runtime.starter import start_run
    from runtime.temporal import venv_binary
    from runtime.workers import build_activities, build_worker, workflow_runner
    from settings import Settings
    from store import Store
    from store.records import ContactRecord
    from workflows.project import compile_project

HOST = "127.0.0.1"
JOURNEY = "onboarding"
MODES = ("wal", "default", "memory")

# --- the raw yardstick workflow -------------------------------------------------------------


@activity.defn(name="bench_raw_step")
async def raw_step(which: str) -> None:
    """Does nothing: the yardstick measures Temporal's own path to an activity."""


@workflow.defn(name="BenchRawWorkflow")
class RawWorkflow:
    @workflow.run
    async def run(self) -> None:
        timeout = timedelta(seconds=30)
        await workflow.execute_activity(raw_step, "first", start_to_close_timeout=timeout)
        await asyncio.sleep(1)
        await workflow.execute_activity(raw_step, "second", start_to_close_timeout=timeout)


# --- the dev server ---------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_command(mode: str, data_dir: Path, port: int, ui_port: int) -> list[str]:
    """`rapport run`'s command, minus the pragmas (`default`) or the db file too (`memory`)."""
    argv = dev_server_command(data_dir, port, ui_port)
    drop: set[str] = set()
    if mode in ("default", "memory"):
        drop.add("--sqlite-pragma")
    if mode == "memory":
        drop.add("--db-filename")
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in drop:
            skip = True
            continue
        out.append(arg)
    return out


def temporal_version() -> str:
    try:
        result = subprocess.run(
            [str(venv_binary("temporal")), "--version"], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip() or result.stderr.strip()
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --- measuring --------------------------------------------------------------------------------


class ActivityStarts(temporal_client.Interceptor, temporal_worker.Interceptor):
    """Notes when each activity starts (`perf_counter`, first attempt) by workflow id and type.

    Put on the client, so every worker built from it (`build_worker` included) uses it."""

    def __init__(self) -> None:
        self.starts: dict[str, dict[str, float]] = {}
        self.waiters: dict[tuple[str, str], asyncio.Future[float]] = {}

    def expect(self, workflow_id: str, activity_type: str) -> asyncio.Future[float]:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[(workflow_id, activity_type)] = waiter
        return waiter

    def note(self, workflow_id: str, activity_type: str) -> None:
        now = time.perf_counter()
        self.starts.setdefault(workflow_id, {}).setdefault(activity_type, now)
        waiter = self.waiters.pop((workflow_id, activity_type), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _NoteStart(next, self)


class _NoteStart(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, starts: ActivityStarts) -> None:
        super().__init__(next)
        self._starts = starts

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.workflow_id is not None:
            self._starts.note(info.workflow_id, info.activity_type)
        return await super().execute_activity(input)


class TimedEmail:
    """The outbox provider, noting when it accepted each email (by recipient = contact)."""

    def __init__(self, inner: Any, accepted: dict[str, float]) -> None:
        self.inner = inner
        self.name = inner.name
        self.accepted = accepted

    async def send(self, email: OutgoingEmail) -> SendResult:
        result = await self.inner.send(email)
        self.accepted.setdefault(email.to.partition("@")[0], time.perf_counter())
        return result


@dataclass
class Phase:
    """Per-run intervals (seconds from the start call) of the measured runs, by label; `mark`
    is the label the lanes wait for."""

    mark: str
    series: dict[str, list[float]] = field(default_factory=dict)
    first_start: float = 0.0
    last_mark: float = 0.0
    completed_per_s: float | None = None

    def add(self, started: float, moments: dict[str, float]) -> None:
        if not self.first_start:
            self.first_start = started
        for label, moment in moments.items():
            self.series.setdefault(label, []).append(moment - started)
        self.last_mark = max(self.last_mark, moments[self.mark])

    @property
    def per_s(self) -> float:
        return len(self.series[self.mark]) / (self.last_mark - self.first_start)


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


async def lanes(items: list[str], concurrency: int, one: Callable[[str], Awaitable[None]]) -> None:
    """`concurrency` lanes, each taking the next item and awaiting `one(item)`."""
    queue = list(reversed(items))

    async def lane() -> None:
        while queue:
            await one(queue.pop())

    await asyncio.gather(*(lane() for _ in range(concurrency)))


async def raw_phase(
    client: Client, starts: ActivityStarts, runs: int, warmup: int, concurrency: int
) -> Phase:
    phase = Phase(mark="first activity started")
    task_queue = "rapport-bench-raw"
    prefix = f"bench-raw-{uuid.uuid4().hex[:6]}"
    wall_start: list[float] = []

    async def one(workflow_id: str, record: bool) -> None:
        waiter = starts.expect(workflow_id, "bench_raw_step")
        if record and not wall_start:
            wall_start.append(time.time())
        started = time.perf_counter()
        await client.start_workflow(RawWorkflow.run, id=workflow_id, task_queue=task_queue)
        returned = time.perf_counter()
        first = await asyncio.wait_for(waiter, 60)
        if record:
            phase.add(
                started, {"start_workflow returned": returned, "first activity started": first}
            )

    ids = [f"{prefix}-{n}" for n in range(runs)]
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[RawWorkflow],
        activities=[raw_step],
        workflow_runner=workflow_runner(),  # the engine worker's sandbox and options
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        max_concurrent_activities=64,
    ):
        await lanes(
            [f"{prefix}-warm-{n}" for n in range(warmup)], concurrency, lambda w: one(w, False)
        )
        await lanes(ids, concurrency, lambda w: one(w, True))
        # Completion: wait for every measured run, then read its close time from the server.
        for workflow_id in ids:
            await client.get_workflow_handle(workflow_id).result()
    closes = []
    for workflow_id in ids:
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.close_time is not None
        closes.append(description.close_time.timestamp())
    phase.completed_per_s = runs / (max(closes) - wall_start[0])
    return phase


async def engine_phase(
    client: Client,
    starts: ActivityStarts,
    store: Store,
    settings: Settings,
    contacts: list[str],
    warmup: int,
    concurrency: int,
) -> Phase:
    phase = Phase(mark="welcome ledger row sent")
    loop = asyncio.get_running_loop()
    plan = compile_project(settings).plans[JOURNEY]
    activities = build_activities(settings, store)
    accepted: dict[str, float] = {}
    activities.email = TimedEmail(activities.email, accepted)
    sent: dict[str, asyncio.Future[float]] = {}
    mark_sent = store.ledger.mark_sent

    def timed_mark_sent(*args: Any, **kwargs: Any) -> Any:
        entry = mark_sent(*args, **kwargs)  # committed when this returns
        now = time.perf_counter()
        waiter = sent.get(entry.contact_id)
        if waiter is not None and entry.step_id == "welcome":
            loop.call_soon_threadsafe(_resolve, waiter, now)
        return entry

    store.ledger.mark_sent = timed_mark_sent  # type: ignore[method-assign]

    async def one(contact_id: str, record: bool) -> None:
        sent[contact_id] = loop.create_future()
        started = time.perf_counter()
        result = await start_run(
            client, store, plan, contact_id, task_queue=settings.temporal_task_queue
        )
        returned = time.perf_counter()
        if not result.started:
            raise SystemExit(f"{contact_id}: not started: {result.reason}")
        done = await asyncio.wait_for(sent[contact_id], 60)
        if record:
            activity_starts = starts.starts[result.workflow_id]
            phase.add(
                started,
                {
                    "start_run returned": returned,
                    # `open_run` since the lean history (`load_plan` + `load_contact` before).
                    "first activity started": min(
                        moment for name, moment in activity_starts.items() if name != "send_email"
                    ),
                    "send_email started": activity_starts["send_email"],
                    "welcome accepted by the outbox": accepted[contact_id],
                    "welcome ledger row sent": done,
                },
            )

    try:
        async with build_worker(client, activities, settings.temporal_task_queue):
            await lanes(contacts[:warmup], concurrency, lambda c: one(c, False))
            await lanes(contacts[warmup:], concurrency, lambda c: one(c, True))
    finally:
        store.ledger.mark_sent = mark_sent  # type: ignore[method-assign]
    rows = [
        row
        for contact_id in contacts[warmup:]
        for row in store.ledger.messages_for_contact(contact_id)
        if row.status == "sent" and row.step_id == "welcome"
    ]
    assert len(rows) == len(contacts) - warmup, (len(rows), len(contacts) - warmup)
    return phase


def _resolve(waiter: asyncio.Future[float], value: float) -> None:
    if not waiter.done():
        waiter.set_result(value)


def seed(store: Store, runs: int) -> list[str]:
    ids = [f"bench-{uuid.uuid4().hex[:6]}-{n:05d}" for n in range(runs)]
    store.upsert_contacts(
        ContactRecord(
            id=contact_id,
            email=f"{contact_id}@example.com",
            timezone="America/New_York",
            locale="en_US",
            attributes={"first_name": "Alice", "plan": "starter", "orders_count": 0},
        )
        for contact_id in ids
    )
    return ids


# --- the run ----------------------------------------------------------------------------------


def settings_for(tmp: Path, address: str) -> Settings:
    """The sample project on a bench's own data folder and server, no provider keys."""
    tmp.mkdir(parents=True, exist_ok=True)
    return Settings(
        _env_file=None,
        data_dir=tmp,
        journeys_dir=ROOT / "journeys",
        templates_dir=ROOT / "templates",
        contacts_dir=ROOT / "contacts",
        temporal_address=address,
        temporal_task_queue="rapport-bench",
        database_url=None,
        write_keys="",
        sendgrid_api_key=None,
        twilio_account_sid=None,
        twilio_auth_token=None,
    )


async def bench(args: argparse.Namespace, tmp: Path) -> tuple[Phase, Phase]:
    port, ui_port = free_port(), free_port()
    address = f"{HOST}:{port}"
    settings = settings_for(tmp, address)
    server = ChildProcess(
        "Temporal dev server", server_command(args.mode, tmp, port, ui_port), tmp / "temporal.log"
    )
    server.start()
    store: Store | None = None
    try:
        client = await wait_for_temporal(settings, address, server)  # runtime.temporal.connect
        starts = ActivityStarts()
        config = client.config()
        config["interceptors"] = [*config["interceptors"], starts]
        client = Client(**config)
        store = Store.open(settings.database)
        contacts = seed(store, args.runs + args.warmup)
        raw = await raw_phase(client, starts, args.runs, args.warmup, args.concurrency)
        engine = await engine_phase(
            client, starts, store, settings, contacts, args.warmup, args.concurrency
        )
        return raw, engine
    finally:
        if store is not None:
            store.close()
        server.stop()


def report(args: argparse.Namespace, raw: Phase, engine: Phase, seconds: float) -> None:
    print(
        f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, {temporal_version()}"
    )
    print(
        f"mode: {args.mode}; {args.runs} measured runs per phase after {args.warmup} warm-up "
        f"runs; {args.concurrency} lanes (starts in flight)"
    )
    print()
    print(
        f"{'from the start call to …':44} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'runs/s':>7}"
    )
    for name, phase in (("raw", raw), ("engine", engine)):
        for label, values in phase.series.items():
            rate = f"{phase.per_s:7.1f}" if label == phase.mark else ""
            print(
                f"{name + ': ' + label:44} {pct(values, 50) * 1000:7.0f} "
                f"{pct(values, 99) * 1000:7.0f} {max(values) * 1000:7.0f} {rate:>7}"
            )
    print(f"{'raw: completed runs/s (incl. the 1 s sleep)':44} {'':23} {raw.completed_per_s:8.1f}")
    print()
    print("runs/s: N / (first start → last mark), each lane waiting for its run's mark")
    print(f"total {seconds:.0f} s (server start, seeding, warm-ups, both phases)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--mode", choices=MODES, default="wal")
    parser.add_argument("--warmup", type=int, default=None, help="default: 2·C, at least 10")
    args = parser.parse_args()
    if args.runs < 2 or args.concurrency < 1:
        parser.error("--runs must be at least 2 and --concurrency at least 1")
    if args.warmup is None:
        args.warmup = max(10, 2 * args.concurrency)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        raw, engine = asyncio.run(bench(args, Path(tmp)))
    report(args, raw, engine, time.perf_counter() - began)


if __name__ == "__main__":
    main()
