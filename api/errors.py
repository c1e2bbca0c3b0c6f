"""Failures of what the API depends on become 503 with Retry-After, so clients retry later."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from temporalio.service import RPCError

from runtime.starter import TemporalUnavailableError

log = logging.getLogger("rapport.api")
RETRY_AFTER_SECONDS = 5


def unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _temporal_unavailable(_request: Request, error: Exception) -> JSONResponse:
    log.warning("%s", error)
    return unavailable(str(error))


async def _temporal_rpc(_request: Request, error: Exception) -> JSONResponse:
    log.warning("Temporal call failed: %s", error)
    return unavailable(f"Temporal did not accept the request ({error}); retry later")


async def _database(_request: Request, error: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", getattr(error, "orig", error))
    return unavailable("the database is unavailable; retry later")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TemporalUnavailableError, _temporal_unavailable)
    app.add_exception_handler(RPCError, _temporal_rpc)
    app.add_exception_handler(OperationalError, _database)
