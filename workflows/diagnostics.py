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


# Every lint (a warning) has a stable code: shown at the end of its message, accepted by
# `lint: {ignore: [CODE]}` and `# rapport: ignore[CODE]`, listed in docs/journeys.md.
LINTS: dict[str, str] = {
    "wait-at-end": "a wait or wait_until after which the run ends",
    "unknown-attribute": "contact.X that no contact file (nor trait) has",
    "unknown-property": "a trait reads an event property no sample event has",
    "unsubscribe-link": "a marketing email without {{ unsubscribe_url }}",
    "sms-segments": "an SMS over 3 segments for a sample contact",
    "front-matter-key": "an email front matter key Rapport does not know",
    "unchecked-key": "a trigger key no sample event can confirm",
    "overlapping-journeys": "two journeys whose triggers enter the same contacts",
}


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding, printed as `FILE:LINE:COL: message` (warnings carry a `warning:` prefix).

    `line` and `col` are 1-based, as editors and compilers show them. A lint carries its code
    (`LINTS`), printed at the end as compilers print theirs: `… the outcome [wait-at-end]`.
    """

    file: str
    line: int
    col: int
    message: str
    severity: Severity = Severity.ERROR
    code: str | None = None

    def __post_init__(self) -> None:
        if self.code is not None and self.code not in LINTS:
            raise ValueError(f"unknown lint code {self.code!r}: add it to LINTS")

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        suffix = f" [{self.code}]" if self.code else ""
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}{suffix}"

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": str(self.severity),
            "message": self.message,
        }
        if self.code is not None:
            found["code"] = self.code
        return found


def check_lint_code(code: str) -> str:
    """`code` when it names a lint, else a ValueError listing them."""
    if code not in LINTS:
        raise ValueError(
            f"unknown lint code {code!r}{suggest(code, LINTS)}; the codes: {', '.join(LINTS)}"
        )
    return code


def lint(file: str, line: int, col: int, code: str, message: str) -> Diagnostic:
    """A warning with its lint code."""
    return Diagnostic(file, line, col, message, Severity.WARNING, code)


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

    def warning(self, path: YamlPath, message: str, *, code: str, key: bool = False) -> None:
        """A lint: `code` is one of `LINTS`."""
        self._add(path, message, Severity.WARNING, key=key, code=code)

    def _add(
        self,
        path: YamlPath,
        message: str,
        severity: Severity,
        *,
        key: bool,
        code: str | None = None,
    ) -> None:
        position = self.source_map.key_at(path) if key else self.source_map.at(path)
        self.diagnostics.append(
            Diagnostic(self.file, position.line, position.col, message, severity, code)
        )
