"""`POST /v1/track`, `/v1/identify`, `/v1/batch`: the Segment-compatible event API (SPEC §7).

A `200 {"success": true}` is a durable acknowledgement: the event is stored and Temporal has
accepted every journey start and signal it causes (`api.ingest`). When Temporal or the database
is unavailable the answer is 503 with Retry-After, and the retry — same messageId — finishes
the job without doing anything twice.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError

from api.auth import write_key_check
from api.body import BATCH_LIMIT, MESSAGE_LIMIT, body_limit, limited_body_route, too_large
from api.errors import ValidationProblem, field_path
from api.ingest import ingest_event, ingest_identify
from api.schemas import Problem
from api.segment import (
    Ack,
    BatchBody,
    BatchRequest,
    Identify,
    IdentifyRequest,
    InvalidMessages,
    Loc,
    Prepared,
    SegmentMessage,
    Track,
    TrackRequest,
    prepare,
)
from api.state import ApiState, api_state
from settings import Settings


def _example(detail: str) -> dict[str, Any]:
    return {"application/json": {"example": {"detail": detail}}}


EVENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "The body could not be read: not valid gzip, or not decodable.",
        "content": _example("the body is not valid gzip (Content-Encoding: gzip): …"),
    },
    413: {
        "model": Problem,
        "description": "Past Segment's limits: 32 KB per call and per message in a batch, "
        "500 KB per batch; measured on the JSON, after decompression.",
        "content": _example("a call is larger than the limit of 32 KB (32768 bytes); …"),
    },
    415: {
        "model": Problem,
        "description": "Not JSON (`Content-Type: application/json`), or a Content-Encoding "
        "other than gzip.",
        "content": _example("unsupported Content-Encoding 'br': …"),
    },
    422: {
        "model": ValidationProblem,
        "description": "Invalid content: malformed JSON, missing fields, wrong types, no "
        "userId/anonymousId, an invalid email, phone (E.164), timezone (IANA) or locale. "
        "Nothing was stored.",
    },
    503: {
        "model": Problem,
        "description": "Temporal or the database is unavailable: retry after Retry-After "
        "seconds with the same messageIds. Whatever was done is not done again.",
        "content": _example("cannot reach Temporal at 127.0.0.1:7233 (connection refused): …"),
    },
}

ACK_DESCRIPTION = (
    ' Answers `200 {"success": true}` only once the event is stored and Temporal has accepted '
    "every journey start and signal it causes; 503 with Retry-After otherwise, and a retry with "
    "the same messageId is safe. Bodies may be gzipped (`Content-Encoding: gzip`)."
)


def _prepared(items: list[tuple[SegmentMessage, str, Loc]], shared: Any = None) -> list[Prepared]:
    try:
        return prepare(items, shared)
    except InvalidMessages as invalid:
        raise RequestValidationError(invalid.errors) from None


async def _process(state: ApiState, item: Prepared) -> None:
    if isinstance(item, Identify):
        await ingest_identify(
            state.store,
            state.index,
            item.contact,
            client=state.temporal.get,
            task_queue=state.task_queue,
        )
    elif isinstance(item, Track):
        result = await ingest_event(
            state.store,
            state.index,
            item.event,
            client=state.temporal.get,
            task_queue=state.task_queue,
            max_age=state.settings.trigger_max_age_delta,
        )
        state.metrics.ingested(result)


async def _one(state: ApiState, body: SegmentMessage, kind: str) -> Ack:
    """A single `track` or `identify` call: checked, counted, processed."""
    items: list[tuple[SegmentMessage, str, Loc]] = [(body, kind, ("body",))]
    [item] = _prepared(items)
    _count_received(state, items)
    await _process(state, item)
    return Ack()


def _count_received(state: ApiState, items: list[tuple[SegmentMessage, str, Loc]]) -> None:
    for _message, kind, _loc in items:
        state.metrics.received.labels(type=kind).inc()


def _check_message_sizes(items: list[tuple[SegmentMessage, str, Loc]]) -> None:
    """Segment's 32 KB applies to each message of a batch too (measured as compact JSON)."""
    for message, _kind, loc in items:
        if len(message.model_dump_json(exclude_unset=True).encode()) > MESSAGE_LIMIT:
            raise too_large(f"message {field_path(loc)}", MESSAGE_LIMIT)


def build_router(settings: Settings) -> APIRouter:
    """The event endpoints; the write key is checked before the body is read."""
    router = APIRouter(
        prefix="/v1",
        tags=["events"],
        route_class=limited_body_route(write_key_check(settings)),
        responses=EVENT_RESPONSES,
    )

    @router.post(
        "/track",
        response_model=Ack,
        summary="Record what a user did (Segment track)",
        description="Stores the event, starts the journeys it triggers and wakes the runs "
        "that wait for it (`wait_for`, `goal`, `exit_on`). An unknown userId creates the "
        "contact; without a userId the anonymousId is the contact id." + ACK_DESCRIPTION,
        openapi_extra=body_limit(MESSAGE_LIMIT),
    )
    async def track(body: TrackRequest, state: Annotated[ApiState, Depends(api_state)]) -> Ack:
        return await _one(state, body, "track")

    @router.post(
        "/identify",
        response_model=Ack,
        summary="Say who a user is (Segment identify)",
        description="Creates or updates the contact: `traits.email`, `traits.phone` (E.164), "
        "`traits.timezone` (IANA; else `context.timezone`) and `traits.locale` (else "
        "`context.locale`) are profile fields and are validated — one invalid field and "
        "nothing is stored; every other trait is merged into the contact's attributes. "
        "Traits may also come in `context.traits` (as RudderStack's SDKs send them); "
        "top-level traits win."
        " Answers 200 once the contact is stored; 503 with Retry-After if the database is "
        "unavailable. Bodies may be gzipped (`Content-Encoding: gzip`).",
        openapi_extra=body_limit(MESSAGE_LIMIT),
    )
    async def identify(
        body: IdentifyRequest, state: Annotated[ApiState, Depends(api_state)]
    ) -> Ack:
        return await _one(state, body, "identify")

    @router.post(
        "/batch",
        response_model=Ack,
        summary="Many track and identify calls at once (Segment batch)",
        description="What the Segment libraries send. Every message is checked first: one "
        "invalid message and the whole batch is refused with 422, nothing stored. Then the "
        "messages are processed one by one, in order. If one cannot be processed because "
        "Temporal or the database is unavailable, processing stops there and the answer is "
        "503: the messages before it are done, the rest are not, and retrying the same batch "
        "is safe (messages already done are recognised by their messageId). `page`, "
        "`screen`, `group` and `alias` messages are accepted and ignored. The body may also be "
        "one message with its `type` — what Segment's Webhooks and RudderStack's Webhook "
        "destinations post." + ACK_DESCRIPTION,
        openapi_extra=body_limit(BATCH_LIMIT),
    )
    async def batch(body: BatchBody, state: Annotated[ApiState, Depends(api_state)]) -> Ack:
        items: list[tuple[SegmentMessage, str, Loc]]
        if isinstance(body, BatchRequest):
            items = [
                (item, item.type, ("body", "batch", index)) for index, item in enumerate(body.batch)
            ]
            shared = body.context
        else:
            items, shared = [(body, body.type, ("body",))], None
        _check_message_sizes(items)
        prepared = _prepared(items, shared)
        _count_received(state, items)
        for item in prepared:
            await _process(state, item)
        return Ack()

    return router
