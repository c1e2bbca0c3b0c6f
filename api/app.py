"""The HTTP API (SPEC §7): `create_app(settings, client_factory)` builds the FastAPI app.

The compiled journeys are loaded when the app is created (invalid ones are logged and skipped);
the store is opened then too (migrated to head) unless one is handed in; the Temporal client is
connected on first use, so the API starts, and answers 503 with Retry-After, while Temporal is down.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI, Response

from api import contacts, events, journeys, unsubscribe, webhooks_sendgrid, webhooks_twilio
from api.auth import auth_mode_line, authenticator
from api.body import require_json
from api.dashboard.pages import install as install_dashboard
from api.dashboard.session import dashboard_line
from api.errors import ValidationProblem, install_error_handlers
from api.ingest import load_plans
from api.metrics import Metrics, ResponseCounter
from api.schemas import Health, Problem
from api.state import ApiState, ClientFactory, TemporalClients
from runtime.starter import connect_client
from runtime.tracing import tracing_on
from runtime.traits import open_store
from settings import Settings
from store import Store
from workflows.plan import JourneyPlan

log = logging.getLogger("rapport.api")

DESCRIPTION = """Customer journeys as code, on Temporal.

Authenticate with a write key (`RAPPORT_WRITE_KEYS`): HTTP Basic with the key as the user name
(the Segment convention) or `Authorization: Bearer KEY`. Without configured keys the API only
accepts requests from the machine it runs on (not forwarded by a proxy, not from a web page of
another site). Bodies are JSON, with `Content-Type: application/json` (415 otherwise). Errors
are JSON `{"detail": …}` (422s add `errors`, one per invalid field with its path); 503 answers
carry `Retry-After`.

Events come in over the Segment Tracking API (`/v1/track`, `/v1/identify`, `/v1/batch`): point a
Segment library, a Segment destination function or a RudderStack webhook at this server. A 200
means the event is stored and every journey start and signal it causes was accepted by Temporal;
see docs/events.md.
"""

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": Problem,
        "description": "No write key, or an unknown one (HTTP Basic user name, or Bearer).",
        "content": {"application/json": {"example": {"detail": "unknown write key"}}},
    },
    403: {
        "model": Problem,
        "description": "No write keys are configured and the request is not from this machine "
        "(another address, a forwarded request, a Host or Origin of another site).",
    },
    415: {"model": Problem, "description": "A body that is not declared JSON."},
    422: {"model": ValidationProblem, "description": "Invalid parameters or body."},
}


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy settings: forwarded headers (`X-Forwarded-For`, `-Proto`) are believed
    only from `RAPPORT_TRUSTED_PROXIES`. uvicorn's own default believes them from 127.0.0.1,
    which behind a same-host proxy lets any client claim any address."""
    trusted = settings.trusted_proxy_list
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


def create_app(
    settings: Settings,
    client_factory: ClientFactory | None = None,
    *,
    store: Store | None = None,
    plans: dict[str, JourneyPlan] | None = None,
) -> FastAPI:
    owned_store = store is None
    metrics = Metrics()
    state = ApiState(
        settings=settings,
        store=store if store is not None else open_store(settings),
        temporal=TemporalClients(client_factory or partial(connect_client, settings)),
        plans=plans if plans is not None else load_plans(settings),
        metrics=metrics,
    )
    log.info("%s", auth_mode_line(settings))
    log.info("%s", dashboard_line(settings))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned_store:
            state.store.close()

    app = FastAPI(
        title="Rapport",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.rapport = state
    install_error_handlers(app)

    @app.get("/healthz", response_model=Health, tags=["health"], summary="Liveness")
    async def healthz() -> Health:
        return Health(journeys=sorted(state.plans))

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics",
        description="Counters of events received, duplicates, events routed, runs started, "
        "signals sent and 503 answers, in the Prometheus text format. Like /healthz it needs "
        "no write key: it holds no contact data.",
        response_class=Response,
        responses={
            200: {
                "content": {
                    "text/plain": {
                        "example": "# TYPE rapport_events_routed_total counter\n"
                        "rapport_events_routed_total 42.0\n"
                    }
                }
            }
        },
    )
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    secured = [Depends(authenticator(settings)), Depends(require_json)]
    for router in (events.build_router(settings), contacts.router, journeys.router):
        app.include_router(router, dependencies=secured, responses=AUTH_RESPONSES)
    # Authenticated by provider signatures or signed tokens, not write keys (docs/compliance.md).
    for router in (webhooks_sendgrid.router, webhooks_twilio.router, unsubscribe.router):
        app.include_router(router)
    install_dashboard(app)  # its own sign-in (RAPPORT_ADMIN_TOKEN), not the write keys
    app.add_middleware(ResponseCounter, metrics=metrics)
    if tracing_on(settings):
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,metrics")
    return app
