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

from fastapi import Depends, FastAPI

from api import contacts, journeys
from api.auth import auth_mode_line, authenticator
from api.errors import install_error_handlers
from api.schemas import Health
from api.state import ApiState, ClientFactory, TemporalClients
from runtime.starter import connect_client
from settings import Settings
from store import Store
from workflows.diagnostics import Severity
from workflows.plan import JourneyPlan
from workflows.project import compile_project

log = logging.getLogger("rapport.api")

DESCRIPTION = """Customer journeys as code, on Temporal.

Authenticate with a write key (`RAPPORT_WRITE_KEYS`): HTTP Basic with the key as the user name
(the Segment convention) or `Authorization: Bearer KEY`. Without configured keys the API only
accepts requests from the machine it runs on. Errors are JSON `{"detail": …}`; 503 answers carry
`Retry-After`.
"""


def load_plans(settings: Settings) -> dict[str, JourneyPlan]:
    """Compile `journeys/`; journeys with errors are logged, one diagnostic a line, and skipped."""
    result = compile_project(settings)
    errors = sorted(d for d in result.diagnostics if d.severity is Severity.ERROR)
    for diagnostic in errors:
        log.error("%s", diagnostic)
    broken = sorted({d.file for d in errors})
    if broken:
        log.error("skipped invalid journeys (run `rapport validate`): %s", ", ".join(broken))
    log.info("loaded journeys: %s", ", ".join(sorted(result.plans)) or "none")
    return result.plans


def create_app(
    settings: Settings,
    client_factory: ClientFactory | None = None,
    *,
    store: Store | None = None,
    plans: dict[str, JourneyPlan] | None = None,
) -> FastAPI:
    owned_store = store is None
    state = ApiState(
        settings=settings,
        store=store if store is not None else Store.open(settings.database),
        temporal=TemporalClients(client_factory or partial(connect_client, settings)),
        plans=plans if plans is not None else load_plans(settings),
    )
    log.info("%s", auth_mode_line(settings))

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

    secured = [Depends(authenticator(settings))]
    app.include_router(contacts.router, dependencies=secured)
    app.include_router(journeys.router, dependencies=secured)
    return app
