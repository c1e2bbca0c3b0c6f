"""Fixtures for the compiler tests: a throw-away project directory that is the working directory.

The project holds a copy of the repository's `templates/` and `contacts/` and an empty
`journeys/`; tests write journeys (and extra templates) into it, so diagnostics show the paths a
user would see: `journeys/x.yaml:LINE:COL: message`.
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from workflows.compiler import compile_journey, contact_attributes
from workflows.diagnostics import Diagnostic, Severity
from workflows.plan import JourneyPlan

ROOT = Path(__file__).resolve().parents[2]

# Journeys in the tests start with these four lines, so their first step is on line 5.
HEAD = """\
name: Test journey
trigger:
  event: signed_up
steps:
"""


@dataclass
class Project:
    root: Path

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    def write(self, relative: str, text: str) -> Path:
        """Write a file under the project (the text is dedented)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def journey(self, text: str, name: str = "test") -> Path:
        return self.write(f"journeys/{name}.yaml", text)

    def compile(
        self, name: str = "test", *, known_attributes: frozenset[str] | None = None
    ) -> tuple[JourneyPlan | None, list[Diagnostic]]:
        return compile_journey(
            Path("journeys") / f"{name}.yaml", self.templates, known_attributes=known_attributes
        )

    def diagnostics(self, text: str, *, attributes: bool = False) -> list[str]:
        """Compile `text` as journeys/test.yaml: every diagnostic as printed, in file order."""
        self.journey(text)
        known = contact_attributes(self.root / "contacts") if attributes else None
        _, found = self.compile(known_attributes=known)
        return [str(d) for d in sorted(found)]

    def errors(self, text: str) -> list[str]:
        self.journey(text)
        _, found = self.compile()
        return [str(d) for d in sorted(found) if d.severity is Severity.ERROR]

    def plan(self, text: str, name: str = "test") -> JourneyPlan:
        """Compile `text`, asserting that it has no errors (warnings allowed)."""
        self.journey(text, name)
        plan, found = self.compile(name)
        assert [str(d) for d in found if d.severity is Severity.ERROR] == []
        assert plan is not None
        return plan


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copytree(ROOT / "contacts", tmp_path / "contacts")
    (tmp_path / "journeys").mkdir()
    monkeypatch.chdir(tmp_path)
    return Project(tmp_path)
