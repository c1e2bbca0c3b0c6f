"""How the API answers errors.

- Failures of what the API depends on (Temporal, the database) become 503 with Retry-After, so
  clients retry later; they are counted in `rapport_unavailable_total`.
- Invalid requests become 422 (a JSON body that does not parse, too) with `detail` saying, in one
  line, which fields are wrong and why (`batch[2].traits.phone: phone must be in E.164 …`), and
  `errors` listing each problem with its `loc` (FastAPI's), `field` (a readable path), `msg` and
  `type`. The submitted values are never echoed back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.service import RPCError

from api.segment import BATCH_TAG, MESSAGE_TAG
from runtime.starter import TemporalUnavailableError
from store.db import UNAVAILABLE_ERRORS

log = logging.getLogger("rapport.api")
RETRY_AFTER_SECONDS = 5
MAX_LISTED = 10
MAX_PATH_PARTS = 12
WHERE = {"body": "", "path": "path parameter ", "query": "query parameter ", "header": "header "}


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where, as FastAPI reports it.")
    field: str = Field(description="Where, as a path: `batch[2].traits.phone`.")
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A 422: the request is well-formed HTTP but its content is invalid."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "invalid request: traits.phone: phone must be in E.164 format, "
                    "'+' then 7 to 15 digits (e.g. +14155550123), got '555-0143'",
                    "errors": [
                        {
                            "loc": ["body", "traits", "phone"],
                            "field": "traits.phone",
                            "msg": "phone must be in E.164 format, '+' then 7 to 15 digits "
                            "(e.g. +14155550123), got '555-0143'",
                            "type": "invalid_phone",
                        }
                    ],
                }
            ]
        }
    )

    detail: str
    errors: list[FieldError]


def field_path(loc: Sequence[Any]) -> str:
    """("body", "batch", 2, "traits", "phone") -> "batch[2].traits.phone"."""
    parts = list(loc)
    prefix = ""
    if parts and parts[0] in WHERE:
        prefix = WHERE[parts.pop(0)]
    if len(parts) > MAX_PATH_PARTS:  # e.g. a nesting too deep to validate
        parts = [*parts[: MAX_PATH_PARTS - 3], "…", *parts[-2:]]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return prefix + (path or "the body")


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        why = (error.get("ctx") or {}).get("error", "invalid JSON")
        loc = error.get("loc", ())
        at = f" at character {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
        return f"the body is not valid JSON: {why}{at}"
    return str(error.get("msg", "invalid"))


MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")


def _clean_loc(loc: Sequence[Any]) -> list[str | int]:
    """Drop the tags pydantic puts in the path of a tagged union: `/v1/batch`'s
    batch-or-message tag and a message's `type` (body.batch-request.batch.0.track.event)."""
    cleaned: list[str | int] = []
    previous: list[Any] = []
    for part in loc:
        tag = part in (BATCH_TAG, MESSAGE_TAG) or (
            part in MESSAGE_TYPES
            and (
                previous[-1:] == [MESSAGE_TAG]
                or (
                    len(previous) >= 2 and previous[-2] == "batch" and isinstance(previous[-1], int)
                )
            )
        )
        previous.append(part)
        if not tag:
            cleaned.append(part if isinstance(part, int) else str(part))
    return cleaned


def validation_problem(errors: Sequence[dict[str, Any]]) -> ValidationProblem:
    listed: list[FieldError] = []
    for error in errors:
        loc = _clean_loc(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            loc = ["body"]
        listed.append(
            FieldError(
                loc=loc, field=field_path(loc), msg=_message(error), type=str(error.get("type"))
            )
        )
    shown = "; ".join(
        f"{e.field}: {e.msg}" if e.field != "the body" else e.msg for e in listed[:MAX_LISTED]
    )
    if len(listed) > MAX_LISTED:
        shown += f"; and {len(listed) - MAX_LISTED} more"
    return ValidationProblem(detail=f"invalid request: {shown}", errors=listed)


def unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _count(request: Request, dependency: str) -> None:
    state = getattr(request.app.state, "rapport", None)
    if state is not None:
        state.metrics.unavailable.labels(dependency=dependency).inc()


async def _invalid(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problem = validation_problem(error.errors())
    return JSONResponse(problem.model_dump(), status_code=422)


async def _temporal_unavailable(request: Request, error: Exception) -> JSONResponse:
    log.warning("%s", error)
    _count(request, "temporal")
    return unavailable(str(error))


async def _temporal_rpc(request: Request, error: Exception) -> JSONResponse:
    log.warning("Temporal call failed: %s", error)
    _count(request, "temporal")
    return unavailable(f"Temporal did not accept the request ({error}); retry later")


async def _database(request: Request, error: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", getattr(error, "orig", error))
    _count(request, "database")
    return unavailable("the database is unavailable; retry later")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(TemporalUnavailableError, _temporal_unavailable)
    app.add_exception_handler(RPCError, _temporal_rpc)
    for database_error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(database_error, _database)
