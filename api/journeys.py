"""`POST /v1/journeys/{id}/runs`: start a journey for a contact (through `start_run`)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import JSONResponse

from api.schemas import Conflict, Problem, StartRunRequest, StartRunResponse
from api.state import ApiState, api_state
from runtime.starter import UnknownContactError, start_run

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])

JourneyId = Annotated[str, Path(min_length=1, max_length=255, examples=["onboarding"])]


def _example(detail: str, **extra: Any) -> dict[str, Any]:
    return {"application/json": {"example": {"detail": detail, **extra}}}


@router.post(
    "/{journey_id}/runs",
    status_code=201,
    response_model=StartRunResponse,
    summary="Start a journey for a contact",
    description="Starts one run of the journey (its current compiled version) for the "
    "contact, subject to the journey's `reentry` rule and `status`. A contact is in a journey "
    "at most once at a time. Answers once Temporal has durably accepted the start.",
    responses={
        400: {
            "model": Problem,
            "description": "The body could not be read (e.g. not UTF-8).",
            "content": _example("There was an error parsing the body"),
        },
        404: {
            "model": Problem,
            "description": "Unknown journey, or unknown contact.",
            "content": _example("no journey 'onbaording' (journeys: onboarding, win_back)"),
        },
        409: {
            "model": Conflict,
            "description": "The contact may not enter now.",
            "content": _example(
                "'alice' is already in 'onboarding'",
                refused="already_running",
                workflow_id="journey:onboarding:alice",
            ),
        },
        503: {
            "model": Problem,
            "description": "Temporal (or the database) is unreachable; retry after the "
            "Retry-After seconds.",
            "content": _example("cannot reach Temporal at 127.0.0.1:7233 (connection refused)"),
        },
    },
)
async def start_journey_run(
    journey_id: JourneyId,
    body: StartRunRequest,
    state: Annotated[ApiState, Depends(api_state)],
) -> Any:
    plan = state.plans.get(journey_id)
    if plan is None:
        known = ", ".join(sorted(state.plans)) or "none"
        raise HTTPException(404, detail=f"no journey {journey_id!r} (journeys: {known})")
    # Checked before Temporal is needed, so an unknown contact is a 404 even while it is down.
    if await asyncio.to_thread(state.store.get_contact, body.contact_id) is None:
        raise HTTPException(404, detail=f"no contact {body.contact_id!r} in the store")
    client = await state.temporal.get()
    try:
        result = await start_run(
            client,
            state.store,
            plan,
            body.contact_id,
            data=dict(body.data),
            task_queue=state.task_queue,
        )
    except UnknownContactError as error:
        raise HTTPException(404, detail=f"no contact {error.contact_id!r} in the store") from None
    state.metrics.run_started(result)
    if not result.started:
        return JSONResponse(
            Conflict(
                detail=result.reason or "not started",
                refused=result.refused or "already_running",
                workflow_id=result.workflow_id,
            ).model_dump(),
            status_code=409,
        )
    assert result.run_id is not None
    return StartRunResponse(
        journey=result.journey,
        version=result.version,
        contact_id=result.contact_id,
        workflow_id=result.workflow_id,
        run_id=result.run_id,
    )
