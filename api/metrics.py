"""Prometheus metrics of the API (`GET /metrics`), one registry per app.

| metric | labels | counts |
|---|---|---|
| `rapport_events_received_total` | `type` | valid messages taken in (track, identify, page, …) |
| `rapport_events_duplicate_total` | | track messages whose messageId was seen before |
| `rapport_events_routed_total` | | events routed (stored, every start and signal accepted) |
| `rapport_runs_started_total` | `journey` | journey runs started by events or the runs API |
| `rapport_signals_sent_total` | | events delivered to running runs |
| `rapport_contacts_erased_total` | | contacts erased through the API |
| `rapport_http_responses_total` | `status` | responses by status code |
| `rapport_unavailable_total` | `dependency` | 503 answers: `temporal` or `database` down |
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.ingest import Ingested
from runtime.starter import StartResult


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(
            "rapport_events_received", "Valid messages taken in, by type.", ["type"], registry=r
        )
        self.duplicates = Counter(
            "rapport_events_duplicate",
            "Track messages whose messageId was seen before.",
            registry=r,
        )
        self.routed = Counter(
            "rapport_events_routed",
            "Events routed: stored, and every start and signal accepted by Temporal.",
            registry=r,
        )
        self.runs_started = Counter(
            "rapport_runs_started", "Journey runs started, by journey.", ["journey"], registry=r
        )
        self.signals = Counter(
            "rapport_signals_sent", "Events delivered to running journey runs.", registry=r
        )
        self.erased = Counter(
            "rapport_contacts_erased", "Contacts erased through the API.", registry=r
        )
        self.responses = Counter(
            "rapport_http_responses", "HTTP responses, by status code.", ["status"], registry=r
        )
        self.unavailable = Counter(
            "rapport_unavailable",
            "503 answers because a dependency was unavailable.",
            ["dependency"],
            registry=r,
        )

    def ingested(self, result: Ingested) -> None:
        if result.duplicate:
            self.duplicates.inc()
        if result.routed:
            self.routed.inc()
        for started in result.route.started:
            self.run_started(started)
        self.signals.inc(len(result.route.signalled))

    def run_started(self, result: StartResult) -> None:
        if result.started:
            self.runs_started.labels(journey=result.journey).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ResponseCounter:
    """ASGI middleware counting HTTP responses by status code."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.responses.labels(status=str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting)
