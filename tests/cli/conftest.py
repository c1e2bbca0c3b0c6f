"""CLI test helpers: run `rapport` as a user would (a subprocess) or in-process (CliRunner)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The venv's console script when installed, else cli.py itself (same `main`).
_SCRIPT = Path(sys.executable).with_name("rapport")
RAPPORT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, str(ROOT / "cli.py")]
# Environment overrides a developer may have set would point the CLI elsewhere.
_OVERRIDES = ("RAPPORT_JOURNEYS_DIR", "RAPPORT_TEMPLATES_DIR", "RAPPORT_CONTACTS_DIR")


def rapport(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the `rapport` command line in `cwd` and capture stdout and stderr separately."""
    env = {key: value for key, value in os.environ.items() if key not in _OVERRIDES}
    env["COLUMNS"] = "200"  # keep Rich from wrapping messages in the middle
    return subprocess.run(
        [*RAPPORT, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Project:
    """A journeys repository of a team: a copy of this one's journeys, templates, contacts,
    traits and simulations."""

    root: Path

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return rapport(*args, cwd=self.root)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    # The traits too: sample journeys read contact.TRAIT (e.g. win_back's lifetime_spend).
    for name in ("templates", "contacts", "journeys", "traits", "simulations"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return Project(tmp_path)


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository root as the working directory, for in-process CliRunner tests."""
    monkeypatch.chdir(ROOT)
    for key in _OVERRIDES:
        monkeypatch.delenv(key, raising=False)
    return ROOT
