"""The trait compiler: `traits/*.yaml` -> `TraitProgram`, or every diagnostic at `FILE:LINE:COL`.

The journey compiler's stages, on the journey compiler's parts (`source.load_yaml` with positions,
`model_errors.report_model_error`, the `Reporter`): YAML, then the pydantic model of each trait,
then the checks the model cannot make —

- `EVENT[.PROPERTY]` well formed; `sum`/`avg` of a number, not of `timestamp`;
- property types, where the sample events (`contacts/*.yaml` histories, `simulations/*.yaml`)
  show them: a `sum` over a property they only ever hold as text is an error, a property they
  never carry on that event a warning;
- `when` reads `event.*` only (it filters events, and is rebuilt in SQL: `runtime/traits.py`
  says which conditions translate); `value` is an expression over `contact.*` without
  `count_events`/`last_event` (count with an aggregate trait instead);
- trait names unique across files and not the built-in `rfm_*` or a profile field;
- no cycle between derived traits (`tier` reading `perks` reading `tier`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import meta, nodes
from pydantic import ValidationError

from workflows.diagnostics import Diagnostic, Reporter, Severity, display_path, suggest
from workflows.expressions import (
    ExpressionError,
    Scope,
    attribute_nodes,
    attribute_paths,
    parse_condition,
)
from workflows.model_errors import report_model_error
from workflows.source import YamlProblem, load_yaml
from workflows.trait_model import (
    BUILTIN,
    NAME,
    NUMERIC,
    PROFILE,
    TIMESTAMP,
    Source,
    TraitDefinition,
)
from workflows.trait_program import Aggregate, Derived, TraitProgram
from workflows.trait_sql import SqlFilterError, check_sql_filter

DEFINITION_KEYS = tuple(TraitDefinition.model_fields)
# event name -> property -> the JSON types the sample events hold it as
Samples = Mapping[str, Mapping[str, frozenset[str]]]


@dataclass
class TraitCompileResult:
    program: TraitProgram | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.program.names if self.program else ()) | frozenset(BUILTIN)


def trait_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        elif path.exists():
            found.append(path)
    return found


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if value is None:
        return "null"
    return "list" if isinstance(value, list) else "object"


def sample_events(contacts_dir: Path, simulations_dir: Path) -> Samples:
    """Which properties, of which JSON types, the sample events carry (unreadable files are
    skipped: `rapport validate` reports them elsewhere)."""
    found: dict[str, dict[str, set[str]]] = {}

    def take(item: Any) -> None:
        if isinstance(item, dict) and isinstance(item.get("event"), str):
            props = item.get("properties") or {}
            known = found.setdefault(item["event"], {})
            if isinstance(props, dict):
                for key, value in props.items():
                    known.setdefault(str(key), set()).add(_json_type(value))

    for directory, key in ((contacts_dir, "events"), (simulations_dir, None)):
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            items = data.get(key) if key and isinstance(data, dict) else data
            if isinstance(items, list):
                for item in items:
                    take(item)
    return {event: {p: frozenset(t) for p, t in props.items()} for event, props in found.items()}


@dataclass
class _Parsed:
    file: str
    report: Reporter
    definition: TraitDefinition


def compile_traits(
    paths: Iterable[Path],
    *,
    samples: Samples | None = None,
    known_attributes: frozenset[str] | None = None,
) -> TraitCompileResult:
    """Compile every trait file; the program is None when any error was found."""
    result = TraitCompileResult()
    parsed: dict[str, _Parsed] = {}
    reports: list[Reporter] = []
    for path in trait_files(paths):
        _compile_file(path, parsed, reports, result.diagnostics)
    aggregates: list[Aggregate] = []
    derived: dict[str, Derived] = {}
    for name, parsed_item in parsed.items():
        built = _check(name, parsed_item, samples or {})
        if isinstance(built, Aggregate):
            aggregates.append(built)
        elif isinstance(built, Derived):
            derived[name] = built
    names = {a.name for a in aggregates} | set(derived) | set(BUILTIN)
    for item in derived.values():
        for read in sorted(item.reads - names - PROFILE - (known_attributes or set())):
            if known_attributes is not None:
                parsed[item.name].report.warning(
                    (item.name, "value"),
                    f"contact.{read} is no trait and no attribute of any contact in contacts/"
                    f"{suggest(read, names)}",
                    code="unknown-attribute",
                )
    order = _dependency_order(derived, parsed)
    for report in reports:
        result.diagnostics.extend(report.diagnostics)
    if not result.ok or order is None:
        return result
    result.program = TraitProgram(
        aggregates=tuple(aggregates),
        derived=tuple(derived[name] for name in order),
        files=tuple(sorted({item.file for item in parsed.values()})),
    )
    return result


def _compile_file(
    path: Path,
    parsed: dict[str, _Parsed],
    reports: list[Reporter],
    diagnostics: list[Diagnostic],
) -> None:
    file = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        diagnostics.append(Diagnostic(file, 1, 1, f"cannot read the file: {error}"))
        return
    try:
        raw, source_map, problems = load_yaml(text)
    except YamlProblem as fatal:
        diagnostics.append(Diagnostic(file, fatal.position.line, fatal.position.col, fatal.message))
        return
    report = Reporter(file, source_map)
    reports.append(report)
    for problem in problems:
        report.diagnostics.append(
            Diagnostic(file, problem.position.line, problem.position.col, problem.message)
        )
    if raw is None:
        return
    if not isinstance(raw, dict):
        report.error(
            (), "a traits file maps trait names to definitions, e.g. orders: {count: order_placed}"
        )
        return
    for name, body in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            report.error(
                (name,),
                f"trait name {name!r}: lower-case letters, digits and _, starting with a letter",
                key=True,
            )
            continue
        if name in BUILTIN or name in PROFILE:
            what = "a built-in RFM trait" if name in BUILTIN else "a contact profile field"
            report.error((name,), f"trait name {name!r} is {what}; choose another", key=True)
            continue
        if name in parsed:
            first = parsed[name].file
            report.error((name,), f"trait {name!r} is defined twice (first in {first})", key=True)
            continue
        if not isinstance(body, dict):
            report.error(
                (name,),
                f"trait {name!r}: expected a mapping with one of count, sum, avg, min, max, "
                f"first, last or value, got {body!r}",
            )
            continue
        try:
            definition = TraitDefinition.model_validate(body)
        except ValidationError as error:
            for detail in error.errors():
                detail["loc"] = (name, *detail["loc"])
                report_model_error(report, raw, detail, keys=DEFINITION_KEYS)
            continue
        parsed[name] = _Parsed(file, report, definition)


def _check(name: str, item: _Parsed, samples: Samples) -> Aggregate | Derived | None:
    report, definition = item.report, item.definition
    kind = definition.kind
    if kind == "value":
        assert definition.value is not None
        return _check_value(name, definition.value, report)
    at = (name, kind)
    try:
        source = Source.parse(definition.source or "")
    except ValueError as error:
        report.error(at, f"{kind}: {error}")
        return None
    ok = True
    if kind in NUMERIC and source.property is None:
        report.error(at, f"{kind}: needs EVENT.PROPERTY, a number (e.g. {source.event}.total)")
        ok = False
    elif kind in ("sum", "avg") and source.property == TIMESTAMP:
        report.error(at, f"{kind}: cannot {kind} timestamps; use min, max, first or last")
        ok = False
    elif source.property not in (None, TIMESTAMP):
        ok = _check_property(at, kind, source, samples, report)
    if definition.when is not None and not _check_when(name, definition.when, report):
        ok = False
    if not ok:
        return None
    return Aggregate(
        name=name,
        kind=kind,
        event=source.event,
        property=source.property,
        within=definition.within,
        when=definition.when,
    )


def _check_property(
    at: tuple[str, str], kind: str, source: Source, samples: Samples, report: Reporter
) -> bool:
    known = samples.get(source.event)
    if known is None:
        return True  # no sample of the event: nothing to infer
    assert source.property is not None
    types = known.get(source.property)
    if types is None:
        report.warning(
            at,
            f"{kind}: no sample {source.event} event (contacts/, simulations/) has a property "
            f"'{source.property}'{suggest(source.property, known)}",
            code="unknown-property",
        )
        return True
    if kind in NUMERIC and "number" not in types:
        held = " or ".join(sorted(types))
        report.error(
            at,
            f"{kind}: {source} is {held} in the sample events, not a number; "
            f"{kind} needs a numeric property",
        )
        return False
    return True


def _check_when(name: str, when: str, report: Reporter) -> bool:
    path = (name, "when")
    try:
        tree = parse_condition(when, Scope.EVENT_FILTER)
    except ExpressionError as error:
        report.error(path, f"invalid expression: {error.message}")
        return False
    other = sorted(meta.find_undeclared_variables(tree) - {"event"})
    if other:
        report.error(path, f"when: filters the event, so it reads event.* only, not {other[0]}")
        return False
    try:
        check_sql_filter(when)
    except SqlFilterError as error:
        report.error(path, f"when: {error}")
        return False
    return True


def _check_value(name: str, expression: str, report: Reporter) -> Derived | None:
    path = (name, "value")
    try:
        tree = parse_condition(expression, Scope.SEGMENT)
    except ExpressionError as error:
        report.error(path, f"invalid expression: {error.message}")
        return None
    used = {n.name for n in tree.find_all(nodes.Name)} & {"count_events", "last_event"}
    if used:
        report.error(
            path,
            f"value: {sorted(used)[0]}() reads the event history, which a derived trait does not "
            "see; define an aggregate trait (count, last, …) and read it as contact.NAME",
        )
        return None
    reads = attribute_paths(tree, "contact")
    return Derived(name, expression, frozenset(reads), opaque=_reads_contact_whole(tree))


def _reads_contact_whole(tree: nodes.Template) -> bool:
    """Whether the expression uses `contact` other than as `contact.NAME` / `contact["NAME"]`
    (e.g. `contact[key]`, `contact | length`): then what it reads is not known."""
    uses = sum(1 for node in tree.find_all(nodes.Name) if node.name == "contact")
    named = len(attribute_nodes(tree, "contact"))
    return uses > named


def _dependency_order(derived: dict[str, Derived], parsed: dict[str, _Parsed]) -> list[str] | None:
    """Derived traits so that each comes after those it reads; None (reported) on a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cyclic = False

    def visit(name: str, stack: list[str]) -> None:
        nonlocal cyclic
        state[name] = 1
        stack.append(name)
        for read in sorted(derived[name].reads & set(derived)):
            if state.get(read) == 1:
                cycle = [*stack[stack.index(read) :], read]
                parsed[read].report.error(
                    (read, "value"),
                    f"value: cycle between derived traits: {' -> '.join(cycle)}; "
                    "a derived trait cannot depend on itself",
                )
                cyclic = True
            elif read not in state:
                visit(read, stack)
        stack.pop()
        state[name] = 2
        order.append(name)

    for name in sorted(derived):
        if name not in state:
            visit(name, [])
    return None if cyclic else order
