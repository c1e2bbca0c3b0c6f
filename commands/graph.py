"""`rapport graph JOURNEY`: the journey as a Mermaid or DOT diagram."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from commands.loading import load_plan
from settings import get_settings
from workflows.graph import to_dot, to_mermaid


class GraphFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"


def command(
    journey: Annotated[str, typer.Argument(help="Journey name (file stem in journeys/) or path.")],
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="Diagram language.")
    ] = GraphFormat.MERMAID,
) -> None:
    """Print the journey as a diagram (Mermaid for Markdown, DOT for Graphviz)."""
    plan = load_plan(get_settings(), journey)
    sys.stdout.write(to_mermaid(plan) if format is GraphFormat.MERMAID else to_dot(plan))
