"""OpenTelemetry tracing (`RAPPORT_OTEL_EXPORTER`, off by default): one trace from the API
request through the journey workflow and its activities to the provider call.

The Temporal client carries the trace across (`temporalio.contrib.opentelemetry`: a start, a
signal, the workflow and every activity are spans, linked through Temporal headers); the API's
requests are spans of FastAPI's instrumentation; a send's provider call is a span of its own
(`provider_span`). `otlp` exports to `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter's own
variable, default http://localhost:4318), `console` prints the spans on stdout.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from settings import Settings


def tracing_on(settings: Settings) -> bool:
    return settings.otel_exporter != "none"


def client_interceptors(settings: Settings) -> Sequence[Interceptor]:
    """A client's (and so its workers') interceptors: the tracing one when tracing is on."""
    return [TracingInterceptor()] if tracing_on(settings) else []


def configure_tracing(settings: Settings, service: str) -> None:
    """Install the process's tracer provider with the configured exporter (once, at start)."""
    if not tracing_on(settings):
        return
    exporter: SpanExporter
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
