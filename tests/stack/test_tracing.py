"""`RAPPORT_OTEL_EXPORTER` on: one trace from the API request that starts a run, through the
journey workflow and its send activity, to the provider call (spans kept in memory)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime.temporal import connect
from tests.api.helpers import WRITE_KEY, build_app, serve
from tests.stack.helpers import project_settings, worker_stack


async def test_one_trace_spans_the_request_the_workflow_the_activity_and_the_provider(
    dev_server: str, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # what `configure_tracing` does, exporting to memory
    settings = project_settings(
        data_dir=tmp_path,
        temporal_address=dev_server,
        temporal_task_queue=f"traced-{uuid.uuid4().hex[:8]}",
        otel_exporter="console",
    )
    try:
        async with worker_stack(settings, await connect(settings)) as stack:
            user = f"traced-{uuid.uuid4().hex[:8]}"
            async with (
                serve(build_app(stack, stack.plans)) as url,
                httpx.AsyncClient(base_url=url, auth=(WRITE_KEY, ""), trust_env=False) as api,
            ):
                identify = {"userId": user, "traits": {"email": f"{user}@example.com"}}
                assert (await api.post("/v1/identify", json=identify)).status_code == 200
                track = {"userId": user, "event": "signed_up"}
                assert (await api.post("/v1/track", json=track)).status_code == 200
            await stack.sent(user)
    finally:
        provider.shutdown()
    spans = exporter.get_finished_spans()
    [request] = [s for s in spans if s.name == "POST /v1/track" and s.parent is None]
    assert request.context is not None
    in_trace = {
        s.name for s in spans if s.context and s.context.trace_id == request.context.trace_id
    }
    assert {
        "StartWorkflow:JourneyV4",
        "RunWorkflow:JourneyV4",
        "StartActivity:send_email",
        "RunActivity:send_email",
        "outbox send",
    } <= in_trace, sorted(in_trace)
