"""Which traits' changes are stored as `trait_changed` events: those something listens to."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runtime.traits import listened_traits
from settings import Settings
from tests.cli.conftest import ROOT
from workflows.project import compile_project
from workflows.trait_compiler import compile_traits

PROGRAM = compile_traits([ROOT / "traits"]).program


def test_the_sample_journeys_listen_to_tier_changes_only() -> None:
    plans = compile_project(Settings(_env_file=None)).plans  # type: ignore[call-arg]
    assert "loyalty_tier_upgrade" in plans
    assert listened_traits(plans, PROGRAM) == frozenset({"tier"})
    assert listened_traits({}, PROGRAM) == frozenset()


@pytest.mark.parametrize(
    ("journey", "listened"),
    [
        (
            """trigger: {event: trait_changed, when: 'event.properties.trait in ["a", "b"]'}""",
            frozenset({"a", "b"}),
        ),
        (
            """trigger: {event: trait_changed, when: 'event.properties.trait == "a" and """
            """event.properties.new == "x" or "b" == event.properties.trait'}""",
            frozenset({"a", "b"}),
        ),
        ("trigger: {event: trait_changed}", None),
        ("trigger: {event: trait_changed, when: 'event.properties.new == \"gold\"'}", None),
        ("trigger: {event: order_placed}\ngoal: trait_changed", None),
    ],
)
def test_a_journey_listens_to_the_traits_its_filter_names(
    tmp_path: Path, journey: str, listened: frozenset[str] | None
) -> None:
    (tmp_path / "j.yaml").write_text(
        "name: J\n" + textwrap.dedent(journey) + "\nsteps:\n  - id: done\n    exit: completed\n"
    )
    result = compile_project(Settings(_env_file=None), [tmp_path])  # type: ignore[call-arg]
    assert result.plans, [str(d) for d in result.diagnostics]
    assert listened_traits(result.plans, PROGRAM) == listened
