"""`rapport worker --metrics-port`: a real worker process serving Prometheus metrics — ours
(sends, activity latencies, runs started and ended) and the Temporal SDK's — after one run."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.starter import start_run
from runtime.temporal import connect
from store import Store
from store.records import ContactRecord
from tests.stack.helpers import RAPPORT, ROOT, clean_env, free_port, project_settings
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

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=10, trust_env=False).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.timeout(120)
async def test_a_worker_with_a_metrics_port_counts_its_sends_activities_and_runs(
    dev_server: str, tmp_path: Path
) -> None:
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
        assert started.started, started.reason
        ended = ("rapport_journey_runs_ended_total", (("outcome", "completed"),))
        samples = await eventually(
            lambda: (found := scrape(url)).get(ended) and found, "the run to end", timeout=30
        )
    finally:
        worker.send_signal(signal.SIGINT)
        assert worker.wait(20) == 0, log.read_text()
        store.close()

    assert samples[("rapport_sends_total", (("channel", "email"), ("status", "sent")))] == 1
    assert samples[("rapport_journey_runs_started_total", (("journey", "greeted"),))] == 1
    assert samples[ended] == 1
    assert samples[("rapport_activity_seconds_count", (("activity", "send_email"),))] == 1
    # The Temporal SDK's own metrics, through the worker's runtime, on the same page.
    sdk = {name for name, labels in samples if name.startswith("temporal_")}
    assert "temporal_activity_execution_latency_count" in sdk, sorted(sdk)
