"""Compiler diagnostics: every problem found in a journey or template, with its file position."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from workflows.source import Path as YamlPath
from workflows.source import SourceMap


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding, printed as `FILE:LINE:COL: message` (warnings carry a `warning:` prefix).

    `line` and `col` are 1-based, as editors and compilers show them.
    """

    file: str
    line: int
    col: int
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": str(self.severity),
            "message": self.message,
        }


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.ERROR]


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass
class Reporter:
    """Collects the diagnostics of one file, placing each at its YAML node (or key)."""

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
