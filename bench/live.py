"""Shared parts of the figures measured on live processes (`event_to_send`, `enrolment`,
`waiting_runs`, `scale_out` in `bench/suite.py`).

- `dev_server`: a Temporal dev server as `rapport run` starts it (WAL SQLite file in a temporary
  dir, `start_latency.server_command`), with a client and the bench's settings.
- `TimedStandIn`: the provider stand-in of the tests (`tests/provider_standin.py`: a real HTTP
  server speaking SendGrid's and Twilio's APIs, each request validated against their OpenAPI
  descriptions), noting when each request *arrived* (before its answer), by recipient, on this
  process's clocks. It validates every request *after* the measurement (`defer_validation`:
  each is recorded raw and answered as a valid one; `assert_valid()` at the end checks them all
  and fails the run if one breaks the description), so that the measuring apparatus does not
  compete for the CPU with the engine it measures (checking a SendGrid request against the
  description costs about half a millisecond of CPU, on the same cores).
- `Processes`: `rapport worker` / `rapport run` child processes with an environment that points
  them at the bench's server, store and stand-in; their RSS read from /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import start_latency as sl
from temporalio.client import Client

from runtime.stack import ChildProcess, wait_for_temporal
from runtime.temporal import venv_binary
from settings import Settings
from tests.provider_standin import ProviderStandIn
from tests.stack.helpers import clean_env

ROOT = Path(__file__).resolve().parents[1]


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def pct_ms(values: list[float], p: int) -> float:
    """The p-th percentile of `values` (seconds) in milliseconds; the value itself for one."""
    if len(values) == 1:
        return round(values[0] * 1000, 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000, 1)


class TimedStandIn(ProviderStandIn):
    """The stand-in, noting the arrival of each request by recipient (the first request only:
    a retried send keeps its first arrival). `perf_counter` and `time.time()` both. Requests
    are validated when `assert_valid()` is called, after the measurement (module docstring)."""

    def __init__(self) -> None:
        super().__init__(defer_validation=True)
        self.arrived: dict[str, tuple[float, float]] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrival_lock = threading.Lock()

    def expect(self, recipient: str) -> asyncio.Future[float]:
        """A future resolved with the `perf_counter` moment a request to `recipient` arrives."""
        self._loop = asyncio.get_running_loop()
        waiter = self._loop.create_future()
        with self._arrival_lock:
            if recipient in self.arrived:
                waiter.set_result(self.arrived[recipient][0])
            else:
                self.waiters[recipient] = waiter
        return waiter

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Any:
        moment = (time.perf_counter(), time.time())
        recipient = _recipient(body)
        if recipient is not None:
            with self._arrival_lock:
                first = recipient not in self.arrived
                if first:
                    self.arrived[recipient] = moment
                waiter = self.waiters.pop(recipient, None)
            if first and waiter is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(sl._resolve, waiter, moment[0])
        return super().handle(method, raw_path, headers, body)


def _recipient(body: bytes) -> str | None:
    """The SendGrid request's first `to` address, or a Twilio request's `To` number."""
    try:
        data = json.loads(body)
        return str(data["personalizations"][0]["to"][0]["email"])
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    from urllib.parse import parse_qs

    to = parse_qs(body.decode("ascii", "replace")).get("To")
    return to[0] if to else None


@dataclass
class Server:
    settings: Settings
    client: Client
    address: str
    process: ChildProcess


@asynccontextmanager
async def dev_server(tmp: Path, journeys_dir: Path | None = None) -> AsyncIterator[Server]:
    """A WAL dev server on free ports and the sample project's settings pointing at it."""
    port, ui_port = sl.free_port(), sl.free_port()
    address = f"{sl.HOST}:{port}"
    settings = sl.settings_for(tmp, address)
    if journeys_dir is not None:
        settings = settings.model_copy(update={"journeys_dir": journeys_dir})
    process = ChildProcess(
        "Temporal dev server", sl.server_command("wal", tmp, port, ui_port), tmp / "temporal.log"
    )
    process.start()
    try:
        client = await wait_for_temporal(settings, address, process)
        yield Server(settings, client, address, process)
    finally:
        process.stop()


def child_env(settings: Settings, standin: ProviderStandIn | None, **extra: str) -> dict[str, str]:
    """What a `rapport` child process needs to use the bench's settings (and the stand-in)."""
    env = {
        "RAPPORT_DATA_DIR": str(settings.data_dir),
        "RAPPORT_JOURNEYS_DIR": str(settings.journeys_dir),
        "RAPPORT_TEMPLATES_DIR": str(settings.templates_dir),
        "RAPPORT_CONTACTS_DIR": str(settings.contacts_dir),
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    if settings.temporal_address:
        env["TEMPORAL_ADDRESS"] = settings.temporal_address
    if standin is not None:
        env.update(standin.env())
    env.update(extra)
    return env


@dataclass
class Processes:
    """Child `rapport` processes, stopped (SIGTERM, then SIGKILL) on `stop_all`."""

    log_dir: Path
    started: list[ChildProcess] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> ChildProcess:
        # Without what the developer's shell set for RAPPORT_/TEMPORAL_/SENDGRID_/TWILIO_.
        argv = [str(venv_binary("rapport")), *args]
        child = ChildProcess(name, argv, self.log_dir / f"{name}.log", env=clean_env(**env))
        child.start()
        self.started.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.started):
            child.stop()
        self.started.clear()


def rss_mb(child: ChildProcess) -> tuple[float, float]:
    """(current RSS, peak RSS) of a child process in MB, from /proc/PID/status."""
    assert child.process is not None
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        for line in Path(f"/proc/{child.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) / 1024  # kB
    except OSError:
        pass
    return round(values["VmRSS"], 1), round(values["VmHWM"], 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The direct children of a process (/proc/PID/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


async def until(check: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `check()` until true; `TimeoutError` naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)
