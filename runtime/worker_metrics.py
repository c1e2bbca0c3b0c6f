"""Prometheus metrics of a worker (`rapport worker --metrics-port N`, `GET /metrics`).

| metric | labels | what |
|---|---|---|
| `rapport_sends_total` | `channel`, `status` | send attempts by outcome (`status`: below) |
| `rapport_activity_seconds` | `activity` | histogram of activity execution time, every attempt |
| `rapport_journey_runs_started_total` | `journey` | runs the worker recorded as started |
| `rapport_journey_runs_ended_total` | `outcome` | runs the worker recorded as ended, by outcome |
| `rapport_gc_pause_seconds` | `generation` | histogram of the garbage collector's pauses |
| `temporal_*` | | the Temporal SDK's own (task slots, poll and schedule-to-start latencies) |

A send's `status`: `sent`, `suppressed`, `skipped`, `failed`, `deferred`, or `error` (the
attempt raised; Temporal retries it).

Our metrics are counted by a worker interceptor, so the activities know nothing of them. The
SDK's metrics come from its Rust core, which serves Prometheus text on an address of its own:
the worker's runtime binds it to a private loopback port and `/metrics` passes it through, so a
scraper has one target per worker.
"""

from __future__ import annotations

import functools
import gc
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio import activity
from temporalio.runtime import (
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from workflows.contracts import RunEnded, RunProgress, RunStarted, SendOutcome, SendRequest

# Activity latencies: from a ledger write (milliseconds) to a provider call timing out (a minute).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Collector pauses: a young generation's take well under a millisecond; a full collection over
# thousands of cached runs takes a few hundred (docs/performance.md), and every run waits.
GC_PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sends = Counter(
            "rapport_sends",
            "Send attempts, by channel and outcome.",
            ["channel", "status"],
            registry=r,
        )
        self.activity_seconds = Histogram(
            "rapport_activity_seconds",
            "Activity execution time in seconds, every attempt, by activity.",
            ["activity"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.runs_started = Counter(
            "rapport_journey_runs_started",
            "Journey runs started, by journey.",
            ["journey"],
            registry=r,
        )
        self.runs_ended = Counter(
            "rapport_journey_runs_ended",
            "Journey runs ended, by outcome.",
            ["outcome"],
            registry=r,
        )
        r.register(collector_pauses())

    def observe(self, name: str, args: Any, result: Any, seconds: float) -> None:
        """One activity attempt: `result` is its return value, or the exception it raised."""
        self.activity_seconds.labels(activity=name).observe(seconds)
        [argument] = args if len(args) == 1 else [None]
        if isinstance(argument, SendRequest):
            status = result.status if isinstance(result, SendOutcome) else "error"
            # (A request by reference names no channel: the activity does.)
            channel = argument.channel or name.removeprefix("send_")
            self.sends.labels(channel=channel, status=status).inc()
        elif isinstance(result, BaseException):
            return
        elif isinstance(argument, RunProgress):  # a run's records at a wait or its end
            self._runs(argument.started, argument.ended)
        else:  # the one-record activities of older releases' runs
            self._runs(
                argument if isinstance(argument, RunStarted) else None,
                argument if isinstance(argument, RunEnded) else None,
            )

    def _runs(self, started: RunStarted | None, ended: RunEnded | None) -> None:
        if started is not None:
            self.runs_started.labels(journey=started.journey).inc()
        if ended is not None:
            self.runs_ended.labels(outcome=ended.outcome).inc()


class CollectorPauses(Collector):
    """`rapport_gc_pause_seconds`: the garbage collector's pauses, timed by a `gc` callback.

    The callback only adds to plain lists: it runs inside whatever allocation set the collector
    off, possibly while that thread holds a lock of prometheus_client's, so it must take none;
    the histogram is built from the lists when scraped."""

    def __init__(self) -> None:
        self._buckets = [[0] * len(GC_PAUSE_BUCKETS) for _ in range(3)]
        self._sums = [0.0] * 3
        self._counts = [0] * 3
        self._began = 0.0
        gc.callbacks.append(self._time)

    def _time(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        seconds = time.perf_counter() - self._began
        generation = info["generation"]
        self._counts[generation] += 1
        self._sums[generation] += seconds
        buckets = self._buckets[generation]
        for i, bound in enumerate(GC_PAUSE_BUCKETS):
            if seconds <= bound:
                buckets[i] += 1

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "rapport_gc_pause_seconds",
            "Garbage collector pauses in seconds, by generation (every run in flight waits).",
            labels=["generation"],
        )
        for generation in range(3):
            bounds = [str(bound) for bound in GC_PAUSE_BUCKETS]
            cumulative = list(zip(bounds, self._buckets[generation], strict=True))
            family.add_metric(
                [str(generation)],
                [*cumulative, ("+Inf", self._counts[generation])],
                self._sums[generation],
            )
        yield family

    def describe(self) -> Iterator[Metric]:
        return self.collect()


@functools.cache
def collector_pauses() -> CollectorPauses:
    """The process's one `CollectorPauses` (the collector is the process's), made when a
    worker's metrics first ask for it."""
    return CollectorPauses()


class MetricsInterceptor(Interceptor):
    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TimedActivity(next, self.metrics)


class _TimedActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: WorkerMetrics) -> None:
        super().__init__(next)
        self.metrics = metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        began = time.perf_counter()
        name = activity.info().activity_type
        try:
            result = await super().execute_activity(input)
        except BaseException as error:
            self.metrics.observe(name, input.args, error, time.perf_counter() - began)
            raise
        self.metrics.observe(name, input.args, result, time.perf_counter() - began)
        return result


class SdkMetrics(Collector):
    """The Temporal SDK's metrics, read from its own Prometheus endpoint at each scrape."""

    def __init__(self, address: str) -> None:
        self.url = f"http://{address}/metrics"

    def collect(self) -> Iterator[Metric]:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return  # the SDK serves nothing until the runtime's first worker starts
        yield from text_string_to_metric_families(text)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # unknown until scraped: don't scrape at registration


def _free_loopback_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def metrics_runtime(metrics: WorkerMetrics) -> Runtime:
    """A runtime like `runtime.temporal.quiet_runtime` (the core logs only errors) that also
    records the SDK's metrics, added to `metrics`' registry."""
    address = _free_loopback_address()
    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")),
            metrics=PrometheusConfig(bind_address=address, durations_as_seconds=True),
        )
    )
    metrics.registry.register(SdkMetrics(address))
    return runtime


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: Thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serve_metrics(metrics: WorkerMetrics, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """`GET /metrics` on `host:port`, from a thread of its own."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsServer(server, thread)
