"""Finding and compiling the project's journeys and traits, as the CLI, the worker and the API
all need."""

from __future__ import annotations

from pathlib import Path

from settings import Settings
from workflows.compiler import (
    CompileResult,
    compile_paths,
    contact_attributes,
    identified_attributes,
)
from workflows.trait_compiler import Samples, TraitCompileResult, compile_traits, sample_events


def compile_project_traits(
    settings: Settings, paths: list[Path] | None = None
) -> TraitCompileResult:
    """`traits/` checked against the sample contacts' and simulations' events."""
    return compile_traits(
        paths or [settings.traits_dir],
        samples=_sample_events(settings),
        known_attributes=contact_attributes(settings.contacts_dir),
    )


def compile_project(settings: Settings, paths: list[Path] | None = None) -> CompileResult:
    known = contact_attributes(settings.contacts_dir)
    if known is not None:  # contact.TRAIT is known too, for the unknown-attribute lint
        known = known | compile_project_traits(settings).names
        # and what the simulations' identifies set (a condition waiting for it)
        known = known | identified_attributes(settings.contacts_dir.parent / "simulations")
    return compile_paths(
        paths or [settings.journeys_dir],
        settings.templates_dir,
        known_attributes=known,
        samples=_sample_events(settings),
    )


def _sample_events(settings: Settings) -> Samples:
    return sample_events(settings.contacts_dir, settings.contacts_dir.parent / "simulations")
