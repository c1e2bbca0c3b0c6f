"""`rapport validate [PATH…]`: compile journeys and traits, report every error as
FILE:LINE:COL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands.common import console_err, console_out, print_json
from errors import ProblemsReportedError, RapportError
from settings import Settings, get_settings
from workflows.diagnostics import Diagnostic, Severity, display_path
from workflows.plan import JourneyPlan
from workflows.project import compile_project, compile_project_traits
from workflows.trait_compiler import TraitCompileResult


def _split(
    paths: list[Path] | None, traits_dir: Path
) -> tuple[list[Path] | None, list[Path] | None]:
    """(journey paths, trait paths) of the arguments: a path inside the traits directory is a
    traits file. Without arguments, both directories."""
    if not paths:
        return None, None
    traits_root = traits_dir.resolve()
    is_trait = [p.resolve() == traits_root or traits_root in p.resolve().parents for p in paths]
    journeys = [p for p, t in zip(paths, is_trait, strict=True) if not t]
    traits = [p for p, t in zip(paths, is_trait, strict=True) if t]
    return journeys, traits


def _traits_line(result: TraitCompileResult) -> str:
    program = result.program
    if program is None:
        return ""
    files = ", ".join(program.files)
    return f"ok traits ({len(program.names)} traits in {files}, version {program.version})"


def _sample_checks(
    settings: Settings, plans: dict[str, JourneyPlan], *, render: bool | None
) -> list[Diagnostic]:
    """Each plan's messages rendered for the sample contacts (a journey whose message fails is
    no longer `ok`: its plan leaves `plans`), and journeys that target the same contacts."""
    from runtime.sample_checks import (  # the store: only if used
        check_samples,
        contact_files,
        overlapping_journeys,
    )

    if not contact_files(settings.contacts_dir):
        if render is True:
            raise RapportError(
                f"--render: no contact files (*.yaml) in {display_path(settings.contacts_dir)}/ "
                "to render the messages for"
            )
        return overlapping_journeys(plans, None)
    checks = check_samples(settings, plans, render=render is not False)
    overlaps = overlapping_journeys(plans, checks)
    for journey_id in checks.failed:
        plans.pop(journey_id, None)
    return [*checks.diagnostics, *overlaps]


def command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Journey or trait files or directories (default: journeys/ and traits/).",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    render: Annotated[
        bool | None,
        typer.Option(
            "--render/--no-render",
            help="Render every message for each contact file in contacts/ with a trigger from "
            "simulations/ (default: when there are contact files).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compile journeys with their templates, and traits; exit 1 when any is invalid."""
    settings = get_settings()
    journey_paths, trait_paths = _split(paths, settings.traits_dir)
    result = compile_project(settings, journey_paths) if journey_paths != [] else None
    traits = compile_project_traits(settings, trait_paths) if trait_paths != [] else None
    found = [*(result.diagnostics if result else []), *(traits.diagnostics if traits else [])]
    plans = dict(result.plans) if result else {}
    if plans:
        found.extend(_sample_checks(settings, plans, render=render))
    diagnostics = sorted(found)
    failed = any(
        d.severity is Severity.ERROR or (strict and d.severity is Severity.WARNING)
        for d in diagnostics
    )
    if json_output:
        print_json(
            {
                "ok": not failed,
                "journeys": {
                    journey_id: {"version": plan.version, "steps": len(plan.step_ids)}
                    for journey_id, plan in sorted(plans.items())
                },
                "traits": (
                    {"version": traits.program.version, "names": traits.program.names}
                    if traits and traits.program
                    else None
                ),
                "diagnostics": [d.as_dict() for d in diagnostics],
            }
        )
    else:
        # Problems on stderr (what an editor or CI annotates), the result on stdout.
        err, out = console_err(), console_out()
        for diagnostic in diagnostics:
            err.print(str(diagnostic), markup=False, highlight=False)
        errors = sum(d.severity is Severity.ERROR for d in diagnostics)
        warnings = len(diagnostics) - errors
        for journey_id, plan in sorted(plans.items()):
            out.print(
                f"ok {journey_id} (version {plan.version}, {len(plan.step_ids)} steps)",
                markup=False,
            )
        if traits is not None and traits.program is not None and traits.program.names:
            out.print(_traits_line(traits), markup=False)
        out.print(
            f"{len(plans)} journey(s) valid, {errors} error(s), {warnings} warning(s)",
            markup=False,
        )
    if failed:
        raise ProblemsReportedError()
