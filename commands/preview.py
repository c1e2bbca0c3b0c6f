"""`rapport preview JOURNEY STEP --contact FILE`: render one message as a contact would get it.

The variables are built by `rendering.context.message_variables`, the function the send activity
uses, from the contact file, the journey's `data`, a sample trigger event (`--trigger-prop`), the
step results given with `--steps` and the clock (`--now`). Email prints the subject, preheader and
plain text and writes the HTML to a file; SMS prints the body and its segment count.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from activities.contact_context import scratch_snapshot
from commands.common import console_out, print_json
from commands.loading import load_plan
from errors import InvalidInputError, RapportError
from rendering.bundle import template_event_questions
from rendering.context import message_variables
from rendering.render import RenderError, render_email, render_sms
from runtime.traits import load_traits
from settings import get_settings
from store.records import ContactRecord
from workflows.contact_file import ContactFile, ContactFileError, load_contact_file
from workflows.expressions import ExpressionContext, ExpressionError, render_value
from workflows.model import EventTrigger, SendStep
from workflows.plan import JourneyPlan
from workflows.source import YamlProblem, read_yaml_file


def parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    """`k=v` options as a mapping; each value is read as JSON when it is JSON (`3`, `true`,
    `"007"`), else kept as text, so `--trigger-prop order_id=B-3318` is the text B-3318."""
    values: dict[str, Any] = {}
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not key.strip():
            raise RapportError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            values[key.strip()] = json.loads(text)
        except ValueError:
            values[key.strip()] = text
    return values


def _send_step(plan: JourneyPlan, step_id: str) -> SendStep:
    sends = [sid for sid, step in zip(plan.step_ids, plan.journey.steps, strict=True)
             if isinstance(step, SendStep)]  # fmt: skip
    listing = f"its send steps: {', '.join(sends)}" if sends else "it has no send steps"
    if step_id not in plan.step_ids:
        close = difflib.get_close_matches(step_id, plan.step_ids, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RapportError(f"journey {plan.journey_id!r} has no step {step_id!r}{hint}; {listing}")
    step = plan.step(plan.index_of(step_id))
    if not isinstance(step, SendStep):
        raise RapportError(
            f"step {step_id!r} of journey {plan.journey_id!r} sends nothing; {listing}"
        )
    return step


def _variant(plan: JourneyPlan, step_id: str, step: SendStep, option: str | None) -> str | None:
    """The variant to render: `--variant`, else the step's first; None for a plain send."""
    if not step.variants:
        if option is not None:
            raise RapportError(f"--variant: step {step_id!r} has no variants")
        return None
    if option is None:
        return next(iter(step.variants))
    if option not in step.variants:
        raise RapportError(
            f"--variant: step {step_id!r} of journey {plan.journey_id!r} has no variant "
            f"{option!r}; its variants: {', '.join(step.variants)}"
        )
    return option


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RapportError(
            f"--now expects an ISO 8601 timestamp such as 2026-11-28T12:00:00+00:00, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _steps(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = read_yaml_file(path)
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise RapportError(f"--steps: cannot read {path}: {reason}") from None
    except YamlProblem as problem:
        raise InvalidInputError(f"--steps: {problem.at(path)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"--steps: {path} must map step ids to what they produced, e.g. "
            "await_score: {event: {properties: {score: 3}}}"
        )
    return {str(key): value for key, value in data.items()}


def _trigger(plan: JourneyPlan, properties: dict[str, Any], now: datetime) -> dict[str, Any]:
    trigger = plan.journey.trigger
    return {
        "id": "preview",
        "name": trigger.event if isinstance(trigger, EventTrigger) else None,
        "properties": properties,
        "timestamp": now.isoformat(),
    }


def _recipient(step: SendStep, contact: ContactFile, context: ExpressionContext) -> str | None:
    if step.to is not None:
        try:
            value = render_value(step.to, context)
        except ExpressionError as error:
            raise InvalidInputError(f"to: {error.message}") from None
        return None if value is None else str(value)
    return contact.email if step.send == "email" else contact.phone


def _hint(sources: Iterable[str], trigger_props: list[str] | None, steps: dict[str, Any]) -> str:
    """What the user can pass when a template needs what a preview leaves empty."""
    text = "\n".join(sources)
    hints = []
    if not trigger_props and "trigger." in text:
        hints.append("give the trigger event's properties with --trigger-prop KEY=VALUE")
    if not steps and "steps." in text:
        hints.append("give what earlier steps produced with --steps FILE")
    return "".join(f"\nhint: {hint}" for hint in hints)


def _record(person: ContactFile, path: Path) -> ContactRecord:
    try:
        return ContactRecord(**person.profile())
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "contact"
        message = problem["msg"].removeprefix("Value error, ")
        raise InvalidInputError(f"{path}: {field}: {message}") from None


def _html_destination(option: str | None, plan: JourneyPlan, step_id: str) -> Path | None:
    """Where the HTML goes: a file (the option, or a new temporary file), or None for stdout."""
    if option == "-":
        return None
    if option is not None:
        return Path(option)
    descriptor, name = tempfile.mkstemp(
        prefix=f"rapport-preview-{plan.journey_id}-{step_id}-", suffix=".html"
    )
    os.close(descriptor)
    return Path(name)


def command(
    journey: Annotated[str, typer.Argument(help="Journey name (file stem in journeys/) or path.")],
    step: Annotated[str, typer.Argument(help="The id of a send step.")],
    contact: Annotated[
        Path,
        typer.Option("--contact", "-c", help="Contact file (YAML), e.g. contacts/alice.yaml."),
    ],
    trigger_props: Annotated[
        list[str] | None,
        typer.Option(
            "--trigger-prop",
            "-p",
            help="A property of the sample trigger event, KEY=VALUE (repeatable).",
            show_default=False,
        ),
    ] = None,
    steps_file: Annotated[
        Path | None,
        typer.Option(
            "--steps",
            help="YAML mapping of step id -> what it produced, for templates using steps.ID.",
            show_default=False,
        ),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now", help="The clock, ISO 8601 (default: the current time).", show_default=False
        ),
    ] = None,
    html: Annotated[
        str | None,
        typer.Option(
            "--html",
            help="Write the email HTML to this file ('-': print it). Default: a temporary file.",
            show_default=False,
        ),
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option(
            "--locale",
            help="Render for this locale (e.g. fr-CA) instead of the contact file's: the "
            "template version and the money and date formats.",
            show_default=False,
        ),
    ] = None,
    variant: Annotated[
        str | None,
        typer.Option(
            "--variant",
            help="For a send with variants: the variant to render (default: the first).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Render one message of a journey for a contact file: subject, text and HTML, or the SMS."""
    settings = get_settings()
    plan = load_plan(settings, journey)
    send = _send_step(plan, step)
    arm = _variant(plan, step, send, variant)
    try:
        person = load_contact_file(contact)
    except ContactFileError as error:
        if "no such contact file" in error.message:
            raise RapportError(error.message) from None
        raise InvalidInputError(error.message) from None
    clock = _now(now)
    trigger = _trigger(plan, parse_assignments(trigger_props or [], "--trigger-prop"), clock)
    steps = _steps(steps_file)
    template = plan.template_for(send, arm)
    locale = locale or person.locale
    bundle = template.for_locale(locale)  # as the send picks it: fr-CA, else fr, else no locale
    program = load_traits(settings)
    snapshot = scratch_snapshot(
        _record(person, contact),
        person.event_records(clock),
        {*plan.event_questions, *template_event_questions(bundle)},
        clock,
        traits=replace(program, clock=lambda: clock) if program is not None else None,
    )
    variables = message_variables(
        snapshot,
        journey_data=plan.data_at(clock),
        trigger=trigger,
        steps=steps,
        now=clock,
        settings=settings,
        message_key=f"preview:{plan.journey_id}:{step}:{person.id}",
    )
    context = snapshot.context(clock, journey=plan.data_at(clock), trigger=trigger, steps=steps)
    result: dict[str, Any] = {
        "journey": plan.journey_id,
        "version": plan.version,
        "step": step,
        "template": bundle.name,
        **({"variant": arm} if arm is not None else {}),
        "channel": send.send,
        "category": send.category,
        "contact": person.id,
        "to": _recipient(send, person, context),
        "now": clock.isoformat(),
        "locale": locale,
        "template_file": bundle.display(bundle.main_file),
        "template_locales": list(template.locales),
    }
    try:
        if send.send == "email":
            email = render_email(bundle, variables, locale=locale)
            result |= {"subject": email.subject, "preheader": email.preheader, "text": email.text}
            destination = _html_destination(html, plan, step)
            if destination is None:
                result["html"] = email.html
            else:
                try:
                    destination.write_text(email.html, encoding="utf-8")
                except OSError as error:
                    raise RapportError(
                        f"--html: cannot write {destination}: {error.strerror or error}"
                    ) from None
                result["html_file"] = str(destination)
        else:
            sms = render_sms(
                bundle, variables, locale=locale, marketing=send.category == "marketing"
            )
            result |= {
                "body": sms.body,
                "segments": sms.segments.segments,
                "encoding": sms.segments.encoding,
                "characters": sms.segments.characters,
            }
    except RenderError as error:
        raise InvalidInputError(
            f"cannot render: {error}{_hint(bundle.files.values(), trigger_props, steps)}"
        ) from None
    if json_output:
        print_json(result)
    else:
        _print(result)


def _print(result: dict[str, Any]) -> None:
    out = console_out()

    def line(label: str, value: Any) -> None:
        out.print(f"{label + ':':<11}{value}", markup=False, highlight=False)

    line("Journey", f"{result['journey']} (version {result['version']})")
    variant = f" (variant {result['variant']})" if "variant" in result else ""
    line(
        "Step",
        f"{result['step']}: {result['channel']} {result['template']}{variant} "
        f"({result['category']})",
    )
    if result["template_locales"]:  # a localised template: which version this contact gets
        line("Locale", f"{result['locale'] or '(none)'}: {result['template_file']}")
    line("To", result["to"] or "(no address: the send would be skipped)")
    if result["channel"] == "email":
        line("Subject", result["subject"])
        line("Preheader", result["preheader"] or "")
        if "html_file" in result:
            line("HTML", result["html_file"])
        out.print("", markup=False)
        out.print(result["text"].rstrip("\n"), markup=False, highlight=False)
        if "html" in result:
            out.print("", markup=False)
            sys.stdout.flush()
            html_text = result["html"]
            out.file.write(html_text if html_text.endswith("\n") else html_text + "\n")
            out.file.flush()
    else:
        line(
            "Segments",
            f"{result['segments']} ({result['encoding']}, {result['characters']} characters)",
        )
        out.print("", markup=False)
        out.print(result["body"], markup=False, highlight=False)
