"""The Segment Tracking API's request shapes (`/v1/track`, `/v1/identify`, `/v1/batch`) and how a
message becomes what the store keeps: a `ContactRecord` for identify, an `EventRecord` for track.

Field names are Segment's (camelCase); fields Segment defines that Rapport does not use
(`integrations`, `sentAt`, `channel`, `writeKey`, …) are accepted and ignored, as are the batch
message types Rapport has no use for (`page`, `screen`, `group`, `alias`).

Checks happen in two passes, both before anything is stored: the models check shapes and types,
then `prepare` checks what the store would refuse (an identity, E.164 phone numbers, IANA time
zones, locales, text a database cannot hold) and reports every problem with its field path.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from store.records import E164, EMAIL, LOCALE, ContactRecord, EventRecord

# Where an error is: FastAPI's `loc`, e.g. ("body", "batch", 2, "traits", "phone").
Loc = tuple[str | int, ...]
ErrorDict = dict[str, Any]

SOURCE = "api"  # EventRecord.source of events that came through this API
PROFILE_TRAITS = ("email", "phone", "timezone", "locale")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)

IdJsonSchema = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": 255},
            {"type": "integer"},
            {"type": "null"},
        ]
    }
)
MessageIdText = Annotated[str, Field(min_length=1, max_length=255)]
Json = dict[str, JsonValue]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


# What the profile traits must look like (the store's own checks, as JSON Schema). The time zone
# is an IANA name; the list is too long for the schema, so it is only described.
TraitsJsonSchema = WithJsonSchema(
    _nullable(
        {
            "type": "object",
            "additionalProperties": True,
            "properties": {
                "email": _nullable(
                    {"type": "string", "maxLength": 320, "pattern": f"^{EMAIL.pattern}$"}
                ),
                "phone": _nullable({"type": "string", "pattern": f"^{E164.pattern}$"}),
                "timezone": _nullable(
                    {"type": "string", "description": "An IANA time zone, e.g. Europe/Paris."}
                ),
                "locale": _nullable(
                    {"type": "string", "maxLength": 35, "pattern": f"^{LOCALE.pattern}$"}
                ),
            },
        }
    )
)


# Years 1971-2998 in the schema, so that any offset stays within the accepted 1970-2999 in UTC.
TimestampJsonSchema = WithJsonSchema(
    _nullable({"type": "string", "format": "date-time", "pattern": "^(19[7-9][1-9]|2[0-9]{3})-"})
)


def _identified(examples: list[dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` of a message that needs a userId or an anonymousId."""
    present = {
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "\\S"},
            {"type": "integer"},
        ]
    }

    def extra(schema: dict[str, Any]) -> None:
        schema["anyOf"] = [
            {"required": [name], "properties": {name: present}}
            for name in ("userId", "anonymousId")
        ]
        if examples:
            schema["examples"] = examples

    return extra


def _identity(value: Any) -> str | None:
    """userId / anonymousId: text, or an integer taken as its decimal text; blank is absent."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise PydanticCustomError("id_type", "must be a string (or an integer)")
    value = value.strip()
    if not value:
        return None
    if len(value) > 255:
        raise PydanticCustomError("id_too_long", "must be at most 255 characters")
    return value


def _timestamp(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    given = value
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-10:00 is past year 9999 in UTC
        value = LATEST
    if not EARLIEST <= value < LATEST:
        raise PydanticCustomError(
            "timestamp_range",
            "timestamp must be an ISO 8601 time between 1970 and 2999, got {value}",
            {"value": given.isoformat()},
        )
    return value


class SegmentMessage(BaseModel):
    """What every Segment message has."""

    model_config = ConfigDict(extra="allow")

    userId: Annotated[str | None, IdJsonSchema] = Field(
        None,
        description="Your id for the user: the contact id. Integers are taken as text.",
    )
    anonymousId: Annotated[str | None, IdJsonSchema] = Field(
        None,
        description="Used as the contact id when `userId` is absent (one of the two is required).",
    )
    messageId: MessageIdText | None = Field(
        None,
        description="Unique per message: a message seen before is not processed again, so "
        "retries are safe. Every Segment library sets one. Without it, one is derived from the "
        "message's content when it has a `timestamp`, else generated.",
    )
    timestamp: Annotated[datetime | None, TimestampJsonSchema] = Field(
        None,
        description="When it happened: ISO 8601, between 1970 and 2999 (without an offset, "
        "UTC). Default: when Rapport received it.",
    )
    context: Json | None = Field(
        None,
        description="Segment's context. Rapport reads `context.locale` and `context.timezone` "
        "on identify.",
    )
    integrations: Json | None = Field(None, description="Accepted and ignored.")

    @field_validator("userId", "anonymousId", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> str | None:
        return _identity(value)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _timestamp(value)

    @property
    def contact_id(self) -> str | None:
        return self.userId or self.anonymousId


class TrackFields(BaseModel):
    event: str = Field(
        min_length=1,
        max_length=255,
        description="The event name, as journeys name it (`trigger.event`, `wait_for`, "
        "`goal`, `exit_on`).",
    )
    properties: Json | None = Field(
        None, description="The event's properties: `event.properties.*` in journeys."
    )


class IdentifyFields(BaseModel):
    traits: Annotated[Json | None, TraitsJsonSchema] = Field(
        None,
        description="The contact's traits. `email`, `phone` (E.164), `timezone` (IANA) and "
        "`locale` go to the profile and are validated; every other trait is merged into the "
        "contact's attributes (`contact.<trait>` in journeys). Traits in `context.traits` "
        "(where RudderStack's SDKs put them) count too; these win.",
    )


TRACK_EXAMPLE: dict[str, Any] = {
    "userId": "alice",
    "event": "order_placed",
    "properties": {"order_id": "o-1001", "total": 42.5, "currency": "EUR"},
    "timestamp": "2025-03-01T09:30:00Z",
    "messageId": "3c1a4f2e-9b7d-4e51-8a0c-5d2f6e7b8c90",
    "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
}
IDENTIFY_EXAMPLE: dict[str, Any] = {
    "userId": "alice",
    "traits": {
        "email": "alice@example.com",
        "phone": "+12125550143",
        "timezone": "America/New_York",
        "first_name": "Alice",
        "plan": "starter",
    },
    "context": {"locale": "en-US"},
    "messageId": "f0e1d2c3-b4a5-4678-9abc-def012345678",
}


class TrackRequest(TrackFields, SegmentMessage):
    """A `track` call: something the user did."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_identified([TRACK_EXAMPLE]))


class IdentifyRequest(IdentifyFields, SegmentMessage):
    """An `identify` call: who the user is."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_identified([IDENTIFY_EXAMPLE]))


class BatchTrack(TrackFields, SegmentMessage):
    model_config = ConfigDict(extra="allow", json_schema_extra=_identified([]))
    type: Literal["track"]


class BatchIdentify(IdentifyFields, SegmentMessage):
    model_config = ConfigDict(extra="allow", json_schema_extra=_identified([]))
    type: Literal["identify"]


class BatchOther(SegmentMessage):
    """Segment message types Rapport accepts and ignores."""

    type: Literal["page", "screen", "group", "alias"]


BatchItem = Annotated[BatchTrack | BatchIdentify | BatchOther, Field(discriminator="type")]


class BatchRequest(BaseModel):
    """Many messages in one call, processed in order. What the Segment libraries send."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "batch": [
                        {"type": "identify", **IDENTIFY_EXAMPLE},
                        {"type": "track", **TRACK_EXAMPLE},
                    ],
                    "sentAt": "2025-03-01T09:30:01Z",
                }
            ]
        },
    )

    batch: list[BatchItem] = Field(
        description="The messages, each with a `type`: `track` and `identify` are processed; "
        "`page`, `screen`, `group` and `alias` are accepted and ignored."
    )
    context: Json | None = Field(
        None, description="Context shared by every message (a message's own keys win)."
    )


# `/v1/batch` also takes one message with its `type`: what webhook destinations (Segment's
# Webhooks, RudderStack's Webhook) post, one call each. Union tags, dropped from error paths.
BATCH_TAG = "batch-request"
MESSAGE_TAG = "single-message"


def _batch_or_message(value: Any) -> str:
    if isinstance(value, dict) and "batch" not in value and "type" in value:
        return MESSAGE_TAG
    return BATCH_TAG


BatchBody = Annotated[
    Annotated[BatchRequest, Tag(BATCH_TAG)] | Annotated[BatchItem, Tag(MESSAGE_TAG)],
    Discriminator(_batch_or_message),
]


class Ack(BaseModel):
    """The event was stored and everything it causes was accepted by Temporal."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"success": True}]})

    success: Literal[True] = True


# --- prepare: messages -> store records -------------------------------------------------------


@dataclass(frozen=True)
class Identify:
    contact: ContactRecord


@dataclass(frozen=True)
class Track:
    event: EventRecord


@dataclass(frozen=True)
class Ignored:
    type: str


Prepared = Identify | Track | Ignored


class InvalidMessages(Exception):
    """What `prepare` found wrong, as FastAPI-style error dicts (loc, msg, type)."""

    def __init__(self, errors: list[ErrorDict]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def _error(loc: Loc, kind: str, msg: str) -> ErrorDict:
    return {"loc": loc, "msg": msg, "type": kind}


def _text_problems(value: Any, loc: Loc, found: list[ErrorDict]) -> None:
    """Text no database can hold (NUL, lone surrogates) and numbers JSON cannot carry."""
    if isinstance(value, str):
        if "\x00" in value:
            found.append(_error(loc, "nul_character", "must not contain NUL (\\u0000) characters"))
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                found.append(_error(loc, "invalid_unicode", "must be valid Unicode text"))
    elif isinstance(value, float) and not math.isfinite(value):
        found.append(_error(loc, "finite_number", "must be a finite number (not NaN/Infinity)"))
    elif isinstance(value, dict):
        for key, item in value.items():
            _text_problems(key, (*loc, key), found)
            _text_problems(item, (*loc, str(key)), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _text_problems(item, (*loc, index), found)


def _message_id(message: SegmentMessage, kind: str, contact_id: str, payload: Any) -> str:
    if message.messageId is not None:
        return message.messageId
    if message.timestamp is None:
        return f"rapport-{uuid.uuid4()}"
    canonical = json.dumps(
        [kind, contact_id, message.timestamp.isoformat(), payload],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return "rapport-" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _profile(
    contact_id: str, traits: dict[str, tuple[JsonValue, Loc]], context: Json, loc: Loc
) -> tuple[ContactRecord | None, list[ErrorDict]]:
    """The contact an identify describes: `traits` maps each trait to its value and where it
    came from; `context.locale` and `context.timezone` fill in for missing traits."""
    fields: dict[str, Any] = {}
    where: dict[str, Loc] = {}
    for name in PROFILE_TRAITS:
        if name in traits:
            fields[name], where[name] = traits[name]
        elif name in ("locale", "timezone") and name in context:
            fields[name], where[name] = context[name], (*loc, "context", name)
    attributes = {k: value for k, (value, _) in traits.items() if k not in PROFILE_TRAITS}
    try:
        record = ContactRecord(id=contact_id, attributes=attributes, **fields)
    except ValidationError as error:
        errors = [
            _error(
                where.get(str(e["loc"][0]), (*loc, *e["loc"])) if e["loc"] else loc,
                e["type"],
                e["msg"],
            )
            for e in error.errors(include_url=False, include_input=False)
        ]
        return None, errors
    return record, []


def prepare_one(
    message: SegmentMessage, kind: str, loc: Loc, shared_context: Json | None = None
) -> tuple[Prepared | None, list[ErrorDict]]:
    """One validated message as the record to store, or the errors that keep it out."""
    if kind not in ("track", "identify"):
        return Ignored(kind), []
    errors: list[ErrorDict] = []
    contact_id = message.contact_id
    if contact_id is None:
        errors.append(_error((*loc, "userId"), "missing", "userId or anonymousId is required"))
    for name in ("userId", "anonymousId", "messageId"):
        _text_problems(getattr(message, name), (*loc, name), errors)
    context: Json = {**(shared_context or {}), **(message.context or {})}
    if kind == "track":
        assert isinstance(message, TrackFields)
        properties = message.properties or {}
        _text_problems(message.event, (*loc, "event"), errors)
        _text_problems(properties, (*loc, "properties"), errors)
        if errors or contact_id is None:
            return None, errors
        event = EventRecord(
            contact_id=contact_id,
            name=message.event,
            properties=properties,
            timestamp=message.timestamp or datetime.now(UTC),
            source=SOURCE,
            message_id=_message_id(message, kind, contact_id, [message.event, properties]),
        )
        return Track(event), []
    assert isinstance(message, IdentifyFields)
    # Traits at the top level (Segment) win over `context.traits` (where some senders, such as
    # RudderStack's SDKs, put an identify's traits).
    traits: dict[str, tuple[JsonValue, Loc]] = {}
    for source in (("context", "traits"), ("traits",)):
        given = context.get("traits") if source[0] == "context" else message.traits
        if isinstance(given, dict):
            _text_problems(given, (*loc, *source), errors)
            traits.update({key: (value, (*loc, *source, key)) for key, value in given.items()})
    for name in ("locale", "timezone"):
        if name in context:
            _text_problems(context[name], (*loc, "context", name), errors)
    if errors or contact_id is None:
        return None, errors
    record, errors = _profile(contact_id, traits, context, loc)
    return (Identify(record) if record is not None else None), errors


def prepare(
    items: list[tuple[SegmentMessage, str, Loc]], shared: Json | None = None
) -> list[Prepared]:
    """Every message checked before any is stored; `InvalidMessages` lists all problems."""
    prepared: list[Prepared] = []
    errors: list[ErrorDict] = []
    for message, kind, loc in items:
        one, found = prepare_one(message, kind, loc, shared)
        errors.extend(found)
        if one is not None:
            prepared.append(one)
    if errors:
        raise InvalidMessages(errors)
    return prepared
