"""`rapport schema [--traits]`: the JSON Schema of the journey language (or of traits), for
editors."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.common import print_json
from workflows.model import Journey


def command(
    traits: Annotated[
        bool, typer.Option("--traits", help="The schema of traits/*.yaml instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of journeys/*.yaml (or traits/*.yaml); VS Code YAML and others use
    it."""
    if traits:
        from workflows.trait_model import schema

        print_json(schema())
        return
    schema_ = Journey.model_json_schema(by_alias=True)
    schema_["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    print_json(schema_)
