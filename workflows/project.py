"""Finding and compiling the project's journeys, as the CLI, the worker and the API all need."""

from __future__ import annotations

from pathlib import Path

from settings import Settings
from workflows.compiler import CompileResult, compile_paths, contact_attributes


def compile_project(settings: Settings, paths: list[Path] | None = None) -> CompileResult:
    return compile_paths(
        paths or [settings.journeys_dir],
        settings.templates_dir,
        known_attributes=contact_attributes(settings.contacts_dir),
    )
