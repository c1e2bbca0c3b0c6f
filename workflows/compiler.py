"""The journey compiler: YAML + templates -> `JourneyPlan`, or every diagnostic at once.

Stages, each adding diagnostics rather than stopping at the first problem:
1. YAML with source positions (syntax errors, duplicate keys);
2. the pydantic model, every error mapped back to FILE:LINE:COL;
3. semantic checks (ids, jumps, reachability, loops without a wait, expressions, templates);
4. lints (warnings).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from workflows.checks import SampleEvents, check_semantics
from workflows.diagnostics import Diagnostic, Reporter, Severity, display_path
from workflows.lint_ignores import LintIgnores, lint_ignores
from workflows.model import Journey
from workflows.model_errors import check_raw_steps, report_model_error, salvage
from workflows.plan import JourneyPlan
from workflows.source import YamlProblem, file_too_large, load_yaml, read_yaml_file


@dataclass
class CompileResult:
    plans: dict[str, JourneyPlan] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


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
    samples: SampleEvents | None = None,
) -> CompileResult:
    result = CompileResult()
    for path in journey_files(paths):
        plan, diagnostics = compile_journey(
            path, templates_dir, known_attributes=known_attributes, samples=samples
        )
        result.diagnostics.extend(diagnostics)
        if plan is not None:
            result.plans[plan.journey_id] = plan
    return result


def compile_journey(
    path: Path,
    templates_dir: Path,
    *,
    known_attributes: frozenset[str] | None = None,
    samples: SampleEvents | None = None,
) -> tuple[JourneyPlan | None, list[Diagnostic]]:
    """`samples`: the properties of the sample events (contacts/, simulations/), which a keyed
    trigger's `key` is checked against."""
    file = display_path(path)
    try:
        too_large = file_too_large(path.stat().st_size)
        if too_large is not None:
            return None, [Diagnostic(file, 1, 1, too_large)]
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
    report = Reporter(file, source_map)
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
        model_report = Reporter(file, source_map)
        for detail in error.errors():
            report_model_error(model_report, raw, detail)
        report.diagnostics.extend(
            d for d in model_report.diagnostics if (d.line, d.col) not in reported
        )
        # Still check what can be checked, so one run shows all errors: jumps on the raw
        # steps, and expressions and templates of the parts that are valid.
        check_raw_steps(report, raw)
        salvaged = salvage(raw, error.errors())
        ignores, comment_errors = lint_ignores(file, text, source_map, None)
        report.diagnostics.extend(comment_errors)
        if salvaged is not None:
            check_semantics(
                report, salvaged, templates_dir, known_attributes, ignores, complete=False
            )
        return None, _unsilenced(report.diagnostics, ignores)
    ignores, comment_errors = lint_ignores(file, text, source_map, journey)
    report.diagnostics.extend(comment_errors)
    templates = check_semantics(
        report, journey, templates_dir, known_attributes, ignores, samples=samples
    )
    diagnostics = _unsilenced(report.diagnostics, ignores)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        return None, diagnostics
    plan = JourneyPlan.build(path.stem, file, journey, templates)
    return plan, diagnostics


def _unsilenced(diagnostics: list[Diagnostic], ignores: LintIgnores) -> list[Diagnostic]:
    return [d for d in diagnostics if not ignores.silences(d)]


def _friendlier_yaml(message: str) -> str:
    if "expected <block end>" in message:
        # PyYAML's words for it (block end, block mapping start) mean nothing to most users.
        return (
            "YAML syntax error: bad indentation: this line does not line up with the lines above it"
        )
    if "mapping values are not allowed" in message:
        return f"{message}; check the indentation of this line, or quote a value that contains ': '"
    return message


def contact_attributes(contacts_dir: Path) -> frozenset[str] | None:
    """Attribute names used by the sample contacts, for the unknown-attribute lint."""
    if not contacts_dir.is_dir():
        return None
    names: set[str] = set()
    for path in sorted(contacts_dir.glob("*.yaml")):
        try:
            data = read_yaml_file(path)
        except (OSError, UnicodeDecodeError, YamlProblem):
            continue  # the lint reads what it can; `preview`/`simulate` report a bad file
        if isinstance(data, dict):
            names.update(k for k in data if isinstance(k, str))
            attributes = data.get("attributes")
            if isinstance(attributes, dict):
                names.update(k for k in attributes if isinstance(k, str))
    return frozenset(names) if names else None


def identified_attributes(simulations_dir: Path) -> frozenset[str]:
    """Attribute names the `identify` entries of the simulations' events files set."""
    names: set[str] = set()
    for path in sorted(simulations_dir.glob("*.yaml")) if simulations_dir.is_dir() else []:
        try:
            data = read_yaml_file(path)
        except (OSError, UnicodeDecodeError, YamlProblem):
            continue  # `simulate` reports a bad file
        for item in data if isinstance(data, list) else []:
            identify = item.get("identify") if isinstance(item, dict) else None
            if isinstance(identify, dict):
                names.update(k for k in identify if isinstance(k, str))
    return frozenset(names)
