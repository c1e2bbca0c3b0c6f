"""`rapport validate [PATH…]`: compile journeys, report every error as FILE:LINE:COL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands.common import console_err, print_json
from errors import ProblemsReportedError
from settings import get_settings
from workflows.diagnostics import Severity
from workflows.project import compile_project


def command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Journey files or directories (default: journeys/).", show_default=False
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compile journeys and their templates; exit 1 when any is invalid."""
    settings = get_settings()
    result = compile_project(settings, paths)
    diagnostics = sorted(result.diagnostics)
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
                    for journey_id, plan in sorted(result.plans.items())
                },
                "diagnostics": [d.as_dict() for d in diagnostics],
            }
        )
    else:
        err = console_err()
        for diagnostic in diagnostics:
            err.print(str(diagnostic), markup=False, highlight=False)
        errors = sum(d.severity is Severity.ERROR for d in diagnostics)
        warnings = len(diagnostics) - errors
        for journey_id, plan in sorted(result.plans.items()):
            err.print(
                f"ok {journey_id} (version {plan.version}, {len(plan.step_ids)} steps)",
                markup=False,
            )
        err.print(
            f"{len(result.plans)} journey(s) valid, {errors} error(s), {warnings} warning(s)",
            markup=False,
        )
    if failed:
        raise ProblemsReportedError()
