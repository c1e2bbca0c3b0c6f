"""Resolving a JOURNEY argument (a name in journeys/ or a path) to its compiled plan."""

from __future__ import annotations

from pathlib import Path

from errors import InvalidInputError, RapportError
from settings import Settings
from workflows.compiler import compile_journey, contact_attributes, journey_files
from workflows.diagnostics import Severity
from workflows.plan import JourneyPlan


def journey_path(settings: Settings, journey: str) -> Path:
    as_path = Path(journey)
    if as_path.suffix in (".yaml", ".yml") and as_path.exists():
        return as_path
    for candidate in (
        settings.journeys_dir / f"{journey}.yaml",
        settings.journeys_dir / f"{journey}.yml",
    ):
        if candidate.exists():
            return candidate
    if not settings.journeys_dir.is_dir():
        # journey_files() takes a missing folder for a file: it would list the folder's own name.
        raise RapportError(
            f"no journey named {journey!r}: there is no {settings.journeys_dir}/ folder here "
            "(run rapport in a project, or set RAPPORT_JOURNEYS_DIR)"
        )
    known = ", ".join(p.stem for p in journey_files([settings.journeys_dir])) or "none"
    raise RapportError(
        f"no journey named {journey!r} in {settings.journeys_dir}/ (journeys: {known})"
    )


def load_plan(settings: Settings, journey: str) -> JourneyPlan:
    """Compile one journey; invalid journeys become a RapportError listing every diagnostic."""
    plan, diagnostics = compile_journey(
        journey_path(settings, journey),
        settings.templates_dir,
        known_attributes=contact_attributes(settings.contacts_dir),
    )
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    if plan is None or errors:
        # One diagnostic a line, each starting with FILE:LINE:COL as editors expect.
        found = "\n".join(str(d) for d in sorted(errors))
        raise InvalidInputError(
            f"journey {journey!r} does not compile (run `rapport validate`):\n{found}"
        )
    return plan
