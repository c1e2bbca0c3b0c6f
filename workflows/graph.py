"""A journey as a diagram: Mermaid (renders in GitHub and GitLab) or Graphviz DOT."""

from __future__ import annotations

from datetime import timedelta

from workflows.durations import format_duration
from workflows.model import (
    BranchStep,
    CalendarTime,
    DateTrigger,
    EventTrigger,
    ExitStep,
    ManualTrigger,
    SegmentAtTrigger,
    SegmentScheduleTrigger,
    SendStep,
    SplitStep,
    Step,
    UpdateStep,
    WaitForAlternative,
    WaitForCondition,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
    WebhookStep,
)
from workflows.plan import JourneyPlan

Edge = tuple[str, str, str]  # source, target, label


def _label(step: Step) -> str:
    match step:
        case SendStep():
            return f"send {step.send}: {_content(step)}"
        case WaitStep():
            return f"wait {format_duration(step.wait)}"
        case WaitUntilStep():
            offset = f" {format_duration(step.offset)}" if step.offset else ""
            when = step.wait_until
            text = when.text() if isinstance(when, CalendarTime) else when
            return f"wait until {text}{offset}"
        case WaitForStep():
            waited = (
                step.wait_for
                if isinstance(step.wait_for, str)
                else "the first of " + ", ".join(_what(a) for a in step.wait_for)
            )
            since = f", since {step.since}" if step.since else ""
            return f"wait for {waited} (up to {format_duration(step.timeout)}{since})"
        case BranchStep():
            return "branch"
        case SplitStep():
            return "split"
        case UpdateStep():
            return "update " + ", ".join(step.update)
        case WebhookStep():
            return f"webhook {step.method}"
        case ExitStep():
            return f"exit: {step.exit}"


def _what(alternative: WaitForAlternative) -> str:
    return "a condition" if isinstance(alternative, WaitForCondition) else alternative.event


def _when(alternative: WaitForAlternative) -> str:
    """The edge an alternative of a wait_for takes: its event (and filter) or its condition."""
    if isinstance(alternative, WaitForCondition):
        return f"condition: {alternative.condition}"
    return f"{alternative.event}: {alternative.when}" if alternative.when else alternative.event


def _content(step: SendStep) -> str:
    """`onboarding/welcome`, or the variants with their weights and the winner rule."""
    if not step.variants:
        return str(step.template)
    arms = "; ".join(
        f"{name} {arm.template} (weight {arm.weight:g})" for name, arm in step.variants.items()
    )
    rule = step.winner
    if rule is None:
        return arms
    after = (
        format_duration(rule.after)
        if isinstance(rule.after, timedelta)
        else f"{rule.after} sends each"
    )
    return f"{arms}; winner by {rule.metric} after {after} at {rule.confidence:g}%"


def _trigger_label(plan: JourneyPlan) -> str:
    trigger = plan.journey.trigger
    match trigger:
        case EventTrigger():
            return f"on {trigger.event}"
        case SegmentScheduleTrigger():
            local = ", contact's local time" if trigger.local_time else ""
            return f"segment, cron {trigger.schedule}{local}"
        case DateTrigger():
            offset = f" {trigger.offset_days:+d}d" if trigger.offset_days else ""
            every = "each year" if trigger.every == "year" else "once"
            return f"on {trigger.date}{offset}, {every}, at {trigger.at} local"
        case SegmentAtTrigger():
            when = trigger.at
            if isinstance(when, timedelta):
                return f"segment {format_duration(when)} after deployment"
            return f"segment at {when.isoformat()}"
        case ManualTrigger():
            return "manual start"


def nodes_and_edges(plan: JourneyPlan) -> tuple[list[tuple[str, str]], list[Edge]]:
    nodes = [("start", _trigger_label(plan))]
    nodes += [
        (sid, f"{sid}: {_label(step)}")
        for sid, step in zip(plan.step_ids, plan.journey.steps, strict=True)
    ]
    end_needed = False
    edges: list[Edge] = [("start", plan.step_ids[0], "")]

    def target(index: int | None) -> str:
        nonlocal end_needed
        if index is None:
            end_needed = True
            return "end"
        return plan.step_ids[index]

    for index, step in enumerate(plan.journey.steps):
        source = plan.step_ids[index]
        match step:
            case BranchStep():
                for case in step.branch:
                    edges.append((source, case.goto, case.when))
                edges.append((source, target(plan.jump(step.else_, index)), "else"))
            case SplitStep():
                for step_id, weight in step.split.items():
                    edges.append((source, step_id, f"weight {weight}"))
            case WaitForStep():
                for alternative in step.alternatives():
                    edges.append(
                        (source, target(plan.jump(alternative.next, index)), _when(alternative))
                    )
                edges.append((source, target(plan.jump(step.on_timeout, index)), "timeout"))
            case ExitStep():
                pass
            case _:
                edges.append((source, target(plan.following(index)), ""))
    if end_needed:
        nodes.append(("end", "end: completed"))
    return nodes, edges


def _safe(node_id: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in node_id)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(plan: JourneyPlan) -> str:
    nodes, edges = nodes_and_edges(plan)
    lines = ["flowchart TD"]
    for node_id, label in nodes:
        shape = ('(["', '"])') if node_id in ("start", "end") else ('["', '"]')
        lines.append(f"    {_safe(node_id)}{shape[0]}{_mermaid_text(label)}{shape[1]}")
    for source, target_id, label in edges:
        arrow = f' -->|"{_mermaid_text(label)}"| ' if label else " --> "
        lines.append(f"    {_safe(source)}{arrow}{_safe(target_id)}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(plan: JourneyPlan) -> str:
    nodes, edges = nodes_and_edges(plan)
    lines = [
        f'digraph "{_dot_text(plan.journey_id)}" {{',
        "    rankdir=TB;",
        "    node [shape=box];",
    ]
    for node_id, label in nodes:
        shape = ", shape=oval" if node_id in ("start", "end") else ""
        lines.append(f'    "{_dot_text(node_id)}" [label="{_dot_text(label)}"{shape}];')
    for source, target_id, label in edges:
        attrs = f' [label="{_dot_text(label)}"]' if label else ""
        lines.append(f'    "{_dot_text(source)}" -> "{_dot_text(target_id)}"{attrs};')
    lines.append("}")
    return "\n".join(lines) + "\n"
