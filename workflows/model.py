"""The journey language (SPEC §3) as pydantic v2 models.

Every model is frozen and forbids unknown keys; field descriptions become the JSON Schema that
`rapport schema` prints for editors. Step kinds and trigger kinds are discriminated unions keyed
by which action key a mapping holds, which is how marketers write them (`send: email`, not
`kind: send`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    Tag,
    WithJsonSchema,
    model_serializer,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from workflows.diagnostics import check_lint_code
from workflows.durations import (
    CLOCK_PATTERN,
    DURATION_PATTERN,
    DurationError,
    FrequencyCap,
    QuietHours,
    format_duration,
    parse_clock,
    parse_duration,
)


@dataclass(frozen=True, eq=False)  # hashed by identity: typing hashes Annotated metadata
class AlsoAccepts:
    """JSON Schema metadata: the value may also be written as `schema`, a shorthand that a
    `BeforeValidator` expands (`goal: order_placed`, `trigger: manual`, `exit:` with no value).

    Editors and `jsonschema` then accept what the compiler accepts.
    """

    schema: dict[str, Any]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [self.schema, handler(core_schema)]}


class LanguageModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _parse_duration(value: object, *, allow_negative: bool, allow_zero: bool = False) -> object:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"a duration needs a unit: write {value}d, {value}h or {value}m")
    return parse_duration(str(value), allow_negative=allow_negative, allow_zero=allow_zero)


_DURATION_SCHEMA = WithJsonSchema(
    {"type": "string", "pattern": DURATION_PATTERN, "examples": ["30m", "2h", "3d", "1w", "P3D"]}
)
_DURATION_TEXT = PlainSerializer(format_duration, return_type=str, when_used="always")

# A wait is longer than zero; an offset from a moment may be zero (the moment itself).
Duration = Annotated[
    timedelta,
    BeforeValidator(lambda v: _parse_duration(v, allow_negative=False)),
    _DURATION_TEXT,
    _DURATION_SCHEMA,
]
Offset = Annotated[
    timedelta,
    BeforeValidator(lambda v: _parse_duration(v, allow_negative=False, allow_zero=True)),
    _DURATION_TEXT,
    _DURATION_SCHEMA,
]
SignedDuration = Annotated[
    timedelta,
    BeforeValidator(lambda v: _parse_duration(v, allow_negative=True, allow_zero=True)),
    _DURATION_TEXT,
    _DURATION_SCHEMA,
]

_STEP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_EVENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")


def _check_step_id(value: str) -> str:
    if not _STEP_ID.match(value):
        raise ValueError(
            f"invalid step id {value!r}: use letters, digits, '_' or '-', starting with a letter"
        )
    return value


def check_event_name(value: str) -> str:
    if not _EVENT_NAME.match(value):
        raise ValueError(f"invalid event name {value!r}")
    return value


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as Europe/Paris"
        ) from None
    return value


def _check_cron(value: str) -> str:
    if not croniter.is_valid(value):
        raise ValueError(f"invalid cron schedule {value!r}: use five fields, e.g. '0 9 * * *'")
    return value


def _check_quiet_hours(value: str) -> str:
    try:
        QuietHours.parse(value)
    except DurationError as error:
        if "start and end are the same" in str(error):
            raise
        raise ValueError(
            f'invalid quiet hours {value!r}: use HH:MM-HH:MM in 24-hour time, e.g. "21:00-08:00"'
        ) from None
    return value


def _check_frequency_cap(value: str) -> str:
    FrequencyCap.parse(value)
    return value


def _check_clock(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        clock = f"{value // 60:02d}:{value % 60:02d}"
        raise ValueError(
            f'an unquoted {clock} is the number {value} to YAML; quote times of day: "{clock}"'
        )
    if not isinstance(value, str):
        raise ValueError(f'expected a time of day such as "09:00", got {value!r}')
    parse_clock(value)
    return value.strip()


Clock = Annotated[
    str,
    PlainValidator(_check_clock),
    WithJsonSchema({"type": "string", "pattern": CLOCK_PATTERN, "examples": ["09:00"]}),
]

StepId = Annotated[str, AfterValidator(_check_step_id), Field(description="A step id.")]
EventName = Annotated[str, AfterValidator(check_event_name)]
Expression = Annotated[
    str,
    Field(
        min_length=1,
        description="A Jinja expression, written bare (no {{ }}), e.g. contact.vip == true.",
    ),
]


class LintSettings(LanguageModel):
    ignore: list[Annotated[str, AfterValidator(check_lint_code)]] = Field(
        default_factory=list,
        description="Lint codes not to report here, e.g. [wait-at-end] (docs/journeys.md).",
    )


# Not part of a journey's content (its version) nor of its plan: it only quiets `validate`.
LINT_FIELD = Field(None, exclude=True, description="Silence lints here: {ignore: [CODE, ...]}.")


# ---------------------------------------------------------------------------------------------
# Triggers


class EventTrigger(LanguageModel):
    event: EventName = Field(description="The event whose arrival starts a run for its contact.")
    when: Expression | None = Field(None, description="Only events for which this is true start.")
    key: str | None = Field(
        None,
        description=(
            "A path into the event (e.g. properties.order_id): one run per contact and key value."
        ),
    )


class SegmentScheduleTrigger(LanguageModel):
    segment: Expression = Field(description="Contacts for whom this is true enter at each tick.")
    schedule: Annotated[str, AfterValidator(_check_cron)] = Field(
        description="A cron schedule (five fields, UTC), e.g. '0 9 * * *' for daily at 09:00."
    )
    local_time: bool = Field(
        False,
        description="Read the schedule on each contact's own clock (their zone, else "
        "settings.timezone): 09:00 where the contact lives, not 09:00 UTC.",
    )


def _broadcast_at(value: object) -> datetime | timedelta:
    """A timestamp with its UTC offset, or a duration (`10m`): that long after the journey is
    first deployed. One validator for both, so a mistake gets one message, not one per kind."""
    expected = (
        "expected an ISO 8601 timestamp with a UTC offset, e.g. 2026-12-01T17:00:00+00:00, "
        f"or a duration after deployment such as 10m, got {value!r}"
    )
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        try:
            if not re.match(r"^\s*\d{4}-", value):
                return parse_duration(value)
            value = datetime.fromisoformat(value.strip())
        except ValueError:  # DurationError included
            raise ValueError(expected) from None
    if not isinstance(value, datetime):
        raise ValueError(expected)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a UTC offset, e.g. 2026-12-01T17:00:00+00:00")
    return value


def _broadcast_at_text(value: datetime | timedelta) -> str:
    """`10m`, or the timestamp as pydantic writes one (UTC as `Z`): the plan's version hashes it."""
    if isinstance(value, timedelta):
        return format_duration(value)
    return value.isoformat().replace("+00:00", "Z")


class SegmentAtTrigger(LanguageModel):
    segment: Expression = Field(description="Contacts for whom this is true enter at `at`.")
    at: Annotated[
        datetime | timedelta,
        PlainValidator(_broadcast_at),
        PlainSerializer(_broadcast_at_text, return_type=str, when_used="always"),
        WithJsonSchema(
            {
                "type": "string",
                "examples": ["2026-12-01T17:00:00+00:00", "10m"],
            }
        ),
    ] = Field(
        description="A one-time broadcast instant (ISO 8601 with a UTC offset), or a duration "
        "(10m): that long after the journey is first deployed (`rapport run`, `rapport sync`)."
    )


_CONTACT_ATTRIBUTE = re.compile(r"^contact\.([A-Za-z_][A-Za-z0-9_]*)$")


def _check_date_attribute(value: str) -> str:
    if not _CONTACT_ATTRIBUTE.match(value.strip()):
        raise ValueError(
            f"expected contact.ATTRIBUTE, an attribute or trait holding a date "
            f"(e.g. contact.birthday), got {value!r}"
        )
    return value.strip()


def _whole_days(value: timedelta | None) -> timedelta | None:
    if value is not None and value % timedelta(days=1):
        raise ValueError(
            f"use whole days, e.g. -7d (the time of day is `at`), got {format_duration(value)}"
        )
    return value


class DateTrigger(LanguageModel):
    date: Annotated[str, AfterValidator(_check_date_attribute)] = Field(
        description="contact.ATTRIBUTE: an attribute or trait holding a date or timestamp "
        "(e.g. contact.birthday)."
    )
    every: Literal["year", "once"] = Field(
        "year", description="year: each anniversary of the date (default); once: the date itself."
    )
    offset: Annotated[SignedDuration | None, AfterValidator(_whole_days)] = Field(
        None, description="Whole days before (negative, -7d) or after the date."
    )
    at: Clock = Field("09:00", description="The local time of day in the contact's zone.")

    @property
    def attribute(self) -> str:
        return self.date.removeprefix("contact.")

    @property
    def offset_days(self) -> int:
        return self.offset.days if self.offset is not None else 0


class ManualTrigger(LanguageModel):
    manual: Literal[True] = Field(True, description="Runs start only from the CLI or the API.")


def _trigger_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "manual" if value == "manual" else None
    if isinstance(value, dict):
        if "event" in value:
            return "event"
        if "date" in value:
            return "date"
        if "segment" in value and "schedule" in value:
            return "schedule"
        if "segment" in value and "at" in value:
            return "at"
        if "manual" in value:
            return "manual"
        return None
    kinds: dict[type, str] = {
        EventTrigger: "event",
        SegmentScheduleTrigger: "schedule",
        SegmentAtTrigger: "at",
        DateTrigger: "date",
        ManualTrigger: "manual",
    }
    return kinds.get(type(value))


def _manual_from_string(value: Any) -> Any:
    return {"manual": True} if value == "manual" else value


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[SegmentScheduleTrigger, Tag("schedule")]
    | Annotated[SegmentAtTrigger, Tag("at")]
    | Annotated[DateTrigger, Tag("date")]
    | Annotated[
        ManualTrigger,
        BeforeValidator(_manual_from_string),
        AlsoAccepts({"const": "manual"}),
        Tag("manual"),
    ],
    Discriminator(
        _trigger_kind,
        custom_error_type="invalid_trigger",
        custom_error_message=(
            "a trigger is one of: event: NAME; segment: EXPR with schedule: CRON; "
            "segment: EXPR with at: ISO-8601; date: contact.ATTRIBUTE; or manual"
        ),
    ),
]


class EventCondition(LanguageModel):
    event: EventName = Field(description="The event name.")
    when: Expression | None = Field(None, description="Only events for which this is true count.")


def _event_condition(value: Any) -> Any:
    return {"event": value} if isinstance(value, str) else value


EventSpec = Annotated[
    EventCondition,
    BeforeValidator(_event_condition),
    AlsoAccepts({"type": "string", "description": "An event name."}),
]


class GoalCondition(EventCondition):
    within: Duration | None = Field(
        None,
        description="An attribution window from entry (e.g. 14d): a goal event after it does "
        "not convert the run.",
    )


GoalSpec = Annotated[
    GoalCondition,
    BeforeValidator(_event_condition),
    AlsoAccepts({"type": "string", "description": "An event name."}),
]


# ---------------------------------------------------------------------------------------------
# Steps


class StepBase(LanguageModel):
    id: StepId | None = Field(
        None, description="Unique within the journey; required for jump targets."
    )
    next: StepId | None = Field(None, description="The step to go to after this one.")
    lint: LintSettings | None = LINT_FIELD


# The key `rapport report journey` lists a step's winning arm under, beside the arms.
RESERVED_ARM = "winner"
WINNER_METRICS = ("opened", "clicked", "converted")


def _check_arm_id(value: str) -> str:
    if not _STEP_ID.match(value):
        raise ValueError(
            f"invalid variant name {value!r}: use letters, digits, '_' or '-', "
            "starting with a letter"
        )
    if value == RESERVED_ARM:
        raise ValueError(f"'{RESERVED_ARM}' cannot name a variant (reports list the winner there)")
    return value


ArmId = Annotated[str, AfterValidator(_check_arm_id), Field(description="A variant's name.")]


class ContentVariant(LanguageModel):
    template: str = Field(description="The template this variant sends, e.g. win_back/offer_a.")
    weight: Annotated[float, Field(ge=0)] = Field(
        1, description="The variant's share of contacts, relative to the others (default 1)."
    )


def _winner_after(value: object) -> int | timedelta:
    """A number of sends per variant (a positive integer), or a duration such as 3d."""
    expected = f"expected sends per variant (e.g. 1000) or a duration (e.g. 3d), got {value!r}"
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool | float):
        raise ValueError(expected)
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"needs at least 1 send per variant, got {value}")
        return value
    if isinstance(value, str):
        if value.strip().isdigit():
            return _winner_after(int(value))
        try:
            return parse_duration(value)
        except DurationError:
            raise ValueError(expected) from None
    raise ValueError(expected)


def _winner_after_text(value: int | timedelta) -> int | str:
    return format_duration(value) if isinstance(value, timedelta) else value


class WinnerRule(LanguageModel):
    metric: Literal["opened", "clicked", "converted"] = Field(
        description="What the variants compete on: opened, clicked (the message's engagement), "
        "or converted (the run reached the journey's goal)."
    )
    after: Annotated[
        int | timedelta,
        PlainValidator(_winner_after),
        PlainSerializer(_winner_after_text, when_used="always"),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "string", "pattern": DURATION_PATTERN},
                ],
                "examples": [1000, "3d"],
            }
        ),
    ] = Field(
        description="Test once every variant has this many sends, or this long after the "
        "step's first send (a duration such as 3d)."
    )
    confidence: Annotated[float, Field(ge=50, lt=100)] = Field(
        95, description="Percent (50 <= c < 100): no winner until a test reaches it."
    )


class SendStep(StepBase):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        # Editors see what the compiler checks: a template or variants, and winner only with
        # variants.
        json_schema_extra={
            "oneOf": [{"required": ["template"]}, {"required": ["variants"]}],
            "dependentRequired": {"winner": ["variants"]},
        },
    )

    send: Literal["email", "sms"] = Field(description="The channel: email or sms.")
    template: str | None = Field(
        None,
        description="Template name under templates/, e.g. onboarding/welcome "
        "(onboarding/welcome.email.j2 or .sms.j2). Required unless the step has `variants`.",
    )
    variants: dict[ArmId, ContentVariant] | None = Field(
        None,
        min_length=2,
        description="A content experiment instead of `template`: variant name -> "
        "{template, weight}; each contact gets one variant, stable per contact.",
    )
    winner: WinnerRule | None = Field(
        None,
        description="With `variants`: when a significance test on the recorded engagement "
        "picks a winner, every later send uses it.",
    )
    category: Literal["marketing", "transactional"] = Field(
        "marketing",
        description="Marketing sends honour consent, quiet hours and the frequency cap.",
    )
    to: str | None = Field(
        None,
        description="Recipient override: an address, or '{{ expr }}' (e.g. a staff inbox).",
    )

    @model_serializer(mode="wrap")
    def _without_unset_content(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A plain send's document (and so its journey's version hash) stays what it was before
        # content experiments existed: the keys a step does not use are left out.
        data = handler(self)
        if isinstance(data, dict):
            for key in ("template", "variants", "winner"):
                if data.get(key) is None:
                    data.pop(key, None)
        return data

    def arms(self) -> dict[str, ContentVariant]:
        """The step's variants; a plain send is one arm (named by its template)."""
        if self.variants:
            return dict(self.variants)
        return {str(self.template): ContentVariant(template=str(self.template))}

    def template_names(self) -> list[str]:
        """Every template the step may send, in order, without repeats."""
        return list(dict.fromkeys(arm.template for arm in self.arms().values()))


class WaitStep(StepBase):
    wait: Duration = Field(description="Sleep for this long: 30m, 2h, 3d, 1w or ISO 8601 (P3D).")


_CLOCK_PLUS_DAYS = re.compile(r"^\s*(\d{1,2}:\d{2})\s*\+\s*(\d+)\s*d\s*$")


class CalendarTime(LanguageModel):
    """A local time on a calendar day counted from today: `{time: "10:00", days: 2}`."""

    time: Clock = Field(description="The local time of day in the contact's zone (HH:MM).")
    days: Annotated[int, Field(ge=0, le=366)] = Field(
        description="Calendar days from today in the contact's zone: 0 today, 1 tomorrow."
    )

    def text(self) -> str:
        return f"{self.time} +{self.days}d"


def _calendar_time(value: Any) -> Any:
    """`"10:00 +2d"` is the short form of `{time: "10:00", days: 2}`."""
    if isinstance(value, str):
        match = _CLOCK_PLUS_DAYS.match(value)
        if match:
            return {"time": match[1], "days": int(match[2])}
    return value


def _wait_until_kind(value: Any) -> str:
    return "calendar" if isinstance(value, dict | CalendarTime) else "text"


WaitUntilWhen = Annotated[
    Annotated[str, Tag("text")] | Annotated[CalendarTime, Tag("calendar")],
    Discriminator(_wait_until_kind),
    BeforeValidator(_calendar_time),
]


class WaitUntilStep(StepBase):
    wait_until: WaitUntilWhen = Field(
        description="'09:00' (next 09:00 in the contact's zone), {time: '10:00', days: 2} or "
        "'10:00 +2d' (10:00 on the second calendar day from today), an ISO timestamp, or "
        "'{{ expr }}'."
    )
    offset: SignedDuration | None = Field(
        None, description="Shift the moment, e.g. -1d for the day before."
    )


class WaitForEvent(LanguageModel):
    """One alternative of a `wait_for` list: this event, if it comes first, decides the path."""

    event: EventName = Field(description="The event to wait for.")
    when: Expression | None = Field(None, description="Only events for which this is true count.")
    match: list[str] = Field(
        default_factory=list,
        description="Properties that must equal the trigger event's (e.g. cart_id).",
    )
    next: StepId | None = Field(
        None, description="Where this event leads (default: the step's next, or the next step)."
    )


class WaitForCondition(LanguageModel):
    """One alternative of a `wait_for` list: true at the start of the wait, or as soon as the
    contact's attributes or traits change so that it holds."""

    condition: Expression = Field(
        description="A condition on the contact (contact.*, count_events, last_event), e.g. "
        'contact.tier == "gold".'
    )
    next: StepId | None = Field(
        None, description="Where it leads (default: the step's next, or the next step)."
    )


WaitForAlternative = WaitForEvent | WaitForCondition

# Union tags, written so that they can be no YAML key (model_errors strips them from `loc`).
ONE_EVENT_TAG = "one event"
ALTERNATIVES_TAG = "alternatives"
EVENT_ALTERNATIVE_TAG = "event alternative"
CONDITION_ALTERNATIVE_TAG = "condition alternative"


def _alternative_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return EVENT_ALTERNATIVE_TAG
    if isinstance(value, dict):
        kinds = [key for key in ("event", "condition") if key in value]
        if len(kinds) != 1:
            return None
        return EVENT_ALTERNATIVE_TAG if kinds[0] == "event" else CONDITION_ALTERNATIVE_TAG
    if isinstance(value, WaitForEvent):
        return EVENT_ALTERNATIVE_TAG
    if isinstance(value, WaitForCondition):
        return CONDITION_ALTERNATIVE_TAG
    return None


def _waited_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return ONE_EVENT_TAG
    if isinstance(value, list | tuple):
        return ALTERNATIVES_TAG
    return None


Alternative = Annotated[
    Annotated[
        WaitForEvent,
        BeforeValidator(_event_condition),
        AlsoAccepts({"type": "string", "description": "An event name."}),
        Tag(EVENT_ALTERNATIVE_TAG),
    ]
    | Annotated[WaitForCondition, Tag(CONDITION_ALTERNATIVE_TAG)],
    Discriminator(
        _alternative_kind,
        custom_error_type="invalid_alternative",
        custom_error_message=(
            "an alternative has exactly one of `event: NAME` or `condition: EXPR`"
        ),
    ),
]

Waited = Annotated[
    Annotated[EventName, Tag(ONE_EVENT_TAG)]
    | Annotated[list[Alternative], Field(min_length=1), Tag(ALTERNATIVES_TAG)],
    Discriminator(
        _waited_kind,
        custom_error_type="invalid_wait_for",
        custom_error_message=(
            "expected an event name, or a list of alternatives "
            "(`- event: NAME` or `- condition: EXPR`)"
        ),
    ),
]

SINCE_WORDS = ("trigger", "entry")


def _since(value: object) -> object:
    """`trigger`, `entry` or a duration, kept as written (a duration checked here)."""
    expected = f"expected trigger, entry or a duration such as 7d, got {value!r}"
    if isinstance(value, str) and value in SINCE_WORDS:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"a duration needs a unit: write {value}d, {value}h or {value}m")
    if not isinstance(value, str):
        raise ValueError(expected)
    try:
        parse_duration(value)
    except DurationError:
        raise ValueError(expected) from None
    return value


Since = Annotated[
    str,
    BeforeValidator(_since),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(SINCE_WORDS)},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "examples": ["trigger", "entry", "7d"],
        }
    ),
]


class WaitForStep(StepBase):
    wait_for: Waited = Field(
        description="The event to wait for; or a list of alternatives (events, conditions): "
        "the first to happen decides the path."
    )
    timeout: Duration = Field(description="Give up after this long.")
    when: Expression | None = Field(None, description="Only events for which this is true count.")
    match: list[str] = Field(
        default_factory=list,
        description="Properties that must equal the trigger event's (e.g. cart_id).",
    )
    on_timeout: StepId | None = Field(
        None, description="Where to go on time-out (default: the next step)."
    )
    since: Since | None = Field(
        None,
        description="trigger, entry or a duration (7d): an event received that long ago (since "
        "the trigger, since the run entered) satisfies the wait at once.",
    )

    @model_serializer(mode="wrap")
    def _without_since_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        """No `since: null`: a journey's version hashes its dump, and the versions of journeys
        written before `since` existed stay what they were."""
        data = handler(self)
        if isinstance(data, dict) and data.get("since") is None:
            data.pop("since", None)
        return data

    def alternatives(self) -> tuple[WaitForAlternative, ...]:
        """The list form as written; the one-event form as its single alternative (its
        `when` and `match`, leading to the step's `next`)."""
        if isinstance(self.wait_for, str):
            return (WaitForEvent(event=self.wait_for, when=self.when, match=self.match),)
        return tuple(self.wait_for)

    def waited_events(self) -> set[str]:
        return {alt.event for alt in self.alternatives() if isinstance(alt, WaitForEvent)}

    def has_condition(self) -> bool:
        return any(isinstance(alt, WaitForCondition) for alt in self.alternatives())


class BranchCase(LanguageModel):
    when: Expression = Field(description="The condition.")
    goto: StepId = Field(description="The step to jump to when it holds.")


class BranchStep(StepBase):
    branch: list[BranchCase] = Field(min_length=1, description="The first matching `when` wins.")
    else_: StepId | None = Field(
        None, alias="else", description="Where to go when no case matches (default: next)."
    )


class SplitStep(StepBase):
    split: dict[StepId, Annotated[int, Field(gt=0)]] = Field(
        min_length=1,
        description="Step id -> weight; a contact's path is random, stable and replay-safe.",
    )


class UpdateStep(StepBase):
    update: dict[str, Any] = Field(
        min_length=1, description="Contact attributes to set; values may be '{{ expr }}'."
    )


class WebhookStep(StepBase):
    webhook: str = Field(description="The URL to call (http or https).", pattern=r"^https?://")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        "POST", description="The HTTP method."
    )
    body: dict[str, Any] | None = Field(
        None, description="A JSON body; string values may be '{{ expr }}'."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")


class ExitStep(StepBase):
    exit: Annotated[
        str,
        BeforeValidator(lambda v: "completed" if v is None else v),
        AlsoAccepts({"type": "null"}),
    ] = Field("completed", description="End the run with this outcome (default completed).")


STEP_KINDS: dict[str, type[StepBase]] = {
    "send": SendStep,
    "wait": WaitStep,
    "wait_until": WaitUntilStep,
    "wait_for": WaitForStep,
    "branch": BranchStep,
    "split": SplitStep,
    "update": UpdateStep,
    "webhook": WebhookStep,
    "exit": ExitStep,
}


def step_kind_of(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [kind for kind in STEP_KINDS if kind in value]
        return found[0] if len(found) == 1 else None
    for kind, cls in STEP_KINDS.items():
        if type(value) is cls:
            return kind
    return None


Step = Annotated[
    Annotated[SendStep, Tag("send")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitUntilStep, Tag("wait_until")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[SplitStep, Tag("split")]
    | Annotated[UpdateStep, Tag("update")]
    | Annotated[WebhookStep, Tag("webhook")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(
        step_kind_of,
        custom_error_type="invalid_step",
        custom_error_message="a step needs exactly one action key",
    ),
]


# ---------------------------------------------------------------------------------------------
# The journey


class JourneySettings(LanguageModel):
    quiet_hours: Annotated[str, AfterValidator(_check_quiet_hours)] | None = Field(
        None,
        description="HH:MM-HH:MM in the contact's local time; marketing sends wait until it ends.",
    )
    timezone: Annotated[str, AfterValidator(check_timezone)] | None = Field(
        None, description="IANA zone used when the contact has none."
    )
    frequency_cap: Annotated[str, AfterValidator(_check_frequency_cap)] | None = Field(
        None, description="Marketing messages per contact across all journeys, e.g. '3 per 7d'."
    )


def _check_reentry(value: Any) -> Any:
    if value in ("never", "always"):
        return value
    parse_duration(str(value))
    return value


Reentry = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
    AfterValidator(_check_reentry),
    Field(description="never (default), always, or a duration such as 30d between entries."),
]


class Journey(LanguageModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        title="Rapport journey",
        json_schema_extra={"$comment": "Generated by `rapport schema`."},
    )

    name: str = Field(min_length=1, description="A human name for the journey.")
    description: str | None = Field(None, description="What the journey is for.")
    status: Literal["active", "paused"] = Field(
        "active",
        description="paused: no new entries (`rapport pause` also holds runs in flight).",
    )
    trigger: Trigger = Field(description="What starts a run.")
    audience: Expression | None = Field(
        None, description="Contacts for whom this is false never enter."
    )
    reentry: Reentry = "never"
    goal: GoalSpec | None = Field(
        None,
        description="An event name or {event, when, within}: the run exits as converted "
        "(within: only during that long after entry).",
    )
    exit_on: list[EventSpec] = Field(
        default_factory=list, description="Events that end the run as exited."
    )
    holdout: Annotated[float, Field(ge=0, lt=100)] = Field(
        0, description="Percent of entrants kept as a control group that receives no messages."
    )
    data: dict[str, Any] = Field(
        default_factory=dict, description="Constants for templates and expressions, as journey.*."
    )
    settings: JourneySettings = Field(default_factory=JourneySettings)
    steps: list[Step] = Field(min_length=1, description="The steps, run in order.")
    lint: LintSettings | None = LINT_FIELD

    def reentry_after(self) -> timedelta | None:
        """None for `never`, zero for `always`, else the minimum time between entries."""
        if self.reentry == "never":
            return None
        if self.reentry == "always":
            return timedelta(0)
        return parse_duration(self.reentry)
