"""`rapport worker --metrics-port` with `RAPPORT_LOG_FORMAT=json`: a real worker process, after
one run, serves Prometheus metrics — ours (sends, activity latencies, runs started and ended,
the garbage collector's pauses) and the Temporal SDK's — and has logged the send as a JSON line
naming the run and the contact."""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from runtime.starter import start_run
from runtime.temporal import connect
from runtime.worker_metrics import WorkerMetrics
from store import Store
from store.records import ContactRecord
from tests.stack.helpers import (
    RAPPORT,
    ROOT,
    Samples,
    clean_env,
    free_port,
    project_settings,
    scrape,
)
from tests.waiting import eventually
from workflows.project import compile_project

GREETED = """\
name: Greeted
trigger:
  event: joined
steps:
  - id: hello
    send: email
    template: onboarding/welcome
    category: transactional
  - id: done
    exit: completed
"""


@dataclass
class AfterOneRun:
    samples: Samples
    log: str
    workflow_id: str
    run_id: str


@pytest.fixture(scope="module")
async def after_one_run(
    dev_server: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AfterOneRun]:
    tmp_path = tmp_path_factory.mktemp("observed-worker")
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "greeted.yaml").write_text(GREETED, encoding="utf-8")
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    settings = project_settings(
        data_dir=tmp_path / "data",
        journeys_dir=journeys,
        temporal_address=dev_server,
        temporal_task_queue=queue,
    )
    store = Store.open(settings.database)
    port = free_port()
    env = clean_env(
        TEMPORAL_ADDRESS=dev_server,
        TEMPORAL_TASK_QUEUE=queue,
        RAPPORT_DATA_DIR=str(settings.data_dir),
        RAPPORT_JOURNEYS_DIR=str(journeys),
        RAPPORT_LOG_FORMAT="json",
    )
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [str(RAPPORT), "worker", "--metrics-port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        await eventually(
            lambda: "worker polling task queue" in log.read_text(),
            "the worker to poll",
            timeout=60,
            seen=lambda _: log.read_text(),
        )
        store.upsert_contact(ContactRecord(id="mia", email="mia@example.com"))
        client = await connect(settings)
        plan = compile_project(settings).plans["greeted"]
        started = await start_run(client, store, plan, "mia", task_queue=queue)
        assert started.started and started.run_id, started.reason
        samples = await eventually(
            lambda: (found := scrape(url)).get(ENDED) and found,
            "the run to end",
            timeout=30,
            seen=lambda _: log.read_text()[-3000:],
        )
    finally:
        worker.send_signal(signal.SIGINT)
        assert worker.wait(20) == 0, log.read_text()
        store.close()
    yield AfterOneRun(samples, log.read_text(), started.workflow_id, started.run_id)


ENDED = ("rapport_journey_runs_ended_total", (("outcome", "completed"),))


async def test_the_metrics_count_the_send_the_activities_and_the_run(
    after_one_run: AfterOneRun,
) -> None:
    samples = after_one_run.samples
    assert samples[("rapport_sends_total", (("channel", "email"), ("status", "sent")))] == 1
    assert samples[("rapport_journey_runs_started_total", (("journey", "greeted"),))] == 1
    assert samples[ENDED] == 1
    assert samples[("rapport_activity_seconds_count", (("activity", "send_email"),))] == 1
    # The Temporal SDK's own metrics, through the worker's runtime, on the same page (the send
    # ran as a local activity: it went out at its first attempt).
    sdk = {name for name, labels in samples if name.startswith("temporal_")}
    assert "temporal_local_activity_execution_latency_count" in sdk, sorted(sdk)
    # The collector's pauses: a worker that ran anything has made young collections.
    assert samples[("rapport_gc_pause_seconds_count", (("generation", "0"),))] > 0


def test_a_full_collection_is_counted_once_with_its_pause() -> None:
    metrics = WorkerMetrics()

    def full_collections() -> tuple[float, float]:
        page = generate_latest(metrics.registry).decode()
        values = {
            sample.name: sample.value
            for family in text_string_to_metric_families(page)
            for sample in family.samples
            if sample.labels.get("generation") == "2" and "le" not in sample.labels
        }
        return values["rapport_gc_pause_seconds_count"], values["rapport_gc_pause_seconds_sum"]

    gc.disable()  # only the collection below: none set off by the scrapes' allocations
    try:
        count, total = full_collections()
        began = time.perf_counter()
        gc.collect()
        took = time.perf_counter() - began
        after_count, after_total = full_collections()
    finally:
        gc.enable()
    assert after_count == count + 1
    assert 0 < after_total - total <= took


async def test_the_json_log_names_the_run_and_contact_of_the_send(
    after_one_run: AfterOneRun,
) -> None:
    lines = [json.loads(line) for line in after_one_run.log.splitlines()]
    [send] = [line for line in lines if line["logger"] == "rapport.sends"]
    assert {key: value for key, value in send.items() if key != "time"} == {
        "level": "INFO",
        "logger": "rapport.sends",
        "message": "email hello: sent",
        "workflow_id": after_one_run.workflow_id,
        "run_id": after_one_run.run_id,
        "journey": "greeted",
        "contact_id": "mia",
        "activity": "send_email",
    }
