"""The journey compiler: YAML + templates -> `JourneyPlan`, or every diagnostic at once.

Stages, each adding diagnostics rather than stopping at the first problem:
1. YAML with source positions (syntax errors, duplicate keys);
2. the pydantic model, every error mapped back to FILE:LINE:COL;
3. semantic checks (ids, jumps, reachability, loops without a wait, expressions, templates);
4. lints (warnings).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rendering.bundle import TemplateBundle, TemplateNotFound, collect_template, lint_template
from workflows.diagnostics import Diagnostic, Severity, display_path
from workflows.durations import DurationError, parse_clock
from workflows.expressions import (
    ExpressionError,
    Scope,
    attribute_paths,
    parse_condition,
    parse_value,
)
from workflows.model import (
    STEP_KINDS,
    BranchCase,
    BranchStep,
    EventCondition,
    EventTrigger,
    ExitStep,
    Journey,
    JourneySettings,
    ManualTrigger,
    SegmentAtTrigger,
    SegmentScheduleTrigger,
    SendStep,
    SplitStep,
    UpdateStep,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
    WebhookStep,
)
from workflows.plan import JourneyPlan, assign_step_ids, template_key
from workflows.source import KEY, SourceMap, YamlProblem, load_yaml
from workflows.source import Path as YamlPath

_VALID_STEP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
CONTACT_FIELDS = frozenset(
    {"id", "email", "phone", "timezone", "locale", "created_at", "updated_at", "attributes"}
)


@dataclass
class CompileResult:
    plans: dict[str, JourneyPlan] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


@dataclass
class _Reporter:
    file: str
    source_map: SourceMap
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, path: YamlPath, message: str, *, key: bool = False) -> None:
        self._add(path, message, Severity.ERROR, key=key)

    def warning(self, path: YamlPath, message: str, *, key: bool = False) -> None:
        self._add(path, message, Severity.WARNING, key=key)

    def _add(self, path: YamlPath, message: str, severity: Severity, *, key: bool) -> None:
        position = self.source_map.key_at(path) if key else self.source_map.at(path)
        self.diagnostics.append(
            Diagnostic(self.file, position.line, position.col, message, severity)
        )


def journey_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories to their `*.yaml`/`*.yml` files, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            found.append(path)
    return found


def compile_paths(
    paths: Iterable[Path],
    templates_dir: Path,
    *,
    known_attributes: frozenset[str] | None = None,
) -> CompileResult:
    result = CompileResult()
    for path in journey_files(paths):
        plan, diagnostics = compile_journey(path, templates_dir, known_attributes=known_attributes)
        result.diagnostics.extend(diagnostics)
        if plan is not None:
            result.plans[plan.journey_id] = plan
    return result


def compile_journey(
    path: Path,
    templates_dir: Path,
    *,
    known_attributes: frozenset[str] | None = None,
) -> tuple[JourneyPlan | None, list[Diagnostic]]:
    file = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Diagnostic(file, 1, 1, "no such file")]
    except (OSError, UnicodeDecodeError) as error:
        return None, [Diagnostic(file, 1, 1, f"cannot read the file: {error}")]
    try:
        raw, source_map, problems = load_yaml(text)
    except YamlProblem as fatal:
        message = _friendlier_yaml(fatal.message)
        return None, [Diagnostic(file, fatal.position.line, fatal.position.col, message)]
    report = _Reporter(file, source_map)
    for problem in problems:
        report.diagnostics.append(
            Diagnostic(file, problem.position.line, problem.position.col, problem.message)
        )
    if not isinstance(raw, dict):
        report.error((), "a journey is a mapping with at least `name`, `trigger` and `steps`")
        return None, report.diagnostics
    try:
        journey = Journey.model_validate(raw)
    except ValidationError as error:
        # A value YAML already complained about (e.g. an unquoted {{ }}) gets one message.
        reported = {(d.line, d.col) for d in report.diagnostics}
        model_report = _Reporter(file, source_map)
        for detail in error.errors():
            _report_model_error(model_report, raw, detail)
        report.diagnostics.extend(
            d for d in model_report.diagnostics if (d.line, d.col) not in reported
        )
        # Still check what can be checked, so one run shows all errors: jumps on the raw
        # steps, and expressions and templates of the parts that are valid.
        _check_raw_steps(report, raw)
        salvaged = _salvage(raw, error.errors())
        if salvaged is not None:
            _check_semantics(report, salvaged, templates_dir, known_attributes, complete=False)
        return None, report.diagnostics
    templates = _check_semantics(report, journey, templates_dir, known_attributes)
    if any(d.severity is Severity.ERROR for d in report.diagnostics):
        return None, report.diagnostics
    plan = JourneyPlan.build(path.stem, file, journey, templates)
    return plan, report.diagnostics


def _friendlier_yaml(message: str) -> str:
    if "expected <block end>" in message:
        # PyYAML's words for it (block end, block mapping start) mean nothing to most users.
        return (
            "YAML syntax error: bad indentation: this line does not line up with the lines above it"
        )
    if "mapping values are not allowed" in message:
        return f"{message}; check the indentation of this line, or quote a value that contains ': '"
    return message


# ---------------------------------------------------------------------------------------------
# Model errors -> positions


_TRIGGER_MODELS: dict[str, type[BaseModel]] = {
    "event": EventTrigger,
    "schedule": SegmentScheduleTrigger,
    "at": SegmentAtTrigger,
    "manual": ManualTrigger,
}
_MODELS: tuple[type[BaseModel], ...] = (
    Journey,
    *STEP_KINDS.values(),
    *_TRIGGER_MODELS.values(),
    JourneySettings,
    BranchCase,
    EventCondition,
)


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
    elif len(parts) >= 2 and parts[0] == "trigger":
        tag = parts[1]
        if isinstance(tag, str) and tag in _TRIGGER_MODELS:
            model = _TRIGGER_MODELS[tag]
            del parts[1]
    elif len(parts) >= 2 and parts[0] == "settings":
        model = JourneySettings
    elif len(parts) >= 2 and parts[0] in ("goal", "exit_on"):
        model = EventCondition
    return tuple(parts), model


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


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


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
    return ""


def _report_model_error(report: _Reporter, raw: Any, detail: ErrorDetails) -> None:
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
        choices = _keys(model) if model is not None else _ALL_KEYS
        suggestion = _suggest(field_name, choices) or _suggest(field_name, _ALL_KEYS)
        report.error(path, f"unknown key '{field_name}'{_kind_name(model)}{suggestion}", key=True)
    elif kind == "invalid_step":
        step_message, key = _step_kind_problem(value)
        if key is None:
            report.error(path, step_message)
        else:
            report.error((*path, key), step_message, key=True)
    elif kind == "invalid_trigger":
        if isinstance(value, str):
            report.error(path, f"unknown trigger '{value}'{_suggest(value, ['manual'])}: {message}")
        else:
            report.error(path, message)
    elif kind in ("literal_error", "enum"):
        expected = message.removeprefix("Input should be ")
        report.error(path, f"{field_name}: expected {expected}, got {value!r}")
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        report.error(path, f"{field_name or 'value'}: expected a mapping, got {value!r}")
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
        suggestion = _suggest(key, STEP_KINDS)
        if suggestion:
            return f"unknown step kind '{key}'{suggestion}", key
    return f"a step needs one action key: {kinds}", None


def _salvage(raw: dict[str, Any], details: list[ErrorDetails]) -> Journey | None:
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


def _check_raw_steps(report: _Reporter, raw: dict[str, Any]) -> None:
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
                report.error(path, f"{key}: no step has id '{target}'{_suggest(target, ids)}")


def _raw_jumps(step: dict[str, Any], index: int) -> Iterable[tuple[str, Any, YamlPath]]:
    for key in ("next", "on_timeout", "else"):
        if key in step:
            yield key, step[key], ("steps", index, key)
    branch = step.get("branch")
    if isinstance(branch, list):
        for case_index, case in enumerate(branch):
            if isinstance(case, dict) and "goto" in case:
                yield "goto", case["goto"], ("steps", index, "branch", case_index, "goto")
    split = step.get("split")
    if isinstance(split, dict):
        for target in split:
            yield "split", target, ("steps", index, "split", target, KEY)


# ---------------------------------------------------------------------------------------------
# Semantic checks


def _check_semantics(
    report: _Reporter,
    journey: Journey,
    templates_dir: Path,
    known_attributes: frozenset[str] | None,
    *,
    complete: bool = True,
) -> dict[str, TemplateBundle]:
    """Ids, jumps, the step graph, expressions and templates of a validated journey.

    `complete=False` is for a salvaged journey (see `_salvage`): its jumps were checked on the
    raw steps and its graph is not the real one, so only ids, expressions and templates count.
    """
    step_ids = assign_step_ids(journey.steps)
    declared: dict[str, int] = {}
    for index, step in enumerate(journey.steps):
        if step.id is None:
            continue
        if step.id in declared:
            report.error(
                ("steps", index, "id"),
                f"duplicate step id '{step.id}' (first used at step {declared[step.id] + 1})",
            )
        else:
            declared[step.id] = index
    jumps_ok = complete and _check_jumps(report, journey, set(declared))
    if jumps_ok:
        plan_like = JourneyPlan.model_construct(
            journey_id="",
            version="",
            source_file="",
            journey=journey,
            step_ids=step_ids,
            templates={},
        )
        _check_reachability(report, plan_like)
        _check_loops(report, plan_like)
        _lint_trailing_wait(report, plan_like)
    _check_expressions(report, journey, set(declared), known_attributes)
    return _check_templates(report, journey, templates_dir)


def _check_jumps(report: _Reporter, journey: Journey, ids: set[str]) -> bool:
    ok = True
    for index, step in enumerate(journey.steps):
        targets: list[tuple[str, str | None, YamlPath]] = [
            ("next", step.next, ("steps", index, "next"))
        ]
        match step:
            case WaitForStep():
                targets.append(("on_timeout", step.on_timeout, ("steps", index, "on_timeout")))
            case BranchStep():
                targets.append(("else", step.else_, ("steps", index, "else")))
                targets.extend(
                    ("goto", case.goto, ("steps", index, "branch", n, "goto"))
                    for n, case in enumerate(step.branch)
                )
            case SplitStep():
                targets.extend(
                    ("split", target, ("steps", index, "split", target, KEY))
                    for target in step.split
                )
        for key, target, path in targets:
            if target is not None and target not in ids:
                report.error(path, f"{key}: no step has id '{target}'{_suggest(target, ids)}")
                ok = False
    return ok


def _describe(plan: JourneyPlan, index: int) -> str:
    return f"step '{plan.step_ids[index]}'"


def _check_reachability(report: _Reporter, plan: JourneyPlan) -> None:
    seen = {0}
    frontier = [0]
    while frontier:
        index = frontier.pop()
        for target in plan.successors(index):
            if target is not None and target not in seen:
                seen.add(target)
                frontier.append(target)
    for index in range(len(plan.journey.steps)):
        if index not in seen:
            report.error(
                ("steps", index),
                f"{_describe(plan, index)} is unreachable: no step leads to it "
                "(give the step before it a `next`, or jump to it)",
            )


_WAITS = (WaitStep, WaitUntilStep, WaitForStep)


def _check_loops(report: _Reporter, plan: JourneyPlan) -> None:
    """A cycle through steps none of which waits would spin forever in one instant."""
    steps = plan.journey.steps
    busy = [i for i, step in enumerate(steps) if not isinstance(step, _WAITS)]
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done
    reported: set[frozenset[int]] = set()

    def visit(index: int, stack: list[int]) -> None:
        state[index] = 1
        stack.append(index)
        for target in plan.successors(index):
            if target is None or isinstance(steps[target], _WAITS):
                continue
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    names = " -> ".join(plan.step_ids[i] for i in [*cycle, target])
                    report.error(
                        ("steps", index),
                        f"loop without a wait: {names} would repeat forever; "
                        "add a wait to the loop",
                    )
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[index] = 2

    for index in busy:
        if index not in state:
            visit(index, [])


def _lint_trailing_wait(report: _Reporter, plan: JourneyPlan) -> None:
    for index, step in enumerate(plan.journey.steps):
        if isinstance(step, WaitStep | WaitUntilStep):
            after = plan.following(index)
            if after is None or isinstance(plan.journey.steps[after], ExitStep):
                report.warning(
                    ("steps", index),
                    f"{_describe(plan, index)} waits at the end of the run: "
                    "nothing follows it, so it only delays the outcome",
                )


def _check_expressions(
    report: _Reporter,
    journey: Journey,
    step_ids: set[str],
    known_attributes: frozenset[str] | None,
) -> None:
    def condition(path: YamlPath, text: str | None, scope: Scope) -> None:
        if text is None:
            return
        try:
            tree = parse_condition(text, scope)
        except ExpressionError as error:
            report.error(path, f"invalid expression: {error.message}")
            return
        _check_tree(path, tree)

    def value(path: YamlPath, text: Any, scope: Scope = Scope.RUN) -> None:
        if isinstance(text, dict):
            for key, item in text.items():
                value((*path, key), item, scope)
            return
        if isinstance(text, list):
            for position, item in enumerate(text):
                value((*path, position), item, scope)
            return
        if not isinstance(text, str):
            return
        try:
            tree = parse_value(text, scope)
        except ExpressionError as error:
            report.error(path, f"invalid expression: {error.message}")
            return
        if tree is not None:
            _check_tree(path, tree)

    def _check_tree(path: YamlPath, tree: Any) -> None:
        for name in sorted(attribute_paths(tree, "steps")):
            if name not in step_ids:
                report.error(
                    path, f"steps.{name}: no step has id '{name}'{_suggest(name, step_ids)}"
                )
        if known_attributes is None:
            return
        for name in sorted(attribute_paths(tree, "contact") - CONTACT_FIELDS - known_attributes):
            report.warning(
                path,
                f"contact.{name} is not an attribute of any contact in contacts/; "
                "check the spelling or use `is defined`",
            )

    trigger = journey.trigger
    if isinstance(trigger, EventTrigger):
        condition(("trigger", "when"), trigger.when, Scope.EVENT_FILTER)
        if trigger.key is not None:
            condition(("trigger", "key"), f"event.{trigger.key}", Scope.EVENT_FILTER)
    elif isinstance(trigger, SegmentScheduleTrigger | SegmentAtTrigger):
        condition(("trigger", "segment"), trigger.segment, Scope.SEGMENT)
    condition(("audience",), journey.audience, Scope.SEGMENT)
    if journey.goal is not None:
        condition(("goal", "when"), journey.goal.when, Scope.EVENT_FILTER)
    for n, spec in enumerate(journey.exit_on):
        condition(("exit_on", n, "when"), spec.when, Scope.EVENT_FILTER)
    for index, step in enumerate(journey.steps):
        at: YamlPath = ("steps", index)
        match step:
            case SendStep():
                value((*at, "to"), step.to)
            case WaitForStep():
                condition((*at, "when"), step.when, Scope.EVENT_FILTER)
            case BranchStep():
                for n, case in enumerate(step.branch):
                    condition((*at, "branch", n, "when"), case.when, Scope.RUN)
            case UpdateStep():
                value((*at, "update"), step.update)
            case WebhookStep():
                value((*at, "webhook"), step.webhook)
                value((*at, "body"), step.body)
            case WaitUntilStep():
                _check_wait_until(report, (*at, "wait_until"), step.wait_until)
                value((*at, "wait_until"), step.wait_until)


def _check_wait_until(report: _Reporter, path: YamlPath, text: str) -> None:
    if "{{" in text:
        return
    try:
        parse_clock(text)
        return
    except DurationError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        report.error(
            path,
            f"wait_until: {text!r} is neither a time of day (09:00), an ISO timestamp, "
            "nor '{{ expression }}'",
        )
        return
    if moment.tzinfo is None:
        report.error(path, f"wait_until: {text!r} needs a UTC offset, e.g. {text}+00:00")


def _check_templates(
    report: _Reporter, journey: Journey, templates_dir: Path
) -> dict[str, TemplateBundle]:
    bundles: dict[str, TemplateBundle] = {}
    failed: set[str] = set()
    for index, step in enumerate(journey.steps):
        if not isinstance(step, SendStep):
            continue
        key = template_key(step.send, step.template)
        if key in bundles or key in failed:
            continue
        try:
            bundle, diagnostics = collect_template(templates_dir, step.template, step.send)
        except TemplateNotFound as missing:
            report.error(("steps", index, "template"), str(missing))
            failed.add(key)
            continue
        report.diagnostics.extend(diagnostics)
        if bundle is None or any(d.severity is Severity.ERROR for d in diagnostics):
            failed.add(key)
            continue
        bundles[key] = bundle
        report.diagnostics.extend(lint_template(bundle, marketing=step.category == "marketing"))
    return bundles


def contact_attributes(contacts_dir: Path) -> frozenset[str] | None:
    """Attribute names used by the sample contacts, for the unknown-attribute lint."""
    if not contacts_dir.is_dir():
        return None
    names: set[str] = set()
    for path in sorted(contacts_dir.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            names.update(k for k in data if isinstance(k, str))
            attributes = data.get("attributes")
            if isinstance(attributes, dict):
                names.update(k for k in attributes if isinstance(k, str))
    return frozenset(names) if names else None
