"""Silencing one lint where it is wanted (issue 16 item 10).

A step (or the whole journey) says which lints not to report with `lint: {ignore: [CODE]}`, or a
comment `# rapport: ignore[CODE, …]` on one of the step's lines (a comment alone on its line
counts for the line below it). A comment in a top-level key (`trigger:`, `audience:`) quiets that
key. Only warnings have codes: errors are never silenced. A step's ignores also cover the lints of
the templates it sends, unless another step sending the same template does not ignore them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from workflows.diagnostics import Diagnostic, check_lint_code
from workflows.model import Journey
from workflows.source import KEY, SourceMap

_COMMENT = re.compile(r"(?:^|\s)#\s*rapport:\s*ignore\[([^\]]*)\]")


@dataclass(frozen=True)
class LintIgnores:
    file: str
    everywhere: frozenset[str] = frozenset()
    # (first line, codes) of each top-level key and each step, sorted by line
    units: tuple[tuple[int, frozenset[str]], ...] = ()
    steps: tuple[frozenset[str], ...] = ()  # by step index, `everywhere` included

    def for_step(self, index: int) -> frozenset[str]:
        return self.steps[index] if index < len(self.steps) else self.everywhere

    def silences(self, diagnostic: Diagnostic) -> bool:
        """Whether a lint of this journey file is ignored where it is reported."""
        code = diagnostic.code
        if code is None or diagnostic.file != self.file:
            return False
        return code in self.everywhere or code in self._unit_at(diagnostic.line)

    def _unit_at(self, line: int) -> frozenset[str]:
        position = bisect_right([start for start, _ in self.units], line) - 1
        return self.units[position][1] if position >= 0 else frozenset()


def _comment_codes(file: str, text: str, diagnostics: list[Diagnostic]) -> dict[int, set[str]]:
    """Line -> codes of the `# rapport: ignore[…]` comments that apply to it."""
    lines = text.splitlines()
    found: dict[int, set[str]] = {}
    for number, line in enumerate(lines, start=1):
        match = _COMMENT.search(line)
        if match is None:
            continue
        codes: set[str] = set()
        for code in (part.strip() for part in match.group(1).split(",")):
            try:
                codes.add(check_lint_code(code))
            except ValueError as error:
                col = match.start(1) + match.group(1).find(code) + 1
                diagnostics.append(Diagnostic(file, number, col, f"rapport: ignore: {error}"))
        target = number
        if not line[: match.start()].strip():  # a comment on its own line: the next line's
            target = next(
                (
                    later
                    for later in range(number + 1, len(lines) + 1)
                    if lines[later - 1].strip() and not lines[later - 1].lstrip().startswith("#")
                ),
                number,
            )
        found.setdefault(target, set()).update(codes)
    return found


def lint_ignores(
    file: str, text: str, source_map: SourceMap, journey: Journey | None
) -> tuple[LintIgnores, list[Diagnostic]]:
    """What the journey file `text` ignores where, and the errors of its ignore comments."""
    diagnostics: list[Diagnostic] = []
    by_line = _comment_codes(file, text, diagnostics)
    starts: list[tuple[int, tuple[str, object]]] = []
    for path, position in source_map.positions.items():
        if len(path) == 2 and path[1] == KEY:
            starts.append((position.line, ("key", path[0])))
        elif len(path) == 2 and path[0] == "steps" and isinstance(path[1], int):
            starts.append((position.line, ("step", path[1])))
    starts.sort(key=lambda item: item[0])
    step_count = len(journey.steps) if journey is not None else 0
    everywhere = frozenset(journey.lint.ignore if journey and journey.lint else ())
    codes: dict[tuple[str, object], set[str]] = {unit: set() for _, unit in starts}
    bounds = [line for line, _ in starts]
    for line, found in by_line.items():
        unit = bisect_right(bounds, line) - 1
        if unit >= 0:
            codes[starts[unit][1]].update(found)
    steps: list[frozenset[str]] = []
    for index in range(step_count):
        own = codes.get(("step", index), set())
        declared = journey.steps[index].lint if journey is not None else None
        if declared is not None:
            own.update(declared.ignore)
            codes[("step", index)] = own
        steps.append(everywhere | own)
    ignores = LintIgnores(
        file=file,
        everywhere=everywhere,
        units=tuple((line, frozenset(codes[unit])) for line, unit in starts),
        steps=tuple(steps),
    )
    return ignores, diagnostics
