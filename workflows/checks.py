"""Semantic checks of a valid journey: ids, jumps, reachability, loops without a wait,
expressions, templates, and the lints (SPEC §3)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from rendering.bundle import TemplateBundle, TemplateNotFound, collect_template
from rendering.lints import lint_template
from workflows.diagnostics import Diagnostic, Reporter, Severity, suggest
from workflows.durations import DurationError, parse_clock
from workflows.expression_sites import expression_sites
from workflows.expressions import (
    ExpressionError,
    attribute_paths,
    dict_method_traps,
    event_questions,
)
from workflows.lint_ignores import LintIgnores
from workflows.model import (
    BranchStep,
    DateTrigger,
    EventTrigger,
    ExitStep,
    Journey,
    SendStep,
    SplitStep,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
)
from workflows.plan import JourneyPlan, assign_step_ids, relative_moment, template_key
from workflows.source import KEY
from workflows.source import Path as YamlPath

# Event name -> property -> JSON types, from the sample events (`trait_compiler.sample_events`).
SampleEvents = Mapping[str, Mapping[str, frozenset[str]]]

CONTACT_FIELDS = frozenset(
    {"id", "email", "phone", "timezone", "locale", "created_at", "updated_at", "attributes"}
)


def check_semantics(
    report: Reporter,
    journey: Journey,
    templates_dir: Path,
    known_attributes: frozenset[str] | None,
    ignores: LintIgnores,
    *,
    samples: SampleEvents | None = None,
    complete: bool = True,
) -> dict[str, TemplateBundle]:
    """Ids, jumps, the step graph, expressions and templates of a validated journey.

    `complete=False` is for a salvaged journey (see `model_errors.salvage`): its jumps were
    checked on the raw steps and its graph is not the real one, so only ids, expressions and
    templates count.
    """
    _check_data(report, journey)
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
    _check_wait_for_shapes(report, journey)
    _check_expressions(report, journey, set(declared), known_attributes)
    _check_trigger_key(report, journey, samples)
    for index, step in enumerate(journey.steps):
        if isinstance(step, SendStep):
            _check_content(report, journey, index, step)
    if isinstance(journey.trigger, DateTrigger):
        _check_date_attribute(report, journey.trigger, known_attributes)
    return _check_templates(report, journey, templates_dir, ignores)


def _check_data(report: Reporter, journey: Journey) -> None:
    """`data` values relative to the run's start: `{after_start: DURATION, at: "HH:MM"}`."""
    for key, value in journey.data.items():
        try:
            relative_moment(value)
        except (DurationError, ValueError) as error:
            report.error(("data", key), f"{key}: {error}")


def _check_content(report: Reporter, journey: Journey, index: int, step: SendStep) -> None:
    """A send's content: one template, or variants (weights that add up to something), and a
    winner rule only on variants, on a metric the journey can measure."""
    at: YamlPath = ("steps", index)
    if step.template is None and step.variants is None:
        report.error(at, "missing required key 'template' of a send step (or `variants`)")
    if step.template is not None and step.variants is not None:
        report.error(
            (*at, "variants"),
            "`template` and `variants` both given: a send has one template, or variants "
            "(each with its own template)",
            key=True,
        )
    if step.variants is not None and sum(arm.weight for arm in step.variants.values()) <= 0:
        report.error(
            (*at, "variants"),
            "variants: the weights add up to 0; give at least one variant a positive weight",
            key=True,
        )
    rule = step.winner
    if rule is None:
        return
    if step.variants is None:
        report.error(
            (*at, "winner"), "`winner` needs `variants`: there is nothing to choose from", key=True
        )
    if rule.metric == "converted" and journey.goal is None:
        report.error(
            (*at, "winner", "metric"),
            "metric: converted needs the journey's `goal` (what counts as converting)",
        )
    if rule.metric in ("opened", "clicked") and step.send == "sms":
        report.error(
            (*at, "winner", "metric"),
            f"metric: {rule.metric} cannot be measured for SMS (providers report no opens or "
            "clicks); use converted with the journey's `goal`",
        )


def _check_date_attribute(
    report: Reporter, trigger: DateTrigger, known_attributes: frozenset[str] | None
) -> None:
    """A date trigger reads an attribute or trait; which ones exist is known from the sample
    contacts and the traits programme (when there are contact files)."""
    name = trigger.attribute
    path: YamlPath = ("trigger", "date")
    if name in CONTACT_FIELDS:
        report.error(
            path,
            f"date: contact.{name} is a profile field; a date trigger reads an attribute or "
            "trait holding a date (e.g. contact.birthday)",
        )
    elif known_attributes is not None and name not in known_attributes:
        report.error(
            path,
            f"date: contact.{name} is not an attribute of any contact in contacts/ nor a "
            f"trait{suggest(name, known_attributes)}",
        )


def _check_jumps(report: Reporter, journey: Journey, ids: set[str]) -> bool:
    ok = True
    for index, step in enumerate(journey.steps):
        targets: list[tuple[str, str | None, YamlPath]] = [
            ("next", step.next, ("steps", index, "next"))
        ]
        match step:
            case WaitForStep():
                targets.append(("on_timeout", step.on_timeout, ("steps", index, "on_timeout")))
                if isinstance(step.wait_for, list):
                    targets.extend(
                        ("next", alternative.next, ("steps", index, "wait_for", n, "next"))
                        for n, alternative in enumerate(step.wait_for)
                    )
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
                report.error(path, f"{key}: no step has id '{target}'{suggest(target, ids)}")
                ok = False
    return ok


def _check_wait_for_shapes(report: Reporter, journey: Journey) -> None:
    """The one-event keys (`when`, `match`) belong on each event of a list; `since` needs an
    event to look back for."""
    for index, step in enumerate(journey.steps):
        if not isinstance(step, WaitForStep):
            continue
        if isinstance(step.wait_for, list):
            for key, used in (("when", step.when is not None), ("match", bool(step.match))):
                if used:
                    report.error(
                        ("steps", index, key),
                        f"{key}: with a list of alternatives, write `{key}` on the event it "
                        f"applies to (`- event: NAME` then `{key}: …`)",
                        key=True,
                    )
        if step.since is not None and not step.waited_events():
            report.error(
                ("steps", index, "since"),
                "since: looks back for events, and this wait_for has only conditions",
                key=True,
            )


def _describe(plan: JourneyPlan, index: int) -> str:
    return f"step '{plan.step_ids[index]}'"


def _check_reachability(report: Reporter, plan: JourneyPlan) -> None:
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


def _check_loops(report: Reporter, plan: JourneyPlan) -> None:
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


def _lint_trailing_wait(report: Reporter, plan: JourneyPlan) -> None:
    for index, step in enumerate(plan.journey.steps):
        if isinstance(step, WaitStep | WaitUntilStep):
            after = plan.following(index)
            if after is None or isinstance(plan.journey.steps[after], ExitStep):
                report.warning(
                    ("steps", index),
                    f"{_describe(plan, index)} waits at the end of the run: "
                    "nothing follows it, so it only delays the outcome",
                    code="wait-at-end",
                )


def _check_expressions(
    report: Reporter,
    journey: Journey,
    step_ids: set[str],
    known_attributes: frozenset[str] | None,
) -> None:
    for site in expression_sites(journey):
        if isinstance(site.text, str) and site.path[-1:] == ("wait_until",):
            _check_wait_until(report, site.path, site.text)
        try:
            tree = site.parse()
            if tree is not None:
                event_questions(tree)  # literal arguments, a valid window
        except ExpressionError as error:
            report.error(site.path, f"invalid expression: {error.message}")
            continue
        if tree is not None:
            for _, message in dict_method_traps(tree):
                report.error(site.path, message)
            _check_tree(report, site.path, tree, step_ids, known_attributes)
            if _is_wait_condition(site.path):
                _check_wait_condition(report, site.path, tree, known_attributes)


def _is_wait_condition(path: YamlPath) -> bool:
    return len(path) == 5 and path[2] == "wait_for" and path[4] == "condition"


def _check_wait_condition(
    report: Reporter, path: YamlPath, tree: Any, known_attributes: frozenset[str] | None
) -> None:
    """A condition waits for the contact to change: it must read the contact, and (where the
    sample contacts and traits say which exist) only attributes that exist; a misspelt one
    would never become true."""
    read = attribute_paths(tree, "contact")
    if not read and not event_questions(tree):
        report.error(
            path,
            "condition: reads nothing about the contact (contact.*, count_events, last_event), "
            "so no change can make it true",
        )
    if known_attributes is None:
        return
    for name in sorted(read - CONTACT_FIELDS - known_attributes):
        report.error(
            path,
            f"condition: contact.{name} is no attribute of any contact in contacts/ nor a trait"
            f"{suggest(name, known_attributes)}",
        )


def _check_tree(
    report: Reporter,
    path: YamlPath,
    tree: Any,
    step_ids: set[str],
    known_attributes: frozenset[str] | None,
) -> None:
    for name in sorted(attribute_paths(tree, "steps")):
        if name not in step_ids:
            report.error(path, f"steps.{name}: no step has id '{name}'{suggest(name, step_ids)}")
    if known_attributes is None:
        return
    unknown = attribute_paths(tree, "contact") - CONTACT_FIELDS - known_attributes
    for name in sorted(unknown if not _is_wait_condition(path) else ()):  # errors there
        report.warning(
            path,
            f"contact.{name} is not an attribute of any contact in contacts/; "
            "check the spelling or use `is defined`",
            code="unknown-attribute",
        )


EVENT_FIELDS = ("id", "name", "properties", "timestamp")


def _check_trigger_key(report: Reporter, journey: Journey, samples: SampleEvents | None) -> None:
    """A `key:` path must be able to exist: it starts at a field of the event, and a property
    must be one the sample events of the trigger carry (unknown without samples: a warning)."""
    trigger = journey.trigger
    if not isinstance(trigger, EventTrigger) or not trigger.key:
        return
    at: YamlPath = ("trigger", "key")
    root, _, rest = trigger.key.partition(".")
    if root not in EVENT_FIELDS:
        report.error(
            at,
            f"key: an event has no field {root!r} (its fields: {', '.join(EVENT_FIELDS)}); "
            f"write properties.{trigger.key}",
        )
        return
    if root != "properties" or not rest or samples is None:
        return
    name = rest.partition(".")[0]
    known = samples.get(trigger.event)
    if known is None:
        report.warning(
            at,
            f"key: properties.{name} cannot be checked: no sample {trigger.event} event in "
            "contacts/ or simulations/; add one to a simulation",
            code="unchecked-key",
        )
    elif name not in known:
        listed = ", ".join(sorted(known)) or "none"
        report.error(
            at,
            f"key: no sample {trigger.event} event (contacts/, simulations/) has a property "
            f"{name!r}{suggest(name, known)}; their properties: {listed}",
        )


def _check_wait_until(report: Reporter, path: YamlPath, text: str) -> None:
    if "{{" in text:
        return
    try:
        parse_clock(text)
        return
    except DurationError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        report.error(
            path,
            f"wait_until: {text!r} is neither a time of day (09:00), a time on a later day "
            "(10:00 +2d), an ISO timestamp, nor '{{ expression }}'",
        )
        return
    if moment.tzinfo is None:
        report.error(path, f"wait_until: {text!r} needs a UTC offset, e.g. {text}+00:00")


def _check_templates(
    report: Reporter, journey: Journey, templates_dir: Path, ignores: LintIgnores
) -> dict[str, TemplateBundle]:
    bundles: dict[str, TemplateBundle] = {}
    failed: set[str] = set()
    found: dict[str, list[Diagnostic]] = {}  # template key -> its diagnostics and lints
    ignored: dict[str, list[frozenset[str]]] = {}  # template key -> each sender's ignores
    for index, step in enumerate(journey.steps):
        if not isinstance(step, SendStep):
            continue
        for path, name in _template_sites(index, step):
            key = template_key(step.send, name)
            ignored.setdefault(key, []).append(ignores.for_step(index))
            if key in bundles or key in failed:
                continue
            try:
                bundle, diagnostics = collect_template(templates_dir, name, step.send)
            except TemplateNotFound as missing:
                report.error(path, str(missing))
                failed.add(key)
                continue
            found[key] = list(diagnostics)
            if bundle is None or any(d.severity is Severity.ERROR for d in diagnostics):
                failed.add(key)
                continue
            bundles[key] = bundle
            found[key].extend(lint_template(bundle, marketing=step.category == "marketing"))
    for key, diagnostics in found.items():
        # A template's lint is silenced only when every step that sends it ignores it.
        report.diagnostics.extend(
            d for d in diagnostics if not all(d.code in codes for codes in ignored[key])
        )
    return bundles


def _template_sites(index: int, step: SendStep) -> list[tuple[YamlPath, str]]:
    """Each template a send names, with where: `template`, or each variant's."""
    sites: list[tuple[YamlPath, str]] = []
    if step.template is not None:
        sites.append((("steps", index, "template"), step.template))
    for arm, variant in (step.variants or {}).items():
        sites.append((("steps", index, "variants", arm, "template"), variant.template))
    return sites
