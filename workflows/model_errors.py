"""Pydantic errors mapped back to the YAML: the right node, a plain message, a suggestion.

Also what can still be checked when the model fails (`salvage`, `check_raw_steps`), so one
run of `rapport validate` reports every error.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from workflows.diagnostics import Reporter, suggest
from workflows.model import (
    ALTERNATIVES_TAG,
    CONDITION_ALTERNATIVE_TAG,
    EVENT_ALTERNATIVE_TAG,
    ONE_EVENT_TAG,
    STEP_KINDS,
    BranchCase,
    CalendarTime,
    ContentVariant,
    DateTrigger,
    EventCondition,
    EventTrigger,
    GoalCondition,
    Journey,
    JourneySettings,
    ManualTrigger,
    SegmentAtTrigger,
    SegmentScheduleTrigger,
    WaitForCondition,
    WaitForEvent,
    WinnerRule,
)
from workflows.source import KEY
from workflows.source import Path as YamlPath

_VALID_STEP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


_TRIGGER_MODELS: dict[str, type[BaseModel]] = {
    "event": EventTrigger,
    "schedule": SegmentScheduleTrigger,
    "at": SegmentAtTrigger,
    "date": DateTrigger,
    "manual": ManualTrigger,
}
_MODELS: tuple[type[BaseModel], ...] = (
    Journey,
    *STEP_KINDS.values(),
    *_TRIGGER_MODELS.values(),
    JourneySettings,
    BranchCase,
    CalendarTime,
    EventCondition,
    GoalCondition,
    WaitForEvent,
    WaitForCondition,
    ContentVariant,
    WinnerRule,
)
_ALTERNATIVE_MODELS: dict[str, type[BaseModel]] = {
    EVENT_ALTERNATIVE_TAG: WaitForEvent,
    CONDITION_ALTERNATIVE_TAG: WaitForCondition,
}


def _keys(model: type[BaseModel]) -> set[str]:
    return {name if info.alias is None else info.alias for name, info in model.model_fields.items()}


_ALL_KEYS = sorted(set().union(*(_keys(model) for model in _MODELS)))


def _untagged(loc: tuple[int | str, ...]) -> tuple[tuple[int | str, ...], type[BaseModel] | None]:
    """Drop the union tags pydantic inserts into a `loc`; also the model holding the last key.

    Steps and triggers are discriminated unions, so an error inside the third step's `send`
    model is at `("steps", 2, "send", "to")`, the tag `send` being no key of the YAML.
    """
    parts = list(loc)
    model: type[BaseModel] | None = Journey
    if len(parts) >= 3 and parts[0] == "steps" and isinstance(parts[1], int):
        tag = parts[2]
        if isinstance(tag, str) and tag in STEP_KINDS:
            model = STEP_KINDS[tag]
            del parts[2]
            if tag == "branch" and len(parts) >= 5 and isinstance(parts[3], int):
                model = BranchCase
            if tag == "wait_until" and len(parts) >= 4 and parts[3] in ("calendar", "text"):
                if parts[3] == "calendar":
                    model = CalendarTime
                del parts[3]
            if tag == "wait_for" and parts[2:3] == ["wait_for"]:
                model = _untag_wait_for(parts)
            elif tag == "send" and len(parts) >= 5 and parts[2] == "variants":
                model = ContentVariant
            elif tag == "send" and len(parts) >= 4 and parts[2] == "winner":
                model = WinnerRule
    elif len(parts) >= 2 and parts[0] == "trigger":
        tag = parts[1]
        if isinstance(tag, str) and tag in _TRIGGER_MODELS:
            model = _TRIGGER_MODELS[tag]
            del parts[1]
    elif len(parts) >= 2 and parts[0] == "settings":
        model = JourneySettings
    elif len(parts) >= 2 and parts[0] == "goal":
        model = GoalCondition
    elif len(parts) >= 2 and parts[0] == "exit_on":
        model = EventCondition
    return tuple(parts), model


def _untag_wait_for(parts: list[int | str]) -> type[BaseModel]:
    """Drop the tags of `wait_for`'s own unions (one event or a list; event or condition) from
    `parts` = ["steps", N, "wait_for", …]; the model holding the last key."""
    if parts[3:4] == [ONE_EVENT_TAG]:
        del parts[3]
    elif parts[3:4] == [ALTERNATIVES_TAG]:
        del parts[3]
        if len(parts) >= 5 and isinstance(parts[3], int) and parts[4] in _ALTERNATIVE_MODELS:
            model = _ALTERNATIVE_MODELS[str(parts[4])]
            del parts[4]
            return model
    return STEP_KINDS["wait_for"]


def _resolve(raw: Any, loc: tuple[int | str, ...]) -> YamlPath:
    """Follow a tag-free pydantic `loc` through the raw data, as far as the data goes."""
    path: list[Hashable] = []
    current = raw
    for part in loc:
        if isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
            continue
        key = "else" if part == "else_" else part
        if isinstance(current, dict) and key in current:
            path.append(key)
            current = current[key]
            continue
        break
    return tuple(path)


def _field_name(loc: tuple[int | str, ...]) -> str:
    for part in reversed(loc):
        if isinstance(part, str) and part != "[key]":
            return "else" if part == "else_" else part
    return ""


def _kind_name(model: type[BaseModel] | None) -> str:
    for kind, cls in STEP_KINDS.items():
        if cls is model:
            return f" of a {kind} step"
    if model in _TRIGGER_MODELS.values():
        return " in the trigger"
    if model is JourneySettings:
        return " in settings"
    if model is BranchCase:
        return " in a branch case"
    if model is CalendarTime:
        return " in wait_until"
    if model in _ALTERNATIVE_MODELS.values():
        return " in a wait_for alternative"
    if model is ContentVariant:
        return " in a variant"
    if model is WinnerRule:
        return " in a winner rule"
    return ""


def _home(model: type[BaseModel]) -> str:
    """What `model` is called in "'key' is a key of …"."""
    for kind, cls in STEP_KINDS.items():
        if cls is model:
            return f"a {kind} step"
    names: dict[type[BaseModel], str] = {
        Journey: "the journey (top level)",
        JourneySettings: "settings",
        BranchCase: "a branch case",
        CalendarTime: "wait_until {time, days}",
        EventTrigger: "an event trigger",
        SegmentScheduleTrigger: "a segment + schedule trigger",
        SegmentAtTrigger: "a segment + at trigger",
        DateTrigger: "a date trigger",
        EventCondition: "goal/exit_on",
        GoalCondition: "goal",
        WaitForEvent: "a wait_for event alternative",
        WaitForCondition: "a wait_for condition alternative",
        ContentVariant: "a variant",
        WinnerRule: "a winner rule",
    }
    return names.get(model, "the trigger")


def _unknown_key_hint(key: str, model: type[BaseModel] | None) -> str:
    """A close key of the same place; else, for a key valid elsewhere, where it belongs (not
    "did you mean" the very word); else a close key of any place."""
    close = suggest(key, _keys(model) if model is not None else _ALL_KEYS)
    if close:
        return close
    places = [m for m in _MODELS if m is not model and key in _keys(m)]
    # A key a subclass inherits (goal's `when`, from goal/exit_on) is named once, at its base.
    places = [m for m in places if not any(m is not o and issubclass(m, o) for o in places)]
    homes = list(dict.fromkeys(_home(m) for m in places))
    if homes:
        return f" ('{key}' is a key of {', '.join(homes)})"
    return suggest(key, [k for k in _ALL_KEYS if k != key])


def report_model_error(
    report: Reporter,
    raw: Any,
    detail: ErrorDetails,
    *,
    keys: Iterable[str] | None = None,
) -> None:
    """One pydantic error at its YAML node. `keys`: the keys valid where the error is, for
    "did you mean" (default: the journey language's, with where a key belongs)."""
    loc, model = _untagged(tuple(detail["loc"]))
    path = _resolve(raw, loc)
    kind = detail["type"]
    message = detail["msg"].removeprefix("Value error, ")
    field_name = _field_name(loc)
    value = detail.get("input")
    if loc and loc[-1] == "[key]":
        # A key of a mapping (e.g. a split target): loc is (..., field, the key, "[key]").
        report.error(path, f"{_field_name(loc[:-2])}: {message}", key=True)
    elif kind == "string_pattern_mismatch" and field_name == "webhook":
        report.error(path, f"webhook: expected an http:// or https:// URL, got {value!r}")
    elif kind == "missing":
        report.error(path, f"missing required key '{field_name}'{_kind_name(model)}")
    elif kind == "extra_forbidden":
        hint = (
            suggest(field_name, keys) if keys is not None else _unknown_key_hint(field_name, model)
        )
        report.error(path, f"unknown key '{field_name}'{_kind_name(model)}{hint}", key=True)
    elif kind == "invalid_step":
        step_message, key = _step_kind_problem(value)
        if key is None:
            report.error(path, step_message)
        else:
            report.error((*path, key), step_message, key=True)
    elif kind == "invalid_trigger":
        if isinstance(value, str):
            report.error(path, f"unknown trigger '{value}'{suggest(value, ['manual'])}: {message}")
        else:
            report.error(path, message)
    elif kind in ("literal_error", "enum"):
        expected = message.removeprefix("Input should be ")
        report.error(path, f"{field_name}: expected {expected}, got {value!r}")
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        report.error(path, f"{field_name or 'value'}: expected a mapping, got {value!r}")
    elif kind == "too_short" and field_name == "wait_for":
        report.error(path, "wait_for: an empty list: name at least one event or condition")
    elif kind == "list_type":
        report.error(path, f"{field_name}: expected a list, got {value!r}")
    elif kind == "string_type":
        hint = _string_hint(field_name, value)
        report.error(path, hint or f"{field_name}: expected text, got {value!r}")
    elif kind == "timezone_aware":
        report.error(path, f"{field_name}: needs a UTC offset, e.g. 2026-12-01T17:00:00+00:00")
    elif kind.startswith(("datetime_", "date_")):
        report.error(
            path,
            f"{field_name}: expected an ISO 8601 timestamp with a UTC offset, "
            f"e.g. 2026-12-01T17:00:00+00:00, got {value!r}",
        )
    else:
        report.error(
            path, f"{field_name}: {message[0].lower()}{message[1:]}" if field_name else message
        )


def _string_hint(field_name: str, value: Any) -> str:
    """YAML 1.1 reads an unquoted 21:00 as the number 1260 (base 60), `no` as false: say so."""
    if isinstance(value, bool):
        return (
            f"{field_name}: expected text, got {str(value).lower()}: YAML reads unquoted "
            'yes/no/on/off/true/false as booleans; quote the text, e.g. "no"'
        )
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and field_name
        in (
            "wait_until",
            "quiet_hours",
        )
    ):
        clock = f"{value // 60:02d}:{value % 60:02d}"
        return (
            f"{field_name}: YAML reads an unquoted {clock} as the number {value}; "
            f'quote times of day: "{clock}"'
        )
    return ""


def _step_kind_problem(value: Any) -> tuple[str, str | None]:
    """Why a mapping is no step, and the key to point at (None: the step itself)."""
    kinds = ", ".join(STEP_KINDS)
    if not isinstance(value, dict):
        return f"a step must be a mapping with one action key ({kinds})", None
    present = [kind for kind in STEP_KINDS if kind in value]
    if len(present) > 1:
        return (
            f"a step has one action, this one has {len(present)} ({', '.join(present)}); "
            "split it into separate steps",
            present[1],
        )
    unknown = [str(key) for key in value if key not in ("id", "next")]
    for key in unknown:
        suggestion = suggest(key, STEP_KINDS)
        if suggestion:
            return f"unknown step kind '{key}'{suggestion}", key
    return f"a step needs one action key: {kinds}", None


def salvage(raw: dict[str, Any], details: list[ErrorDetails]) -> Journey | None:
    """The journey with its invalid parts replaced by neutral stand-ins, when that is possible.

    Invalid optional top-level keys are dropped, an invalid name or trigger is replaced, and an
    invalid step becomes a placeholder keeping its id (so jumps and `steps.ID` still resolve).
    The result only serves the expression and template checks; it is never run.
    """
    data = dict(raw)
    broken_steps: set[int] = set()
    for detail in details:
        loc, _ = _untagged(tuple(detail["loc"]))
        if not loc:
            return None
        if loc[0] == "steps":
            if len(loc) < 2 or not isinstance(loc[1], int):
                return None
            broken_steps.add(loc[1])
        elif loc[0] == "name":
            data["name"] = "journey"
        elif loc[0] == "trigger":
            data["trigger"] = "manual"
        else:
            data.pop(str(loc[0]), None)
    steps = data.get("steps")
    if not isinstance(steps, list):
        return None
    steps = list(steps)
    for index in broken_steps:
        stand_in: dict[str, Any] = {"update": {"_": None}}
        step_id = steps[index].get("id") if isinstance(steps[index], dict) else None
        if isinstance(step_id, str) and _VALID_STEP_ID.match(step_id):
            stand_in["id"] = step_id
        steps[index] = stand_in
    data["steps"] = steps
    try:
        return Journey.model_validate(data)
    except ValidationError:
        return None


def check_raw_steps(report: Reporter, raw: dict[str, Any]) -> None:
    """Jump targets, checked on raw data when the model failed, so they're reported too."""
    steps = raw.get("steps")
    if not isinstance(steps, list):
        return
    ids = {str(step["id"]) for step in steps if isinstance(step, dict) and step.get("id")}
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        for key, target, path in _raw_jumps(step, index):
            # An ill-formed id is the model's error already; only well-formed ones are looked up.
            if isinstance(target, str) and _VALID_STEP_ID.match(target) and target not in ids:
                report.error(path, f"{key}: no step has id '{target}'{suggest(target, ids)}")


def _raw_jumps(step: dict[str, Any], index: int) -> Iterable[tuple[str, Any, YamlPath]]:
    for key in ("next", "on_timeout", "else"):
        if key in step:
            yield key, step[key], ("steps", index, key)
    branch = step.get("branch")
    if isinstance(branch, list):
        for case_index, case in enumerate(branch):
            if isinstance(case, dict) and "goto" in case:
                yield "goto", case["goto"], ("steps", index, "branch", case_index, "goto")
    alternatives = step.get("wait_for")
    if isinstance(alternatives, list):
        for n, alternative in enumerate(alternatives):
            if isinstance(alternative, dict) and "next" in alternative:
                yield "next", alternative["next"], ("steps", index, "wait_for", n, "next")
    split = step.get("split")
    if isinstance(split, dict):
        for target in split:
            yield "split", target, ("steps", index, "split", target, KEY)
